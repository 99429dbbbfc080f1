/**
 * An event recorder writing core/v1 Events that aggregates repeats: the same
 * (object, type, reason, message, component) becomes one Event whose `count` and
 * `lastTimestamp` move, never a new object.
 *
 * The Event name is derived from the aggregation key, so a restarted operator (or a second
 * replica) finds and increments the existing Event instead of creating another. Writes are
 * asynchronous and serialised per key; repeats recorded while a write is in flight are
 * folded into the next write. Recording never throws: invalid input, rate limiting and API
 * errors are counted in `covenant_events_dropped_total` and logged.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { OperatorMetrics } from "../metrics/registry.ts";
import { isAlreadyExists, isNotFound, type KubeClient } from "./client.ts";
import { CORE } from "./keys.ts";
import { silentLogger, type Logger } from "../../protocol/log.ts";

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  normal(obj: KubernetesObject, reason: string, message: string): void;
  warning(obj: KubernetesObject, reason: string, message: string): void;
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): void;
  /** Resolves when every recorded event has been written (or dropped). */
  flush(): Promise<void>;
}

export interface CoreEvent extends KubernetesObject {
  involvedObject: {
    apiVersion?: string;
    kind?: string;
    name?: string;
    namespace?: string;
    uid?: string;
  };
  reason: string;
  message: string;
  type: EventType;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
}

export interface EventRecorderOptions {
  /** `source.component` and `reportingComponent`, e.g. `covenant-operator`. */
  component: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance?: string;
  metrics?: OperatorMetrics;
  logger?: Logger;
  /** New (not aggregated) Events per involved object: burst, then one per `refillMs`. */
  burst?: number;
  refillMs?: number;
  /** Aggregation keys remembered (least recently used forgotten first). */
  maxKeys?: number;
  now?: () => Date;
}

export const MAX_EVENT_MESSAGE = 1024;
const REASON = /^[A-Z][A-Za-z0-9]{0,127}$/;

/** The identity of an event for aggregation. */
export interface EventKeyParts {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  type: EventType;
  reason: string;
  message: string;
  component: string;
}

export function eventKeyParts(
  obj: KubernetesObject,
  type: EventType,
  reason: string,
  message: string,
  component: string,
): EventKeyParts {
  return {
    apiVersion: obj.apiVersion ?? "",
    kind: obj.kind ?? "",
    namespace: obj.metadata?.namespace ?? "",
    name: obj.metadata?.name ?? "",
    uid: obj.metadata?.uid ?? "",
    type,
    reason,
    message: truncateMessage(message),
    component,
  };
}

export function aggregationKey(p: EventKeyParts): string {
  return JSON.stringify([
    p.apiVersion,
    p.kind,
    p.namespace,
    p.name,
    p.uid,
    p.type,
    p.reason,
    p.message,
    p.component,
  ]);
}

/** `<object name>.<16 hex digits of the key hash>`: stable across restarts and replicas. */
export function eventName(p: EventKeyParts): string {
  const hash = createHash("sha256").update(aggregationKey(p)).digest("hex").slice(0, 16);
  return `${p.name.slice(0, 200)}.${hash}`;
}

export function truncateMessage(message: string): string {
  return message.length <= MAX_EVENT_MESSAGE ? message : message.slice(0, MAX_EVENT_MESSAGE - 3) + "...";
}

/** Events of cluster-scoped objects go to `default`, as kubectl expects. */
const eventNamespace = (p: EventKeyParts): string => p.namespace || "default";

interface KeyState {
  parts: EventKeyParts;
  /** Count already stored in the API (0: not yet created). */
  stored: number;
  /** Repeats recorded but not yet written. */
  pending: number;
  writing: Promise<void> | undefined;
}

export class AggregatingEventRecorder implements EventRecorder {
  private readonly keys = new Map<string, KeyState>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(
    private readonly client: KubeClient,
    private readonly options: EventRecorderOptions,
  ) {
    this.log = (options.logger ?? silentLogger).child({ component: "events" });
    this.now = options.now ?? (() => new Date());
  }

  normal(obj: KubernetesObject, reason: string, message: string): void {
    this.event(obj, "Normal", reason, message);
  }

  warning(obj: KubernetesObject, reason: string, message: string): void {
    this.event(obj, "Warning", reason, message);
  }

  event(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    try {
      this.record(obj, type, reason, message);
    } catch (e) {
      this.drop("invalid", { error: e });
    }
  }

