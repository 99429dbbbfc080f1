// A minimal operator process for the leader election tests: a Manager with leader election
// on one Lease, /healthz, /readyz and /metrics, JSON logs on stdout, graceful SIGTERM.
// Usage: elector-main.ts <kubeconfig> <identity> <lease-namespace> <port-file>
import { writeFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { Manager, createLogger } from "../../operator/kube/index.ts";

const [kubeconfig, identity, leaseNamespace, portFile] = process.argv.slice(2);
if (!kubeconfig || !identity || !leaseNamespace || !portFile) {
  console.error("usage: elector-main.ts <kubeconfig> <identity> <lease-namespace> <port-file>");
  process.exit(2);
}
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(kubeconfig);
const logger = createLogger({
  level: "info",
  write: (l) => process.stdout.write(l + "\n"),
  fields: { identity },
});
const mgr = new Manager({
  kubeConfig,
  logger,
  httpAddress: "127.0.0.1:0",
  leaderElection: { leaseName: "covenant-operator", leaseNamespace, identity },
});
const started = mgr.run({ handleSignals: true });
// The test reads the bound address once the server listens.
const timer = setInterval(() => {
  if (mgr.httpUrl) {
    writeFileSync(portFile, mgr.httpUrl);
    clearInterval(timer);
  }
}, 20);
const reason = await started;
clearInterval(timer);
logger.info("exiting", { reason });
process.exitCode = reason === "signal" || reason === "stopped" ? 0 : 1;
