import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TokenBucketLimiter, validateRateLimit } from "./ratelimit.ts";
import { FakeClock } from "./testing.ts";

describe("TokenBucketLimiter", () => {
  test("lets a burst through, then spaces requests at 1/qps", () => {
    const clock = new FakeClock();
    const b = new TokenBucketLimiter({ qps: 10, burst: 3 }, clock);
    assert.deepEqual([b.reserve(), b.reserve(), b.reserve()], [0, 0, 0]);
    // Reservations queue up: each next one 100 ms after the previous.
    assert.equal(Math.round(b.reserve()), 100);
    assert.equal(Math.round(b.reserve()), 200);
    clock.t += 1000; // the debt (2 tokens) is paid and 8 more accrue, capped at the burst
    assert.deepEqual([b.reserve(), b.reserve(), b.reserve()], [0, 0, 0]);
    assert.equal(Math.round(b.reserve()), 100);
  });

  test("refills at qps, never above burst", () => {
    const clock = new FakeClock();
    const b = new TokenBucketLimiter({ qps: 2, burst: 2 }, clock);
    b.reserve();
    b.reserve();
    clock.t += 500; // one token back
    assert.equal(b.reserve(), 0);
    assert.equal(Math.round(b.reserve()), 500);
    clock.t += 60_000;
    assert.deepEqual([b.reserve(), b.reserve()], [0, 0]);
    assert.ok(b.reserve() > 0);
  });

  test("wait sleeps for the reservation and answers the time waited", async () => {
    const clock = new FakeClock();
    const b = new TokenBucketLimiter({ qps: 4, burst: 1 }, clock);
    assert.equal(await b.wait(), 0);
    assert.equal(Math.round(await b.wait()), 250);
    assert.deepEqual(clock.slept.map(Math.round), [250]);
  });

  test("an aborted wait rejects and gives its token back", async () => {
    const clock = new FakeClock();
    const b = new TokenBucketLimiter({ qps: 1, burst: 1 }, clock);
    b.reserve();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(b.wait(ac.signal), { name: "AbortError" });
    // The aborted caller did not keep a token: the next one waits 1 s, not 2 s.
    assert.equal(Math.round(b.reserve()), 1000);
  });

  test("an abort while sleeping (real clock) rejects promptly and returns the token", async () => {
    const b = new TokenBucketLimiter({ qps: 0.01, burst: 1 }); // next token in 100 s
    b.reserve();
    const ac = new AbortController();
    const waiting = b.wait(ac.signal);
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(waiting, { name: "AbortError" });
    assert.ok(b.reserve() < 100_001);
  });

  test("qps 0 disables limiting", () => {
    const b = new TokenBucketLimiter({ qps: 0, burst: 1 }, new FakeClock());
    for (let i = 0; i < 1000; i++) assert.equal(b.reserve(), 0);
  });

  test("refuses limits that cannot work", () => {
    assert.throws(() => validateRateLimit({ qps: -1, burst: 1 }), /qps/);
    assert.throws(() => validateRateLimit({ qps: NaN, burst: 1 }), /qps/);
    assert.throws(() => validateRateLimit({ qps: 1, burst: 0 }), /burst/);
    assert.throws(() => validateRateLimit({ qps: 1, burst: 1.5 }), /burst/);
  });
});
