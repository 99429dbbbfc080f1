/** Reconnect delays: exponential from `baseMs`, capped at `maxMs`, with "equal jitter". */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before reconnect attempt `attempt` (1 for the first retry): half of the capped
 * exponential is fixed, the other half random, so many operators do not retry in lockstep.
 */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new Error(`backoff attempt must be an integer >= 1, got ${attempt}`);
  if (!(p.baseMs > 0) || !(p.maxMs >= p.baseMs)) {
    throw new Error(`backoff needs 0 < baseMs <= maxMs, got ${p.baseMs} and ${p.maxMs}`);
  }
  const capped = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt - 1, 52));
  return Math.round(capped / 2 + (capped / 2) * random());
}
