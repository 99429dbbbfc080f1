// Starts a control plane and a nats-server, prints the process ids of every server
// process, then waits to be killed. Used by cleanup.test.ts.
import { startKube } from "../kube.ts";
import { startNats } from "../nats.ts";
import { processGroupMembers } from "../proc.ts";
import { liveProcessGroups } from "../process.ts";

await startKube();
await startNats();
const pids = liveProcessGroups().flatMap(processGroupMembers);
process.stdout.write(`${JSON.stringify({ pids })}\n`);
setInterval(() => {}, 60_000);
