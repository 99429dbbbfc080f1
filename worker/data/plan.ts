// What the shard cache should do next, as a pure function of what it holds and what the
// worker wants: which shards to fetch (wanted, not held, not already coming, not backing
// off; no more than the concurrency allows) and which to evict (not wanted, least recently
// used first, only while the cache plus what is coming exceeds its size bound; a file an
// earlier process left is "fetched" by checking it, which costs no transfer). Wanted
// shards are never evicted and always fetched, even past the bound: a peer cannot train
// without them; the plan says by how much they overrun so the cache can warn.

export interface CachedShard {
  bytes: number;
  /** When the worker last wanted it (ms); least recently used is evicted first. */
  lastUsed: number;
  /**
   * Checked against the manifest by this process. A file found on disk at start (an earlier
   * run's) counts against the bound but is checked again before anyone trains on it.
   */
  verified: boolean;
}

export interface PlanInput {
  /** Shards wanted, most urgent first. */
  wanted: readonly number[];
  /** Shard files in the cache directory. */
  cached: ReadonlyMap<number, CachedShard>;
  /** Shards being fetched now. */
  inFlight: ReadonlySet<number>;
  /** Shards not to fetch now: backing off after a failure, or out of attempts. */
  held: ReadonlySet<number>;
  /** Size of a shard by the manifest. */
  sizeOf: (shard: number) => number;
  maxBytes: number;
  maxConcurrent: number;
}

export interface CachePlan {
  fetch: number[];
  evict: number[];
  /** Bytes by which the wanted shards alone exceed maxBytes (0 when they fit). */
  overBy: number;
}

export function planCache(input: PlanInput): CachePlan {
  const wanted = [...new Set(input.wanted)];
  const wantedSet = new Set(wanted);
  let cachedBytes = 0;
  for (const c of input.cached.values()) cachedBytes += c.bytes;
  // Bytes still to come for wanted shards (those in flight included: they land soon).
  const coming = wanted.filter((s) => !input.cached.has(s)).reduce((a, s) => a + input.sizeOf(s), 0);
  const candidates = [...input.cached.entries()]
    .filter(([s]) => !wantedSet.has(s) && !input.inFlight.has(s))
    .sort(([a, x], [b, y]) => x.lastUsed - y.lastUsed || a - b);
  const evict: number[] = [];
  for (const [s, c] of candidates) {
    if (cachedBytes + coming <= input.maxBytes) break;
    evict.push(s);
    cachedBytes -= c.bytes;
  }
  const room = Math.max(0, input.maxConcurrent - input.inFlight.size);
  const fetch = wanted
    .filter((s) => !input.cached.get(s)?.verified && !input.inFlight.has(s) && !input.held.has(s))
    .slice(0, room);
  return { fetch, evict, overBy: Math.max(0, cachedBytes + coming - input.maxBytes) };
}

/** Delay before attempt `attempt` (1 = the first retry): doubling from baseMs, capped at maxMs. */
export const backoffMs = (attempt: number, baseMs: number, maxMs: number): number =>
  Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
