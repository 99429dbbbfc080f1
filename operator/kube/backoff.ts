/**
 * Rate limiters for the work queue: exponential per-key backoff with a cap, an overall token
 * bucket, and the maximum of both (the default for controllers).
 */

export interface RateLimiter {
  /** Milliseconds to wait before `key` may be processed again; counts one failure. */
  when(key: string): number;
  /** Forgets the failures of `key` (call after a successful reconcile). */
  forget(key: string): void;
  /** Failures counted for `key` since it was last forgotten. */
  retries(key: string): number;
}

/** base * 2^failures, capped at max. */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 5 * 60_000,
  ) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new Error(`backoff: need 0 < baseMs <= maxMs, got ${baseMs} and ${maxMs}`);
    }
  }
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n; the cap keeps the answer finite.
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * A token bucket shared by all keys: `qps` tokens per second, at most `burst` saved up.
 * `when` reserves a token and answers how long until it is available.
 */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`token bucket: need qps > 0 and burst >= 1`);
    this.tokens = burst;
    this.last = now();
  }
  when(_key: string): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
  forget(_key: string): void {}
  retries(_key: string): number {
    return 0;
  }
}

/** The longest wait of several limiters; each limiter sees every call. */
export class MaxOf implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.retries(key)));
  }
}

/** Per-key backoff from 5 ms doubling to 5 min, and at most 10 retries/s overall (burst 100). */
export function defaultRateLimiter(): RateLimiter {
  return new MaxOf(new ExponentialBackoff(5, 5 * 60_000), new TokenBucket(10, 100));
}
