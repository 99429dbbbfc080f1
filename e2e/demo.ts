// `make demo`: brings the whole system up on this machine and keeps it running
// until Ctrl-C. Every server listens on 127.0.0.1 only and is stopped on exit.
//
//   --once   bring everything up, print the summary, then stop (used by tests)
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { startKube } from "./stack/kube.ts";
import { startNats } from "./stack/nats.ts";
import { repoRoot } from "./stack/paths.ts";
import { startPrometheus } from "./stack/prometheus.ts";

const once = process.argv.includes("--once");
const step = (what: string) => process.stdout.write(`\n==> ${what}\n`);
const started = Date.now();

step("starting the control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)");
const kube = await startKube({ scheduler: true, controllerManager: true });
const demoDir = join(repoRoot, "build", "demo");
mkdirSync(demoDir, { recursive: true });
const kubeconfig = join(demoDir, "kubeconfig");
copyFileSync(kube.kubeconfigPath, kubeconfig);
console.log(`    API server ${kube.server}`);

step("starting nats-server with JetStream");
const nats = await startNats();
console.log(`    NATS ${nats.url}   monitoring ${nats.monitorUrl}`);

step("starting Prometheus");
const prom = await startPrometheus({ targets: [] });
console.log(`    Prometheus ${prom.url}`);

console.log(`
The local system is up (${((Date.now() - started) / 1000).toFixed(1)} s). Point kubectl at it:

    export KUBECONFIG=${kubeconfig}
    export PATH=${join(repoRoot, "bin")}:$PATH
    kubectl get namespaces
`);

const shutdown = async () => {
  step("stopping");
  await prom.stop();
  await nats.stop();
  await kube.stop();
  process.exit(0);
};
if (once) await shutdown();
console.log("Press Ctrl-C to stop everything.");
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
setInterval(() => {}, 1 << 30);
