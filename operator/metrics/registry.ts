/**
 * The operator's Prometheus metrics: one registry per process (or per test), every name
 * under the `covenant_` prefix, base units, `_total` on counters, bounded label values.
 *
 * Runtime metrics (controllers, work queues, API requests, informers, leader election,
 * events) are defined here. Domain metrics (runs, peers, rounds) are registered by their
 * owners on the same registry through `metrics.registry`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Latency buckets for reconciles and API calls: 1 ms .. 30 s. */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

export type ReconcileResult = "success" | "error" | "requeue";

export interface OperatorMetrics {
  readonly registry: Registry;
  /** Seconds spent in one reconcile, by controller and result. */
  readonly reconcileDuration: Histogram<"controller" | "result">;
  /** Reconciles that threw, by controller. */
  readonly reconcileErrors: Counter<"controller">;
  /** Keys waiting in a work queue (ready plus delayed), by queue name. */
  readonly queueDepth: Gauge<"name">;
  /** Keys added to a work queue (coalesced adds are not counted twice). */
  readonly queueAdds: Counter<"name">;
  /** Keys re-queued with backoff after an error. */
  readonly queueRetries: Counter<"name">;
  /** Seconds a key waited in the queue before a worker took it. */
  readonly queueLatency: Histogram<"name">;
  /** Requests sent to the Kubernetes API, by verb, resource, HTTP code and caller. */
  readonly apiRequests: Counter<"verb" | "resource" | "code" | "controller">;
  /** Seconds per Kubernetes API request, by verb and resource. */
  readonly apiRequestDuration: Histogram<"verb" | "resource">;
  /** Requests repeated after 429 or a 5xx with Retry-After, by verb, resource and the code that caused it. */
  readonly apiRetries: Counter<"verb" | "resource" | "code">;
  /** Seconds requests waited for the client-side rate limiter, by caller. */
  readonly apiRateLimiterWait: Histogram<"controller">;
  /** Reconciles abandoned at their deadline, by controller (also counted as errors). */
  readonly reconcileTimeouts: Counter<"controller">;
  /** Full re-lists by informer resource and reason (initial, gone, error, resync). */
  readonly informerRelists: Counter<"resource" | "reason">;
  /** Watch events received by informer resource and type. */
  readonly informerEvents: Counter<"resource" | "type">;
  /** 1 while this process holds the named lease, else 0. */
  readonly leaderIsLeader: Gauge<"lease">;
  /** Leadership transitions observed by this process. */
  readonly leaderTransitions: Counter<"lease">;
  /** Events written (created or aggregated into a count) by reason class. */
  readonly eventsEmitted: Counter<"type" | "action">;
  /** Events that could not be written, by reason (api_error, rate_limited, invalid). */
  readonly eventsDropped: Counter<"reason">;
  /** Static build information, value 1. */
  readonly buildInfo: Gauge<"version">;
}

export interface CreateMetricsOptions {
  /** Registry to register on; a fresh one by default (never the global default registry). */
  registry?: Registry;
  /** Also collect the process metrics of prom-client (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
  version?: string;
}

/** Creates and registers every runtime metric on a registry. */
export function createOperatorMetrics(options: CreateMetricsOptions = {}): OperatorMetrics {
  const registry = options.registry ?? new Registry();
  if (options.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: "covenant_operator_" });
  }
  const registers = [registry];
  const metrics: OperatorMetrics = {
    registry,
    reconcileDuration: new Histogram({
      name: "covenant_reconcile_duration_seconds",
      help: "Seconds spent in one reconcile.",
      labelNames: ["controller", "result"],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    }),
    reconcileErrors: new Counter({
      name: "covenant_reconcile_errors_total",
      help: "Reconciles that failed with an error.",
      labelNames: ["controller"],
      registers,
    }),
    queueDepth: new Gauge({
      name: "covenant_workqueue_depth",
      help: "Keys waiting in the work queue, ready or delayed.",
      labelNames: ["name"],
      registers,
    }),
    queueAdds: new Counter({
      name: "covenant_workqueue_adds_total",
      help: "Keys added to the work queue.",
      labelNames: ["name"],
      registers,
    }),
    queueRetries: new Counter({
      name: "covenant_workqueue_retries_total",
      help: "Keys re-queued with backoff after a failed reconcile.",
      labelNames: ["name"],
      registers,
    }),
    queueLatency: new Histogram({
      name: "covenant_workqueue_queue_duration_seconds",
      help: "Seconds a key waited in the queue before processing started.",
      labelNames: ["name"],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    }),
    apiRequests: new Counter({
      name: "covenant_kube_api_requests_total",
      help: "Requests sent to the Kubernetes API server.",
      labelNames: ["verb", "resource", "code", "controller"],
      registers,
    }),
    apiRequestDuration: new Histogram({
      name: "covenant_kube_api_request_duration_seconds",
      help: "Seconds per Kubernetes API request (watches: until headers arrive).",
      labelNames: ["verb", "resource"],
      buckets: [...LATENCY_BUCKETS_SECONDS],
      registers,
    }),
    apiRetries: new Counter({
      name: "covenant_kube_api_retries_total",
      help: "Kubernetes API requests repeated after 429 or a 5xx with Retry-After, by the code that caused it.",
      labelNames: ["verb", "resource", "code"],
      registers,
    }),
    apiRateLimiterWait: new Histogram({
      name: "covenant_kube_api_rate_limiter_wait_seconds",
      help: "Seconds a Kubernetes API request waited for the client-side rate limiter.",
      labelNames: ["controller"],
      buckets: [0, ...LATENCY_BUCKETS_SECONDS],
      registers,
    }),
    reconcileTimeouts: new Counter({
      name: "covenant_reconcile_timeouts_total",
      help: "Reconciles that ran past their deadline and were abandoned (also counted as errors).",
      labelNames: ["controller"],
      registers,
    }),
    informerRelists: new Counter({
      name: "covenant_informer_relists_total",
      help: "Full lists performed by an informer, by reason.",
      labelNames: ["resource", "reason"],
      registers,
    }),
    informerEvents: new Counter({
      name: "covenant_informer_watch_events_total",
      help: "Watch events received by an informer.",
      labelNames: ["resource", "type"],
      registers,
    }),
    leaderIsLeader: new Gauge({
      name: "covenant_leader_election_is_leader",
      help: "1 while this process holds the lease, else 0.",
      labelNames: ["lease"],
      registers,
    }),
    leaderTransitions: new Counter({
      name: "covenant_leader_election_transitions_total",
      help: "Times this process gained or lost leadership.",
      labelNames: ["lease"],
      registers,
    }),
    eventsEmitted: new Counter({
      name: "covenant_events_emitted_total",
      help: "Kubernetes Events written, by type and action (created or aggregated).",
      labelNames: ["type", "action"],
      registers,
    }),
    eventsDropped: new Counter({
      name: "covenant_events_dropped_total",
      help: "Kubernetes Events that could not be written, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    buildInfo: new Gauge({
      name: "covenant_operator_build_info",
      help: "Build information of the operator; value is always 1.",
      labelNames: ["version"],
      registers,
    }),
  };
  metrics.buildInfo.set({ version: options.version ?? "dev" }, 1);
  return metrics;
}
