import assert from "node:assert/strict";
import { test } from "node:test";
import { rng, sampleSequences } from "./sampling.ts";

const req = { run: "r", hotkey: "h", round: 3, shards: [4, 9, 17], sequencesPerShard: 1000, count: 64 };

test("the same inputs give the same sample; any change gives another", () => {
  assert.deepEqual(sampleSequences(req), sampleSequences({ ...req }));
  assert.notDeepEqual(sampleSequences(req), sampleSequences({ ...req, round: 4 }));
  assert.notDeepEqual(sampleSequences(req), sampleSequences({ ...req, hotkey: "g" }));
});

test("draws stay inside the assigned shards and cover them", () => {
  const s = sampleSequences({ ...req, count: 3000 });
  assert.ok(s.every((x) => req.shards.includes(x.shard) && x.index >= 0 && x.index < 1000));
  for (const shard of req.shards) {
    const n = s.filter((x) => x.shard === shard).length;
    assert.ok(n > 850 && n < 1150, `shard ${shard} drawn ${n} times of 3000`);
  }
  assert.deepEqual(sampleSequences({ ...req, shards: [] }), []);
});

test("the generator is a fixed sequence (xoshiro128**)", () => {
  const a = rng("seed");
  const b = rng("seed");
  const xs = Array.from({ length: 5 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b()),
  );
  assert.ok(xs.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
  assert.equal(new Set(xs).size, 5);
});
