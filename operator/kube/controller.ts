/**
 * A Controller drives one reconciler from informer events through a work queue.
 *
 * - `for`: the primary resource; each add/update/delete queues `Kind/namespace/name`.
 * - `owns`: child resources; an event on a child queues its controlling owner (the owner
 *   reference with `controller: true`, or any owner reference of the primary kind).
 * - `watches`: other resources with a mapping function to primary keys.
 *
 * Workers (default 2) take keys from the queue; a key is never reconciled by two workers at
 * once. A reconcile that throws is retried with per-key exponential backoff; one that
 * answers `{ requeueAfterMs }` runs again after that delay; success resets the backoff.
 * Reconciles start only after `start()` (when the Manager leads); events before that
 * accumulate in the queue, deduplicated by key.
 *
 * Every reconcile has a deadline (`reconcileTimeoutMs`, default 60 s). When it passes, the
 * reconcile's signal aborts (and with it the API requests of `ctx.client`), the worker moves
 * on at once, even if the reconciler ignores the signal and its promise never settles, and
 * the key is retried with backoff like a failure. A reconciler that ignores the signal may
 * still be running when its key comes round again: reconciles must be idempotent anyway.
 */
import type { KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";
import type { OperatorMetrics } from "../metrics/registry.ts";
import type { RateLimiter } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import type { EventRecorder } from "./events.ts";
import type { EventHandlers, Informer } from "./informer.ts";
import { apiVersionOf, groupOf, isGroupKind, parseQueueKey, queueKey, type ResourceRef } from "./keys.ts";
import { silentLogger, type Logger } from "../../protocol/log.ts";
import { WorkQueue } from "./queue.ts";

export interface ReconcileRequest {
  /** `Kind/namespace/name`. */
  key: string;
  kind: string;
  namespace: string | undefined;
  name: string;
}

export interface ReconcileContext {
  /** Client whose API requests are counted under this controller. */
  client: KubeClient;
  log: Logger;
  recorder: EventRecorder;
  /**
   * Aborted when the manager shuts down or the reconcile's deadline passes (reason: a
   * ReconcileTimeoutError); long operations should stop early. `client` honours it already.
   */
  signal: AbortSignal;
  /** The field manager of this controller for server-side apply. */
  fieldManager: string;
}

// `void` lets reconcilers that never requeue just return.
export type ReconcileResult = { requeueAfterMs?: number } | void;

/** What a controller needs of a secondary informer: any `Informer<T>` is one. */
export interface EventSource {
  addHandler(h: EventHandlers<KubernetesObject>): () => void;
}

export interface Watch {
  informer: EventSource;
  /** Primary objects to reconcile for an event on `obj`. */
  map(obj: KubernetesObject): { namespace: string | undefined; name: string }[];
}

export interface ControllerSpec<T extends KubernetesObject = KubernetesObject> {
  /** Unique; used in metrics, logs and as the default field manager `covenant-<name>`. */
  name: string;
  for: Informer<T>;
  owns?: EventSource[];
  watches?: Watch[];
  reconcile(req: ReconcileRequest, ctx: ReconcileContext): Promise<ReconcileResult>;
  /** Concurrent reconciles of different keys; default 2. */
  workers?: number;
  /** Deadline of one reconcile; default the manager's, else 60 s (DEFAULT_RECONCILE_TIMEOUT_MS). */
  reconcileTimeoutMs?: number;
  rateLimiter?: RateLimiter;
  fieldManager?: string;
}

export interface ControllerDeps {
  client: KubeClient;
  recorder: EventRecorder;
  metrics?: OperatorMetrics;
  logger?: Logger;
  /** Deadline of reconciles of controllers that set none. */
  reconcileTimeoutMs?: number;
}

/**
 * One minute: a reconcile is a handful of API requests (each with a 30 s timeout and at most
 * ~30 s of Retry-After waits), so a reconcile still running after a minute is stuck, not slow.
 * Without a deadline (controller-runtime sets none by default) one hung await holds a worker
 * for good, and with the default 2 workers two of them stall the controller.
 */
export const DEFAULT_RECONCILE_TIMEOUT_MS = 60_000;

/** The reason of a reconcile's signal when its deadline passed. */
export class ReconcileTimeoutError extends Error {
  override readonly name = "ReconcileTimeoutError";
  constructor(
    readonly key: string,
    readonly timeoutMs: number,
  ) {
    super(`reconcile of ${key} timed out after ${timeoutMs} ms`);
  }
}

const TIMED_OUT = Symbol("timed out");

export class Controller<T extends KubernetesObject = KubernetesObject> {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly fieldManager: string;
  private readonly primary: ResourceRef;
  private readonly log: Logger;
  private readonly client: KubeClient;
  private readonly timeoutMs: number;
  private readonly abort = new AbortController();
  private readonly unregister: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private started = false;

  constructor(
    private readonly spec: ControllerSpec<T>,
    private readonly deps: ControllerDeps,
  ) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(spec.name)) {
      throw new Error(`controller name "${spec.name}" must be lower-case letters, digits and dashes`);
    }
    this.name = spec.name;
    this.primary = spec.for.resource;
    this.fieldManager = spec.fieldManager ?? `covenant-${spec.name}`;
    this.log = (deps.logger ?? silentLogger).child({ controller: spec.name });
    this.client = deps.client.withCaller(spec.name);
    this.timeoutMs = spec.reconcileTimeoutMs ?? deps.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS;
    if (!(Number.isFinite(this.timeoutMs) && this.timeoutMs > 0)) {
      throw new Error(`controller "${spec.name}": reconcileTimeoutMs must be > 0, got ${this.timeoutMs}`);
    }
    this.queue = new WorkQueue({ name: spec.name, rateLimiter: spec.rateLimiter, metrics: deps.metrics });
    this.wire();
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** Queues a primary object by namespace and name. */
  enqueue(namespace: string | undefined, name: string, afterMs = 0): void {
    const key = queueKey(this.primary.kind, namespace, name);
    if (afterMs > 0) this.queue.addAfter(key, afterMs);
    else this.queue.add(key);
  }

  /** Starts the workers (idempotent). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const n = Math.max(1, this.spec.workers ?? 2);
    for (let i = 0; i < n; i++) this.workers.push(this.worker());
    this.log.info("controller started", { workers: n });
  }

  /** Stops intake, lets in-flight reconciles finish, and detaches from the informers. */
  async stop(): Promise<void> {
    for (const u of this.unregister.splice(0)) u();
    this.abort.abort();
    await this.queue.drain();
    await Promise.all(this.workers);
    this.log.info("controller stopped");
  }

  private wire(): void {
    const enqueueObj = (o: KubernetesObject): void => {
      if (o.metadata?.name) this.enqueue(o.metadata.namespace, o.metadata.name);
    };
    this.unregister.push(
      this.spec.for.addHandler({
        onAdd: enqueueObj,
        onUpdate: (_old, o) => enqueueObj(o),
        onDelete: enqueueObj,
      }),
    );
    const primaryApiVersion = apiVersionOf(this.primary);
    for (const inf of this.spec.owns ?? []) {
      const toOwner = (o: KubernetesObject): void => {
        const ref = ownerOf(o.metadata?.ownerReferences ?? [], this.primary.kind, primaryApiVersion);
        // Owner references are namespace-local: the owner lives in the child's namespace.
        if (ref) this.enqueue(this.primary.namespaced ? o.metadata?.namespace : undefined, ref.name);
      };
      this.unregister.push(
        inf.addHandler({
          onAdd: toOwner,
          onUpdate: (old, o) => {
            toOwner(o);
            // An owner change (adoption, orphaning) must wake the previous owner too.
            if (old !== o) toOwner(old);
          },
          onDelete: toOwner,
        }),
      );
    }
    for (const w of this.spec.watches ?? []) {
      const map = (o: KubernetesObject): void => {
        try {
          for (const r of w.map(o)) this.enqueue(r.namespace, r.name);
        } catch (e) {
          this.log.error("watch mapping threw", { error: e });
        }
      };
      this.unregister.push(w.informer.addHandler({ onAdd: map, onUpdate: (_o, n) => map(n), onDelete: map }));
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const req: ReconcileRequest = { key, ...parseQueueKey(key) };
    const log = this.log.child({ key });
    const started = performance.now();
    let result: "success" | "error" | "requeue" | "timeout" = "success";
    const deadline = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, deadline.signal]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => {
        // Settled before the abort, so that a reconcile rejecting on the abort loses the race.
        resolve(TIMED_OUT);
        deadline.abort(new ReconcileTimeoutError(key, this.timeoutMs));
      }, this.timeoutMs);
    });
    // A reconciler that throws synchronously rejects this promise like an async one.
    const running = new Promise<ReconcileResult>((resolve) =>
      resolve(
        this.spec.reconcile(req, {
          client: this.client.withSignal(signal),
          log,
          recorder: this.deps.recorder,
          signal,
          fieldManager: this.fieldManager,
        }),
      ),
    );
    try {
      const out = await Promise.race([running, timedOut]);
      if (out === TIMED_OUT) {
        result = "timeout";
        this.deps.metrics?.reconcileErrors.inc({ controller: this.name });
        if (this.deps.metrics) this.deps.metrics.reconcileTimeouts.inc({ controller: this.name });
        log.warn("reconcile timed out; retrying with backoff", {
          timeoutMs: this.timeoutMs,
          retries: this.queue.retries(key),
        });
        // The worker moves on now; say when (if ever) the abandoned reconcile ends.
        running.then(
          () =>
            log.info("timed-out reconcile finished late", {
              afterMs: Math.round(performance.now() - started),
            }),
          (e: unknown) =>
            log.info("timed-out reconcile failed late", {
              error: e,
              afterMs: Math.round(performance.now() - started),
            }),
        );
        this.queue.addRateLimited(key);
        return;
      }
      this.queue.forget(key);
      const after = out?.requeueAfterMs;
      if (after !== undefined && after >= 0) {
        result = "requeue";
        this.queue.addAfter(key, after);
      }
    } catch (e) {
      result = "error";
      this.deps.metrics?.reconcileErrors.inc({ controller: this.name });
      log.warn("reconcile failed; retrying with backoff", { error: e, retries: this.queue.retries(key) });
      this.queue.addRateLimited(key);
    } finally {
      clearTimeout(timer);
      this.deps.metrics?.reconcileDuration.observe(
        { controller: this.name, result },
        (performance.now() - started) / 1000,
      );
    }
  }
}

/**
 * The owner reference to follow: the controller reference if it is of the primary's group
 * and kind, else the first of them. Matched by group and kind, not by the exact apiVersion:
 * an owner reference written at another version of the group (before or after a CRD version
 * bump) names the same owner, as the garbage collector also sees it.
 */
export function ownerOf(
  refs: V1OwnerReference[],
  kind: string,
  apiVersion: string,
): V1OwnerReference | undefined {
  const primary = { group: groupOf(apiVersion), kind };
  const ofKind = refs.filter((r) => isGroupKind(r, primary));
  return ofKind.find((r) => r.controller) ?? ofKind[0];
}
