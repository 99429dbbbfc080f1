/**
 * A rate-limited work queue of string keys with the semantics controllers need:
 *
 * - a key is queued at most once (adds of a queued key coalesce);
 * - a key is never handed to two workers at once: adds while it is processing mark it
 *   dirty, and `done` re-queues it once;
 * - `addAfter` delays a key (the earliest pending delay wins), `addRateLimited` delays it by
 *   the rate limiter (per-key exponential backoff, overall bucket), `forget` resets backoff;
 * - `shutDown` stops intake and drops what waits; `drain` also waits for in-flight keys.
 */
import type { OperatorMetrics } from "../metrics/registry.ts";
import { defaultRateLimiter, type RateLimiter } from "./backoff.ts";

export interface WorkQueueOptions {
  name: string;
  rateLimiter?: RateLimiter;
  metrics?: OperatorMetrics;
}

export class WorkQueue {
  readonly name: string;
  private readonly limiter: RateLimiter;
  private readonly metrics: OperatorMetrics | undefined;
  /** Ready keys in FIFO order. */
  private readonly ready: string[] = [];
  private readonly readySet = new Set<string>();
  /** When each ready key was added (queue latency metric). */
  private readonly addedAt = new Map<string, number>();
  private readonly processing = new Set<string>();
  /** Keys added while processing: re-queued by `done`. */
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.limiter = options.rateLimiter ?? defaultRateLimiter();
    this.metrics = options.metrics;
  }

  /** Keys ready or delayed (not counting those being processed). */
  len(): number {
    // A ready key is never delayed or dirty; a dirty key may also be delayed.
    let dirtyOnly = 0;
    for (const k of this.dirty) if (!this.delayed.has(k)) dirtyOnly++;
    return this.readySet.size + this.delayed.size + dirtyOnly;
  }

  get isShutDown(): boolean {
    return this.shuttingDown;
  }

  inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    const pending = this.delayed.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      if (!this.dirty.has(key)) this.metrics?.queueAdds.inc({ name: this.name });
      this.dirty.add(key);
      this.updateDepth();
      return;
    }
    if (this.readySet.has(key)) return;
    this.metrics?.queueAdds.inc({ name: this.name });
    this.readySet.add(key);
    this.addedAt.set(key, performance.now());
    const w = this.waiters.shift();
    if (w) {
      this.readySet.delete(key);
      this.take(key);
      w(key);
    } else {
      this.ready.push(key);
    }
    this.updateDepth();
  }

  /** Adds `key` after `ms`; an earlier pending delay for the key is kept, a later one replaced. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) return this.add(key);
    if (this.readySet.has(key)) return;
    const at = performance.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
    this.updateDepth();
  }

  /** Adds `key` after the rate limiter's delay (counts a retry). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.queueRetries.inc({ name: this.name });
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the backoff of `key`. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /**
   * Waits for the next key; the caller owns it until `done(key)`. Answers undefined once the
   * queue is shut down.
   */
  get(): Promise<string | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) {
      this.readySet.delete(key);
      this.take(key);
      this.updateDepth();
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.delete(key)) this.add(key);
    if (this.processing.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.updateDepth();
  }

  /**
   * Stops intake: adds are ignored; ready, dirty and delayed keys are dropped (a level-triggered
   * controller re-lists them on its next start); waiting workers get undefined. Keys being
   * processed finish normally.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.ready.length = 0;
    this.readySet.clear();
    this.addedAt.clear();
    this.dirty.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.updateDepth();
  }

  /** Shuts down and resolves once no key is being processed. */
  async drain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private take(key: string): void {
    this.processing.add(key);
    const t = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (t !== undefined)
      this.metrics?.queueLatency.observe({ name: this.name }, (performance.now() - t) / 1000);
  }

  private updateDepth(): void {
    this.metrics?.queueDepth.set({ name: this.name }, this.len());
  }
}
