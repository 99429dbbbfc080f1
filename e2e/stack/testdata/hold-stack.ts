// Starts a control plane and a nats-server, prints the process group of every server
// (one per reaper) and the server process in each, then waits to be killed. Used by
// cleanup.test.ts. The reapers' own short-lived children (their `sleep` between checks)
// come and go, so only the groups and the long-lived servers are reported, with the
// temporary directories the stack made.
import { startKube } from "../kube.ts";
import { startNats } from "../nats.ts";
import { openTempDirs } from "../paths.ts";
import { serverOfGroup } from "../proc.ts";
import { liveProcessGroups } from "../process.ts";

await startKube();
await startNats();
const groups = liveProcessGroups();
const servers = groups.map(serverOfGroup);
process.stdout.write(`${JSON.stringify({ groups, servers, dirs: openTempDirs() })}\n`);
setInterval(() => {}, 60_000);
