import assert from "node:assert/strict";
import { test } from "node:test";
import { acceptable, choose, evaluationClip, rewards, roundScore, updateRatings } from "./scoring.ts";
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

const rated = (rating: number, scored = 5): PeerRating => ({
  rating,
  indicator: 0,
  missed: 0,
  rounds: scored,
  scored,
});
const cand = (hotkey: string, score?: number, own?: number) => ({ hotkey, digest: hotkey, score, own });

test("selection takes the best G acceptable by rating and the next ones as reserves, deterministically", () => {
  const ratings = new Map<string, PeerRating>([
    ["a", rated(0.05)],
    ["b", rated(0.3)],
    ["c", rated(0.2)],
    ["d", rated(0.15)],
  ]);
  const cands = ["a", "b", "c", "d"].map((h) => cand(h, 0.01));
  const { selected, reserves, refused } = choose(cands, ratings, 2, 1);
  assert.deepEqual(
    selected.map((c) => c.hotkey),
    ["b", "c"],
    "selected in hotkey order",
  );
  assert.deepEqual(
    reserves.map((c) => c.hotkey),
    ["d"],
  );
  assert.deepEqual([...refused.keys()], ["a"], "0.05 is below half the median 0.175");
  assert.deepEqual(selected[0], { hotkey: "b", digest: "b" }, "picks carry hotkey and digest only");
  assert.deepEqual(choose([...cands].reverse(), ratings, 2, 1), { selected, reserves, refused });
});

test("a harmful or useless payload is never aggregated, even with places to spare", () => {
  const ratings = new Map<string, PeerRating>([
    ["honest1", rated(0.1)],
    ["honest2", rated(0.12)],
    ["honest3", rated(0.09)],
    ["flip", rated(-0.2)],
    ["zeros", rated(0)],
    ["lazy", rated(0.02)],
    ["turncoat", rated(0.11)],
  ]);
  const cands = [
    cand("honest1", 0.05),
    cand("honest2", 0.06),
    cand("honest3", 0.04),
    cand("flip", -0.1),
    cand("zeros", 0),
    cand("lazy", 0.01),
    // A good history does not carry a payload that hurts this round.
    cand("turncoat", -0.02),
    // Not evaluated (no score): never aggregated.
    cand("unscored"),
  ];
  const { selected, reserves, refused } = choose(cands, ratings, 20, 10);
  assert.deepEqual(
    selected.map((c) => c.hotkey),
    ["honest1", "honest2", "honest3"],
  );
  assert.deepEqual(reserves, [], "refused payloads do not wait as reserves");
  assert.deepEqual([...refused.keys()].sort(), ["flip", "lazy", "turncoat", "unscored", "zeros"]);
  assert.match(refused.get("turncoat")!, /round score/);
  assert.match(refused.get("lazy")!, /below 0.5 x median/);
});

test("with G smaller than the acceptable payloads, reserves take the places refused ones free", () => {
  const ratings = new Map<string, PeerRating>([
    ["a", rated(0.5)],
    ["b", rated(0.4)],
    ["c", rated(0.3)],
    ["d", rated(0.3)],
  ]);
  // The best-rated one hurts this round: the next ones move up.
  const { selected, reserves } = choose(
    [cand("a", -0.01), cand("b", 0.02), cand("c", 0.02), cand("d", 0.02)],
    ratings,
    2,
    1,
  );
  assert.deepEqual(
    selected.map((c) => c.hotkey),
    ["b", "c"],
  );
  assert.deepEqual(
    reserves.map((c) => c.hotkey),
    ["d"],
  );
});

test("a noisy round is forgiven only to a payload that helps its own data and costs less than the reference", () => {
  // Ratings median 0.01: the reference an honest payload typically gains.
  const ratings = new Map<string, PeerRating>(
    ["h1", "h2", "h3", "flip", "overfit", "big", "zeros"].map((h) => [h, rated(0.01)]),
  );
  const v = acceptable(
    [
      cand("h1", 5e-3, 2e-2),
      // Honest, late in a run: a small random batch moved slightly up, its own data went down.
      cand("h2", -4e-4, 1.5e-2),
      cand("h3", -2.6e-3, 1e-2),
      // Sign-flipped: hurts its own data too.
      cand("flip", -4e-4, -1e-2),
      // Helps its own data, hurts the others' by more than an honest payload gains.
      cand("big", -1.2e-2, 3e-2),
      // A free-rider changes nothing anywhere.
      cand("zeros", 0, 0),
      // Not evaluated on its own data: no forgiveness.
      cand("overfit", -1e-4),
    ],
    ratings,
  );
  assert.deepEqual(
    [...v].filter(([, x]) => x.ok).map(([h]) => h),
    ["h1", "h2", "h3"],
  );
  for (const h of ["flip", "big", "zeros", "overfit"])
    assert.match((v.get(h) as { why: string }).why, /^round score .* <= 0 \(own data/, h);
});

test("new peers are judged by their round score against the other new peers' during warm-up", () => {
  const ratings = new Map<string, PeerRating>([["old", rated(0.2)]]);
  const v = acceptable(
    [cand("old", 0.05), cand("new1", 0.04), cand("new2", 0.05), cand("new3", 0.01), cand("new4", -0.01)],
    ratings,
    { ratingFloor: 0.5, minRoundScore: 0, warmupRounds: 2 },
  );
  assert.deepEqual(
    [...v].filter(([, x]) => x.ok).map(([h]) => h),
    ["old", "new1", "new2"],
  );
  assert.match((v.get("new3") as { why: string }).why, /warm-up/);
  // ratingFloor 0 keeps only the sign rules.
  const lax = acceptable([cand("new3", 0.01), cand("new1", 0.04)], ratings, {
    ratingFloor: 0,
    minRoundScore: 0,
    warmupRounds: 2,
  });
  assert.ok([...lax.values()].every((x) => x.ok));
});

test("weights on chain follow the selection floor: free-riders, lazy and new peers earn nothing", () => {
  const w = rewards(
    new Map<string, PeerRating>([
      ["h1", rated(0.1)],
      ["h2", rated(0.12)],
      ["h3", rated(0.08)],
      ["zeros", rated(0)],
      ["lazy", rated(0.01)],
      ["flip", rated(-0.3)],
      ["new", rated(0.2, 1)],
    ]),
  );
  assert.deepEqual(Object.fromEntries(w), {
    h1: 0.1,
    h2: 0.12,
    h3: 0.08,
    zeros: 0,
    lazy: 0,
    flip: 0,
    new: 0,
  });
});

test("the evaluation clip comes from the last selection, so free-riders cannot zero it", () => {
  // Five zero payloads and three honest ones: the round's median norm would be 0.
  const norms = [[0], [0], [0], [0], [0], [2], [3], [4]];
  assert.deepEqual(evaluationClip(undefined, norms, 1), [3], "before any selection: nonzero norms only");
  assert.deepEqual(evaluationClip([2.5], norms, 1), [2.5], "after one: the selected payloads' median");
  assert.deepEqual(evaluationClip(undefined, [[0], [0]], 1), [0]);
});
