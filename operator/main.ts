#!/usr/bin/env -S node --import tsx
/**
 * covenant-operator: reconciles TrainingRuns and CovenantPeers into worker pods.
 * Exit status: 0 after SIGTERM/SIGINT, 1 on errors or lost leadership (restart with clean caches), 2 on bad flags.
 */
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError, parseConfig, usage, type OperatorConfig } from "./config.ts";
import { registerControllers } from "./controllers/index.ts";
import { Manager, createLogger, type Logger } from "./kube/index.ts";
import { addChainController } from "./chain/controller.ts";
import { createRunMetrics } from "./metrics/runs.ts";
import { addProgressController } from "./progress/controller.ts";
import { SubnetDirectory } from "./controllers/subnet.ts";
import { addTransportController } from "./controllers/transport-controller.ts";

/** The NATS user nkey seed (SU...) in a plain seed file or a .creds file; never logged. */
export function natsSeed(file: string): string {
  const seed = /\bSU[A-Z2-7]{56}\b/.exec(readFileSync(file, "utf8"))?.[0];
  if (!seed) throw new Error(`${file} holds no NATS user nkey seed (SU...)`);
  return seed;
}

export function loadKubeConfig(c: OperatorConfig): KubeConfig {
  const kc = new KubeConfig();
  if (c.kubeconfig) kc.loadFromFile(c.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** Builds the manager with both controllers; the caller runs it. */
export function buildOperator(c: OperatorConfig, log: Logger): Manager {
  const mgr = new Manager({
    kubeConfig: loadKubeConfig(c),
    namespace: c.namespace,
    httpAddress: c.httpAddress,
    logger: log,
    rateLimit: c.kubeApiQps > 0 ? { qps: c.kubeApiQps, burst: c.kubeApiBurst } : false,
    leaderElection: c.leaderElect
      ? {
          leaseName: c.leaderElectionId,
          leaseNamespace: c.leaderElectionNamespace,
          identity: c.identity,
          leaseDurationMs: c.leaseDurationMs,
          renewDeadlineMs: c.renewDeadlineMs,
          retryPeriodMs: c.retryPeriodMs,
        }
      : false,
  });
  const { informers } = registerControllers(mgr, {
    gpuResource: c.gpuResource,
    nodeNotReadyGraceMs: c.nodeNotReadyGraceMs,
  });
  const runMetrics = createRunMetrics(mgr.metrics.registry, {
    runs: () => informers.runs.store.list(),
    peers: () => informers.peers.store.list(),
  });
  const seed = c.natsCreds ? natsSeed(c.natsCreds) : undefined;
  if (seed)
    addProgressController(
      mgr,
      informers,
      {
        natsSeed: seed,
        natsCaFile: c.natsCa,
        membership: c.membership,
        membershipChanges: runMetrics.membershipChanges,
      },
      log,
    );
  else log.info("run progress from the bus is off: no --nats-creds");
  // The chain bridges' view of each subnet feeds the transport controller's bucket plan.
  const subnets = c.provisionBus && c.chain ? new SubnetDirectory() : undefined;
  if (seed && c.provisionBus)
    addTransportController(
      mgr,
      informers,
      {
        natsSeed: seed,
        natsCaFile: c.natsCa,
        replicas: c.busReplicas,
        departedGraceMs: c.busDepartedGraceMs > 0 ? c.busDepartedGraceMs : undefined,
        subnets,
      },
      log,
    );
  else log.info("provisioning the runs' bus objects is off: no --provision-bus");
  if (c.chain)
    addChainController(mgr, informers, log, {
      onMetagraph: subnets && ((run, m) => subnets.set(run, m)),
    });
  else log.info("following the chain is off: --chain=false");
  return mgr;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(usage());
    return 0;
  }
  let config: OperatorConfig;
  try {
    config = parseConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`covenant-operator: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger({ level: config.logLevel, fields: { component: "covenant-operator" } });
  const { kubeconfig, namespace, leaderElect, httpAddress, kubeApiQps, kubeApiBurst } = config;
  log.info("starting", {
    kubeconfig: kubeconfig ?? "(in-cluster or default)",
    namespace: namespace ?? "(all)",
    leaderElect,
    httpAddress,
    kubeApiQps,
    kubeApiBurst,
    provisionBus: config.provisionBus,
    busReplicas: config.busReplicas,
  });
  const mgr = buildOperator(config, log);
  const reason = await mgr.run({ handleSignals: true });
  log.info("exiting", { reason });
  return reason === "signal" || reason === "stopped" ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`covenant-operator: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
