// `make demo`: the whole system on this machine and a real training run end to end.
// A TrainingRun of llama3-tiny with three miners and a validator is applied with
// kubectl; the operator provisions the run's stream and buckets on the run's hub (three
// nats-servers in a JetStream cluster with TLS) and creates the worker pods; a node agent
// runs them as local processes on fake B200 nodes; the workers log in to the hub by their
// hotkey (the admission service admits hotkeys registered on the local chain), fetch their
// shards of text found on this machine from a nats:// bucket, and exchange SparseLoCo
// payloads. Progress is printed as it happens.
// Every server listens on 127.0.0.1 only and is stopped on exit.
//
//   --rounds N        rounds to train (default 30)
//   --once            stop everything when the run completes (default: keep it up until Ctrl-C)
//   --single-server   one nats-server with static per-peer nkey users and file:// data
//                     instead of the hub
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./stack/paths.ts";
import { startSystem } from "./system.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const once = process.argv.includes("--once");
const rounds = arg("--rounds", 30);
const bus = process.argv.includes("--single-server") ? "single" : "hub";
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;
const say = (line: string) => process.stdout.write(`${elapsed()}  ${line}\n`);

const system = await startSystem({
  run: "demo",
  miners: 3,
  rounds,
  innerSteps: 8,
  roundDeadlineSeconds: 20,
  bus,
  say,
});
let stopping = false;
const shutdown = async (code: number) => {
  if (stopping) return;
  stopping = true;
  say("stopping everything");
  await system.stop();
  process.exit(code);
};
process.once("SIGINT", () => void shutdown(0));
process.once("SIGTERM", () => void shutdown(0));

const demoDir = join(repoRoot, "build", "demo");
mkdirSync(demoDir, { recursive: true });
const kubeconfig = join(demoDir, "kubeconfig");
copyFileSync(system.kube.kubeconfigPath, kubeconfig);
say(`the system is up. In another terminal:

      export KUBECONFIG=${kubeconfig} PATH=${join(repoRoot, "bin")}:$PATH
      kubectl get trainingruns,covenantpeers,pods -o wide
      kubectl describe trainingrun demo
      curl -s '${system.prom.url}/api/v1/query?query=covenant_worker_loss'${
        system.hub
          ? `
      curl -s ${system.hub.admission.url}/metrics | grep covenant_admission_decisions_total`
          : ""
      }
`);

// The run's status as the operator writes it, whenever it changes.
let last = "";
let lossFirst: number | undefined;
for (;;) {
  await new Promise((r) => setTimeout(r, 2_000));
  system.refreshTargets();
  const run = await system.readRun().catch(() => undefined);
  const s = run?.status;
  const line = `TrainingRun demo: phase ${s?.phase ?? "-"}, round ${s?.round ?? 0}/${rounds}, ready peers ${s?.readyPeers ?? 0}/${s?.peers ?? 0}, membership epoch ${s?.membershipEpoch ?? "-"}`;
  if (line !== last) {
    say(line);
    last = line;
  }
  const loss = await system.prom.query("avg(covenant_worker_loss)").catch(() => []);
  // The gauge reads 0 until a miner has finished its first round.
  if (lossFirst === undefined && loss[0] && loss[0].value > 0) lossFirst = loss[0].value;
  if (s?.phase === "Completed") {
    const lossLast = loss[0]?.value;
    say(
      `the run completed ${rounds} rounds in ${elapsed().trim()}` +
        (lossFirst !== undefined && lossLast !== undefined
          ? `; mean miner loss, first and last scraped by Prometheus: ${lossFirst.toFixed(3)} -> ${lossLast.toFixed(3)}`
          : ""),
    );
    if (once) await shutdown(0);
    say("everything stays up for you to explore; Ctrl-C stops it");
    await new Promise(() => {});
  }
}
