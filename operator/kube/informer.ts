/**
 * A list+watch informer: lists a resource (paged), then watches from the list's
 * resourceVersion with bookmarks, keeping a Store in step and calling handlers.
 *
 * - watch closed by the server (timeout): re-watch from the last resourceVersion seen
 *   (bookmarks keep it fresh even when nothing changes);
 * - 410 Gone (the resourceVersion was compacted away): re-list, and send handlers the
 *   differences (adds, updates, deletes of objects that vanished meanwhile);
 * - other errors: retry with capped exponential backoff;
 * - resync: every `resyncMs` handlers get `onUpdate(obj, obj)` for every cached object,
 *   so level-triggered controllers re-check the world without API calls.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { OperatorMetrics } from "../metrics/registry.ts";
import { Store } from "./cache.ts";
import { isGone, type KubeClient, type WatchEvent } from "./client.ts";
import { keyOf, resourceLabel, type ResourceRef } from "./keys.ts";
import { silentLogger, type Logger } from "../../protocol/log.ts";

export interface EventHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T extends KubernetesObject = KubernetesObject> {
  resource: ResourceRef;
  /** Watch one namespace; all namespaces when absent (cluster-scoped resources ignore it). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Period of resync callbacks; 0 disables. Default 10 min. */
  resyncMs?: number;
  /** Page size of lists. Default 500. */
  pageSize?: number;
  /** Server-side watch timeout in seconds; a random value in [300, 600) by default. */
  watchTimeoutSeconds?: number;
  /**
   * Applied to every object before it is cached and handed to handlers, e.g.
   * `stripManagedFields` to save memory on large caches.
   */
  transform?: (obj: T) => T;
  metrics?: OperatorMetrics;
  logger?: Logger;
}

/** A transform that drops `metadata.managedFields` (often half of an object's size). */
export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/** Shortest interval between two watch requests that ended without error. */
const MIN_WATCH_MS = 1000;

export type RelistReason = "initial" | "gone" | "error";

export class Informer<T extends KubernetesObject> {
  readonly store = new Store<T>();
  readonly resource: ResourceRef;
  private readonly handlers = new Set<EventHandlers<T>>();
  private readonly log: Logger;
  private readonly label: string;
  private resourceVersion = "";
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: InformerOptions<T>,
  ) {
    this.resource = options.resource;
    this.label = resourceLabel(options.resource);
    this.log = (options.logger ?? silentLogger).child({ informer: this.label });
  }

  /** Registers handlers; objects already cached are replayed as adds. Answers an unregister function. */
  addHandler(h: EventHandlers<T>): () => void {
    this.handlers.add(h);
    if (h.onAdd) for (const o of this.store.list()) this.call(() => h.onAdd!(o));
    return () => this.handlers.delete(h);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** The resourceVersion of the last list, event or bookmark. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Resolves after the first complete list has been delivered to handlers. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => resolve();
      this.syncWaiters.push(done);
      signal?.addEventListener("abort", () => reject(new Error(`informer ${this.label}: sync aborted`)), {
        once: true,
      });
    });
  }

  /** Starts listing and watching in the background (idempotent). */
  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
    const resync = this.options.resyncMs ?? 10 * 60_000;
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.resync(), resync);
    }
  }

  async stop(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    this.abort?.abort();
    this.sleeping?.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** Calls onUpdate(obj, obj) for every cached object. */
  resync(): void {
    if (!this.synced) return;
    for (const o of this.store.list()) this.emit("update", o, o);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let needList: RelistReason | undefined = "initial";
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.list(needList, signal);
          needList = undefined;
        }
        const watchStarted = performance.now();
        await this.client.watch<T>(
          this.resource,
          {
            namespace: this.options.namespace,
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.options.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
          },
          (ev) => this.onEvent(ev),
          signal,
        );
        failures = 0;
        // A server that ends watches at once must not make this loop spin.
        const lived = performance.now() - watchStarted;
        if (lived < MIN_WATCH_MS && !signal.aborted) await this.sleep(MIN_WATCH_MS - lived);
      } catch (e) {
        if (signal.aborted) break;
        if (isGone(e)) {
          this.log.info("resourceVersion expired; re-listing", { resourceVersion: this.resourceVersion });
          needList = "gone";
          continue;
        }
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
        this.log.warn("list/watch failed; retrying", { error: e, retryInMs: delay, failures });
        // After repeated failures start over with a list: the watch position may be unusable.
        if (failures >= 3 && !needList) needList = "error";
        await this.sleep(delay);
      }
    }
  }

  private async list(reason: RelistReason, signal: AbortSignal): Promise<void> {
    this.options.metrics?.informerRelists.inc({ resource: this.label, reason });
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      if (signal.aborted) return;
      const page = await this.client.list<T>(this.resource, {
        namespace: this.options.namespace,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        limit: this.options.pageSize ?? 500,
        continue: cont,
      });
      for (const it of page.items) items.push(this.prepare(it));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? "";
    } while (cont);
    this.replace(items);
    this.resourceVersion = rv;
    this.log.debug("listed", { reason, count: items.length, resourceVersion: rv });
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** Makes the store equal to `items`, emitting the differences. */
  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const old = this.store.upsert(obj);
      if (!old) this.emit("add", obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit("update", obj, old);
    }
    for (const key of this.store.keys()) {
      if (seen.has(key)) continue;
      const old = this.store.remove(key);
      if (old) this.emit("delete", old);
    }
  }

  private onEvent(ev: WatchEvent<T>): void {
    const obj = ev.object;
    const rv = obj?.metadata?.resourceVersion;
    this.options.metrics?.informerEvents.inc({ resource: this.label, type: ev.type });
    if (ev.type === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (!obj?.metadata?.name) {
      this.log.warn("watch event without object name ignored", { type: ev.type });
      return;
    }
    const typed = this.prepare(obj);
    if (ev.type === "ADDED" || ev.type === "MODIFIED") {
      const old = this.store.upsert(typed);
      if (!old) this.emit("add", typed);
      else this.emit("update", typed, old);
    } else if (ev.type === "DELETED") {
      const old = this.store.remove(keyOf(typed));
      this.emit("delete", typed ?? old);
    }
    if (rv) this.resourceVersion = rv;
  }

  private prepare(obj: T): T {
    const typed = withTypeMeta(obj, this.resource);
    return this.options.transform ? this.options.transform(typed) : typed;
  }

  private emit(kind: "add" | "update" | "delete", obj: T, old?: T): void {
    for (const h of this.handlers) {
      if (kind === "add" && h.onAdd) this.call(() => h.onAdd!(obj));
      else if (kind === "update" && h.onUpdate) this.call(() => h.onUpdate!(old ?? obj, obj));
      else if (kind === "delete" && h.onDelete) this.call(() => h.onDelete!(obj));
    }
  }

  /** A throwing handler must not stop the informer. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error("event handler threw", { error: e });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeping = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeping = { timer, wake };
    });
  }
}

/** List items come without apiVersion/kind; fill them in so handlers can rely on them. */
function withTypeMeta<T extends KubernetesObject>(obj: T, r: ResourceRef): T {
  if (obj.kind && obj.apiVersion) return obj;
  obj.apiVersion = r.group === "" ? r.version : `${r.group}/${r.version}`;
  obj.kind = r.kind;
  return obj;
}
