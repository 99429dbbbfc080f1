import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffMs, planCache } from "./plan.ts";
import type { CachedShard, PlanInput } from "./plan.ts";

const MB = 1_000_000;
const on = (entries: [number, number, boolean?][]) =>
  new Map<number, CachedShard>(
    entries.map(([s, lastUsed, verified]) => [s, { bytes: MB, lastUsed, verified: verified ?? true }]),
  );

const plan = (p: Partial<PlanInput>) =>
  planCache({
    wanted: [],
    cached: new Map(),
    inFlight: new Set(),
    held: new Set(),
    sizeOf: () => MB,
    maxBytes: 10 * MB,
    maxConcurrent: 2,
    ...p,
  });

test("fetches wanted shards not on disk, most urgent first, up to the concurrency", () => {
  assert.deepEqual(plan({ wanted: [5, 1, 3] }), { fetch: [5, 1], evict: [], overBy: 0 });
  assert.deepEqual(plan({ wanted: [5, 1, 3], inFlight: new Set([5]) }).fetch, [1]);
  assert.deepEqual(plan({ wanted: [5, 1, 3], inFlight: new Set([5, 7]) }).fetch, []);
  assert.deepEqual(plan({ wanted: [5, 1, 3], cached: on([[5, 0]]) }).fetch, [1, 3]);
  assert.deepEqual(plan({ wanted: [1, 1, 1, 2] }).fetch, [1, 2], "a shard wanted twice is fetched once");
});

test("a file left by an earlier process is checked (fetched) before use, without counting as coming", () => {
  const p = plan({ wanted: [4], cached: on([[4, 0, false]]) });
  assert.deepEqual(p.fetch, [4]);
  assert.deepEqual(p.evict, []);
});

test("shards backing off or out of attempts wait", () => {
  assert.deepEqual(plan({ wanted: [1, 2, 3], held: new Set([1]) }).fetch, [2, 3]);
});

test("evicts only beyond the bound, least recently used first, never a wanted or busy shard", () => {
  const cached = on([
    [1, 300],
    [2, 100],
    [3, 200],
    [4, 50],
  ]);
  // 4 MB held, 2 MB coming, bound 5 MB: one must go, the least recently used unwanted one.
  const p = plan({ wanted: [4, 8, 9], cached, maxBytes: 5 * MB });
  assert.deepEqual(p.evict, [2]);
  assert.deepEqual(p.fetch, [8, 9]);
  assert.equal(p.overBy, 0);
  // Within the bound nothing goes.
  assert.deepEqual(plan({ wanted: [4, 8, 9], cached, maxBytes: 6 * MB }).evict, []);
  // A shard being checked is not evicted under it.
  assert.deepEqual(plan({ wanted: [4, 8, 9], cached, maxBytes: 5 * MB, inFlight: new Set([2]) }).evict, [3]);
});

test("wanted shards beyond the bound are still fetched; the overrun is reported", () => {
  const p = plan({
    wanted: [1, 2, 3],
    cached: on([
      [1, 0],
      [7, 0],
    ]),
    maxBytes: 2 * MB,
  });
  assert.deepEqual(p.evict, [7]);
  assert.deepEqual(p.fetch, [2, 3]);
  assert.equal(p.overBy, MB);
});

test("backoff doubles from the base up to the cap", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, 1000, 10_000)),
    [1000, 2000, 4000, 8000, 10_000, 10_000],
  );
});
