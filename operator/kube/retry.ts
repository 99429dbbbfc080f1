/**
 * When to repeat a Kubernetes API request the server pushed back on, and after how long.
 * Pure: the client feeds it the response status and `Retry-After` header.
 *
 * - 429 Too Many Requests (Priority and Fairness, max-in-flight): the server did not process
 *   the request, so any verb may be sent again;
 * - 5xx with `Retry-After` (503 from an overloaded or starting API server, as client-go
 *   honours): the request may have been processed, so only GETs (get, list) are repeated;
 *   a write surfaces the error and the controller's own backoff decides.
 *
 * The wait is the server's `Retry-After`, capped so that a misbehaving proxy cannot park a
 * worker for minutes, and the number of repeats is bounded; after that the error surfaces.
 */

export interface RetryPolicy {
  /** Repeats after the first attempt; 0 disables retries. */
  maxRetries: number;
  /** Cap on one wait, whatever `Retry-After` says. */
  maxDelayMs: number;
}

/**
 * Three repeats of at most 10 s each: a GET then gives up after about 30 s of waiting, well
 * inside the default reconcile timeout (60 s), and Priority and Fairness' usual
 * `Retry-After: 1` is honoured several times. client-go repeats up to 10 times, but it has no
 * reconcile deadline to fit in.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: 3, maxDelayMs: 10_000 };

/** The wait for a 429 that carries no (valid) `Retry-After`. */
export const DEFAULT_429_DELAY_MS = 1000;

/**
 * `Retry-After` in milliseconds: delta-seconds (`"2"`) or an HTTP date relative to `nowMs`
 * (wall clock, ms since the epoch). Undefined when absent or malformed; never negative.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  // Date.parse also accepts plain numbers and odd strings; require an HTTP-date shape.
  if (!Number.isFinite(at) || !/[a-z]/i.test(v)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * Milliseconds to wait before repeating a request that answered `status`, or undefined when
 * it must not be repeated. `attempt` counts the attempts made so far, the first being 1.
 */
export function retryDelay(
  method: string,
  status: number,
  retryAfter: string | undefined,
  attempt: number,
  policy: Readonly<RetryPolicy>,
  nowMs: number,
): number | undefined {
  if (attempt > policy.maxRetries) return undefined;
  const after = parseRetryAfter(retryAfter, nowMs);
  let ms: number;
  if (status === 429) ms = after ?? DEFAULT_429_DELAY_MS;
  else if (status >= 500 && status <= 599 && method === "GET" && after !== undefined) ms = after;
  else return undefined;
  return Math.min(ms, policy.maxDelayMs);
}
