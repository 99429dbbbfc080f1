// Worker metrics (prefix covenant_worker_), served on :9400/metrics by default.
import { createServer } from "node:http";
import type { Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { REJECT_REASONS } from "../protocol/envelope.ts";
import { FETCH_REASONS, fetchResult } from "./data/source.ts";

const secondsBuckets = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

export function workerMetrics(labels: { run: string; role: string }) {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: "covenant_worker_process_" });
  const m = {
    registry,
    round: new Gauge({
      name: "covenant_worker_round",
      help: "Last round this worker completed.",
      registers: [registry],
    }),
    innerStepSeconds: new Histogram({
      name: "covenant_worker_inner_step_seconds",
      help: "Time of one inner optimizer step.",
      buckets: secondsBuckets,
      registers: [registry],
    }),
    tokens: new Counter({
      name: "covenant_worker_tokens_total",
      help: "Tokens trained on.",
      registers: [registry],
    }),
    loss: new Gauge({
      name: "covenant_worker_loss",
      help: "Mean inner-step loss of the last round.",
      registers: [registry],
    }),
    compressSeconds: new Histogram({
      name: "covenant_worker_compress_seconds",
      help: "Time to compress a pseudo-gradient.",
      buckets: secondsBuckets,
      registers: [registry],
    }),
    aggregateSeconds: new Histogram({
      name: "covenant_worker_aggregate_seconds",
      help: "Time to aggregate the selected payloads and apply the outer step.",
      buckets: secondsBuckets,
      registers: [registry],
    }),
    gatherSeconds: new Histogram({
      name: "covenant_worker_gather_seconds",
      help: "Time to fetch and verify the selected payloads of a round.",
      buckets: secondsBuckets,
      registers: [registry],
    }),
    payloadBytes: new Counter({
      name: "covenant_worker_payload_bytes_total",
      help: "Payload bytes moved on the bus.",
      labelNames: ["direction"] as const,
      registers: [registry],
    }),
    compressFailures: new Counter({
      name: "covenant_worker_compress_failures_total",
      help: "Rounds sat out because the pseudo-gradient could not be compressed into a valid payload, by reason (quant, nonfinite).",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    compressionRatio: new Gauge({
      name: "covenant_worker_compression_ratio",
      help: "Dense fp32 size divided by the payload size.",
      registers: [registry],
    }),
    rejected: new Counter({
      name: "covenant_worker_rejected_payloads_total",
      help: "Submissions refused or penalised, by reason.",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    selected: new Gauge({
      name: "covenant_worker_selected_peers",
      help: "Payloads aggregated in the last round.",
      registers: [registry],
    }),
    chainCalls: new Counter({
      name: "covenant_worker_chain_calls_total",
      help: "Extrinsics this worker submitted to the chain, by call and result.",
      labelNames: ["call", "result"] as const,
      registers: [registry],
    }),
    shardFetches: new Counter({
      name: "covenant_worker_shard_fetches_total",
      help: "Token shards fetched or checked against the data manifest, by result (ok, refused, failed) and reason.",
      labelNames: ["result", "reason"] as const,
      registers: [registry],
    }),
    shardCacheBytes: new Gauge({
      name: "covenant_worker_shard_cache_bytes",
      help: "Bytes of token shards in the worker's shard cache.",
      registers: [registry],
    }),
    busReconnects: new Counter({
      name: "covenant_worker_bus_reconnects_total",
      help: "Reconnections to NATS.",
      registers: [registry],
    }),
  };
  for (const reason of REJECT_REASONS) m.rejected.inc({ reason }, 0);
  for (const reason of ["quant", "nonfinite"]) m.compressFailures.inc({ reason }, 0);
  for (const direction of ["sent", "received"]) m.payloadBytes.inc({ direction }, 0);
  for (const reason of FETCH_REASONS) m.shardFetches.inc({ result: fetchResult(reason), reason }, 0);
  for (const reason of ["verified", "cached"]) m.shardFetches.inc({ result: "ok", reason }, 0);
  return m;
}

export type WorkerMetrics = ReturnType<typeof workerMetrics>;

/** Why the worker is not ready (undefined when it is): what its pod's readiness probe reads. */
export type Readiness = () => string | undefined;

/**
 * Serves /metrics, /healthz (the process answers) and /readyz (200 while the worker is in
 * step with the run and contributing; 503 with the reason while it connects, catches up or stops).
 */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = "0.0.0.0",
  notReady: Readiness = () => undefined,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === "/metrics") {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
    } else if (req.url === "/healthz") {
      res.writeHead(200);
      res.end("ok");
    } else if (req.url === "/readyz") {
      const why = notReady();
      res.writeHead(why === undefined ? 200 : 503);
      res.end(why === undefined ? "ok" : `not ready: ${why}`);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return server;
}
