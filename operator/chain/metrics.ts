/**
 * Chain bridge metrics, registered on the operator's registry. Label `run` is
 * `<namespace>/<name>` of a TrainingRun (bounded by the runs on the cluster); `kind` of an
 * RPC error is one of a fixed set.
 */
import { Counter, Gauge, type Registry } from "prom-client";

export { RPC_ERROR_KINDS, type RpcErrorKind } from "../../protocol/chain/state.ts";

export interface ChainMetrics {
  /** Best block number seen. */
  blockHeight: Gauge<"run">;
  /** Best minus finalized block number. */
  finalityLagBlocks: Gauge<"run">;
  /** Seconds since the last new head (updated on scrape). */
  headAgeSeconds: Gauge<"run">;
  /** 1 while connected. */
  connected: Gauge<"run">;
  rpcErrors: Counter<"run" | "kind">;
  reconnects: Counter<"run">;
}

export function createChainMetrics(
  registry: Registry,
  headsSeenAt: () => Iterable<[string, number]> = () => [],
): ChainMetrics {
  const m: ChainMetrics = {
    blockHeight: new Gauge({
      name: "covenant_chain_block_height",
      help: "Best block number the chain bridge has seen.",
      labelNames: ["run"],
      registers: [registry],
    }),
    finalityLagBlocks: new Gauge({
      name: "covenant_chain_finality_lag_blocks",
      help: "Best minus finalized block number.",
      labelNames: ["run"],
      registers: [registry],
    }),
    headAgeSeconds: new Gauge({
      name: "covenant_chain_head_age_seconds",
      help: "Seconds since the chain bridge last saw a new block.",
      labelNames: ["run"],
      registers: [registry],
      collect() {
        for (const [run, at] of headsSeenAt())
          (this as Gauge<"run">).set({ run }, Math.max(0, (Date.now() - at) / 1000));
      },
    }),
    connected: new Gauge({
      name: "covenant_chain_connected",
      help: "1 while the chain bridge is connected to its endpoint.",
      labelNames: ["run"],
      registers: [registry],
    }),
    rpcErrors: new Counter({
      name: "covenant_chain_rpc_errors_total",
      help: "Chain RPC failures by kind.",
      labelNames: ["run", "kind"],
      registers: [registry],
    }),
    reconnects: new Counter({
      name: "covenant_chain_reconnects_total",
      help: "Reconnect attempts to the chain endpoint.",
      labelNames: ["run"],
      registers: [registry],
    }),
  };
  return m;
}
