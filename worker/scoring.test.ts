import assert from "node:assert/strict";
import { test } from "node:test";
import { choose, findCopies, overlap, roundScore, updateRatings } from "./scoring.ts";
import type { Outcome, PeerRating } from "./scoring.ts";

const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

const ev = (hotkey: string, own: number, random: number): Outcome => ({
  kind: "evaluated",
  evaluation: {
    hotkey,
    lossBeforeOwn: 2,
    lossAfterOwn: 2 - own,
    lossBeforeRandom: 2,
    lossAfterRandom: 2 - random,
  },
});

test("score is the relative improvement on random data; the indicator compares own and random", () => {
  const s = roundScore({
    hotkey: "a",
    lossBeforeOwn: 2,
    lossAfterOwn: 1.5,
    lossBeforeRandom: 2,
    lossAfterRandom: 1.8,
  });
  near(s.score, 0.1);
  assert.equal(s.indicator, 1);
  assert.equal(
    roundScore({
      hotkey: "a",
      lossBeforeOwn: 2,
      lossAfterOwn: NaN,
      lossBeforeRandom: 2,
      lossAfterRandom: NaN,
    }).score,
    -1,
  );
});

test("missing rounds decay the rating x0.75, x0.5, then 0; invalid or copied zero it", () => {
  let r = updateRatings(
    new Map(),
    ["a", "b", "c"],
    new Map([
      ["a", ev("a", 0.4, 0.2)],
      ["b", ev("b", 0.4, 0.2)],
      ["c", ev("c", 0.4, 0.2)],
    ]),
  );
  near(r.get("a")!.rating, 0.1);
  r = updateRatings(
    r,
    ["a", "b", "c"],
    new Map([
      ["b", { kind: "penalised", reason: "invalid-payload" }],
      ["c", ev("c", 0.4, 0.2)],
    ]),
  );
  near(r.get("a")!.rating, 0.1 * 0.75);
  assert.equal(r.get("b")!.rating, 0);
  r = updateRatings(r, ["a"], new Map());
  near(r.get("a")!.rating, 0.1 * 0.75 * 0.5);
  r = updateRatings(r, ["a"], new Map([["a", { kind: "penalised", reason: "late" }]]));
  assert.equal(r.get("a")!.rating, 0, "late counts as missing: third miss");
  assert.equal(r.get("a")!.missed, 3);
  assert.ok(r.get("c")!.rating > 0.1 * 0.99 && r.get("c")!.indicator > 0);
});

test("copies are the later of two uploads whose kept indices overlap", () => {
  assert.equal(overlap([1, 2, 3, 4], [3, 4, 5, 6]), 0.5);
  assert.equal(overlap([], [1]), 0);
  const copies = findCopies(
    [
      { hotkey: "copier", order: 9, indices: [1, 2, 3, 4, 5] },
      { hotkey: "honest", order: 3, indices: [1, 2, 3, 4, 6] },
      { hotkey: "other", order: 5, indices: [7, 8, 9, 10, 11] },
    ],
    0.8,
  );
  assert.deepEqual([...copies], [["copier", "honest"]]);
});

test("selection takes the best G by rating and the next ones as reserves, deterministically", () => {
  const ratings = new Map<string, PeerRating>([
    ["a", { rating: 0.1, indicator: 0, missed: 0, rounds: 1 }],
    ["b", { rating: 0.3, indicator: 0, missed: 0, rounds: 1 }],
    ["c", { rating: 0.2, indicator: 0, missed: 0, rounds: 1 }],
  ]);
  const cands = ["a", "b", "c", "d"].map((hotkey) => ({ hotkey, digest: hotkey }));
  const { selected, reserves } = choose(cands, ratings, 2, 1);
  assert.deepEqual(
    selected.map((c) => c.hotkey),
    ["b", "c"],
    "selected in hotkey order",
  );
  assert.deepEqual(
    reserves.map((c) => c.hotkey),
    ["a"],
  );
  assert.deepEqual(choose([...cands].reverse(), ratings, 2, 1), { selected, reserves });
});
