import assert from "node:assert/strict";
import { test } from "node:test";
import { roundAt, roundEndMs, submitDeadlineMs, timeliness, windowOf } from "./rounds.ts";

const clock = { startMs: 10_000, roundMs: 60_000, submitWindowMs: 5_000 };

test("windows follow block heights", () => {
  assert.equal(windowOf(0, 115), 0);
  assert.equal(windowOf(114, 115), 0);
  assert.equal(windowOf(115, 115), 1);
  assert.throws(() => windowOf(10, 0), /blocksPerWindow/);
});

test("rounds follow the clock", () => {
  assert.equal(roundAt(clock, 9_999), -1);
  assert.equal(roundAt(clock, 10_000), 0);
  assert.equal(roundAt(clock, 69_999), 0);
  assert.equal(roundAt(clock, 70_000), 1);
  assert.equal(roundEndMs(clock, 0), 70_000);
  assert.equal(submitDeadlineMs(clock, 0), 75_000);
});

test("submissions outside the round's window are early or late", () => {
  assert.equal(timeliness(clock, 1, 69_000), "early");
  assert.equal(timeliness(clock, 1, 131_000), "on-time");
  assert.equal(timeliness(clock, 1, 135_000), "on-time");
  assert.equal(timeliness(clock, 1, 135_001), "late");
});
