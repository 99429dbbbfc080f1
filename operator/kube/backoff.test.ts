import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ExponentialBackoff, MaxOf, TokenBucket, defaultRateLimiter } from "./backoff.ts";

describe("ExponentialBackoff", () => {
  test("doubles per failure from the base and stops at the cap", () => {
    const b = new ExponentialBackoff(10, 100);
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.when("k")),
      [10, 20, 40, 80, 100, 100],
    );
    assert.equal(b.retries("k"), 6);
  });

  test("keys back off independently and forget resets one key", () => {
    const b = new ExponentialBackoff(1, 1000);
    b.when("a");
    b.when("a");
    assert.equal(b.when("b"), 1);
    assert.equal(b.when("a"), 4);
    b.forget("a");
    assert.equal(b.when("a"), 1);
    assert.equal(b.when("b"), 2);
  });

  test("stays finite after very many failures", () => {
    const b = new ExponentialBackoff(5, 300_000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = b.when("k");
    assert.equal(last, 300_000);
  });

  test("rejects nonsensical parameters", () => {
    assert.throws(() => new ExponentialBackoff(0, 10), /baseMs/);
    assert.throws(() => new ExponentialBackoff(10, 5), /baseMs/);
  });
});

describe("TokenBucket", () => {
  test("allows a burst, then spaces requests at the rate", () => {
    let now = 0;
    const b = new TokenBucket(10, 3, () => now);
    assert.deepEqual([b.when("a"), b.when("b"), b.when("c")], [0, 0, 0]);
    assert.equal(b.when("d"), 100);
    assert.equal(b.when("e"), 200);
    now = 1000; // 10 tokens refilled, minus the 2 borrowed, capped at the burst of 3
    assert.equal(b.when("f"), 0);
  });
});

describe("MaxOf", () => {
  test("answers the longest wait of its limiters", () => {
    let now = 0;
    const m = new MaxOf(new ExponentialBackoff(1, 1000), new TokenBucket(1, 1, () => now));
    assert.equal(m.when("k"), 1); // backoff 1 ms, bucket has a token
    assert.equal(m.when("k"), 1000); // bucket empty: 1 s beats 2 ms
    now = 10_000;
    assert.equal(m.when("k"), 4);
    assert.equal(m.retries("k"), 3);
    m.forget("k");
    assert.equal(m.retries("k"), 0);
  });

  test("the default limiter starts at 5 ms", () => {
    assert.equal(defaultRateLimiter().when("k"), 5);
  });
});