  async flush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private record(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    if (!obj?.metadata?.name || !obj.kind)
      return this.drop("invalid", { why: "object without kind or name" });
    if (type !== "Normal" && type !== "Warning") return this.drop("invalid", { why: "type", type });
    if (!REASON.test(reason)) return this.drop("invalid", { why: "reason must be CamelCase", reason });
    const parts = eventKeyParts(obj, type, reason, message, this.options.component);
    const key = aggregationKey(parts);
    let st = this.keys.get(key);
    if (st) {
      this.keys.delete(key); // refresh LRU position
      this.keys.set(key, st);
    } else {
      if (!this.allow(`${parts.kind}/${parts.namespace}/${parts.name}`))
        return this.drop("rate_limited", { reason });
      st = { parts, stored: 0, pending: 0, writing: undefined };
      this.keys.set(key, st);
      this.evict();
    }
    st.pending++;
    if (!st.writing) {
      const p = this.writeLoop(st).finally(() => {
        st.writing = undefined;
        this.inflight.delete(p);
      });
      st.writing = p;
      this.inflight.add(p);
    }
  }

  private async writeLoop(st: KeyState): Promise<void> {
    while (st.pending > 0) {
      const n = st.pending;
      st.pending = 0;
      try {
        await this.write(st, n);
      } catch (e) {
        this.drop("api_error", { error: e, reason: st.parts.reason });
      }
    }
  }

  private async write(st: KeyState, n: number): Promise<void> {
    const p = st.parts;
    const ns = eventNamespace(p);
    const name = eventName(p);
    const ts = this.now()
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
    if (st.stored > 0) {
      try {
        const updated = await this.client.patch<CoreEvent>(
          CORE.events,
          ns,
          name,
          { count: st.stored + n, lastTimestamp: ts },
          "merge",
        );
        st.stored = updated.count ?? st.stored + n;
        this.options.metrics?.eventsEmitted.inc({ type: p.type, action: "aggregated" });
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
        st.stored = 0; // expired meanwhile (events have a TTL): create it again
      }
    }
    const event: CoreEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: ns },
      involvedObject: {
        apiVersion: p.apiVersion,
        kind: p.kind,
        name: p.name,
        namespace: p.namespace || undefined,
        uid: p.uid || undefined,
      },
      type: p.type,
      reason: p.reason,
      message: p.message,
      count: n,
      firstTimestamp: ts,
      lastTimestamp: ts,
      source: { component: this.options.component },
      reportingComponent: this.options.component,
      reportingInstance: this.options.instance ?? "",
    };
    try {
      const created = await this.client.create<CoreEvent>(CORE.events, event);
      st.stored = created.count ?? n;
      this.options.metrics?.eventsEmitted.inc({ type: p.type, action: "created" });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      // Written by an earlier process or another replica: add to its count.
      const existing = await this.client.get<CoreEvent>(CORE.events, ns, name);
      const updated = await this.client.patch<CoreEvent>(
        CORE.events,
        ns,
        name,
        {
          count: (existing.count ?? 1) + n,
          lastTimestamp: ts,
          metadata: { resourceVersion: existing.metadata?.resourceVersion },
        },
        "merge",
      );
      st.stored = updated.count ?? (existing.count ?? 1) + n;
      this.options.metrics?.eventsEmitted.inc({ type: p.type, action: "aggregated" });
    }
  }

  /** Per-object token bucket for new Events. */
  private allow(object: string): boolean {
    const burst = this.options.burst ?? 25;
    const refill = this.options.refillMs ?? 5 * 60_000;
    const t = this.now().getTime();
    const b = this.buckets.get(object) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + (t - b.at) / refill);
    b.at = t;
    this.buckets.delete(object);
    this.buckets.set(object, b);
    if (this.buckets.size > (this.options.maxKeys ?? 4096)) {
      this.buckets.delete(this.buckets.keys().next().value!);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private evict(): void {
    const max = this.options.maxKeys ?? 4096;
    for (const [k, st] of this.keys) {
      if (this.keys.size <= max) break;
      if (!st.writing) this.keys.delete(k);
    }
  }

  private drop(reason: "invalid" | "rate_limited" | "api_error", fields: Record<string, unknown>): void {
    this.options.metrics?.eventsDropped.inc({ reason });
    this.log.warn("event dropped", { dropReason: reason, ...fields });
  }
}
