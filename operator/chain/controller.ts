/**
 * The chain controller: one ChainBridge per TrainingRun, following the run's `spec.chain`
 * (endpoint and netuid). A bridge is started when a run appears, restarted when its chain
 * settings change, and stopped when the run goes or the operator shuts down. What a bridge
 * sees goes to CovenantPeer and TrainingRun status through KubeChainSink, under the bridge's
 * own field manager.
 */
import type { CovenantPeer, TrainingRun } from "../../api/index.ts";
import type { Controller, Informer, Logger, Manager } from "../kube/index.ts";
import { ChainBridge } from "./bridge.ts";
import type { MetagraphSnapshot } from "./metagraph.ts";
import { redactEndpoint } from "../../protocol/chain/endpoint.ts";
import { KubeChainSink } from "./kube.ts";
import { createChainMetrics } from "./metrics.ts";
import { CHAIN_FIELD_MANAGER } from "./reasons.ts";

export interface ChainControllerOptions {
  /** Passed to each bridge (tests shorten them). */
  staleAfterMs?: number;
  tickMs?: number;
  /**
   * Each metagraph a run's bridge reads (`run` is `<namespace>/<name>`), and undefined when
   * the bridge stops: what the run's subnet holds, for others than the bridge's sink.
   */
  onMetagraph?: (run: string, snapshot: MetagraphSnapshot | undefined) => void;
}

interface Running {
  /** endpoint and netuid the bridge follows. */
  key: string;
  bridge: ChainBridge;
}

/** The settings a bridge follows; a change restarts it. */
export function chainKey(run: TrainingRun): string | undefined {
  const c = run.spec?.chain;
  return c?.endpoint && c.netuid !== undefined ? `${c.endpoint}#${c.netuid}` : undefined;
}

export function addChainController(
  mgr: Manager,
  inf: { runs: Informer<TrainingRun>; peers: Informer<CovenantPeer> },
  log: Logger,
  opts: ChainControllerOptions = {},
): Controller<TrainingRun> {
  const running = new Map<string, Running>();
  const metrics = createChainMetrics(mgr.metrics.registry, function* () {
    for (const [run, r] of running) {
      const seen = r.bridge.connection.snapshot.best?.seenAt;
      if (seen !== undefined) yield [run, seen];
    }
  });
  const stop = async (key: string) => {
    const r = running.get(key);
    running.delete(key);
    await r?.bridge.stop();
    if (r) opts.onMetagraph?.(key, undefined);
  };
  mgr.onStop(async () => {
    await Promise.all([...running.keys()].map(stop));
  });

  return mgr.addController<TrainingRun>({
    name: "run-chain",
    fieldManager: CHAIN_FIELD_MANAGER,
    for: inf.runs,
    reconcile: async (req) => {
      const ns = req.namespace ?? "default";
      const id = `${ns}/${req.name}`;
      const run = inf.runs.store.getByName(ns, req.name);
      const want = run && !run.metadata.deletionTimestamp ? chainKey(run) : undefined;
      const have = running.get(id);
      if (have && have.key === want) return;
      if (have) await stop(id);
      if (!run || !want) return;
      const bridge = new ChainBridge({
        run: id,
        endpoint: run.spec.chain.endpoint,
        netuid: run.spec.chain.netuid,
        metrics,
        staleAfterMs: opts.staleAfterMs,
        tickMs: opts.tickMs,
        sink: new KubeChainSink({
          client: mgr.client.withCaller("chain"),
          recorder: mgr.recorder,
          namespace: ns,
          run: req.name,
          listPeers: () => inf.peers.store.list(ns),
        }),
        onError: (e) => log.warn("chain bridge", { run: id, error: String(e) }),
        onMetagraph: opts.onMetagraph && ((m) => opts.onMetagraph?.(id, m)),
      });
      running.set(id, { key: want, bridge });
      bridge.start();
      log.info("following the chain", {
        run: id,
        endpoint: redactEndpoint(run.spec.chain.endpoint),
        netuid: run.spec.chain.netuid,
      });
    },
  });
}
