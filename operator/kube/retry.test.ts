import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_429_DELAY_MS, parseRetryAfter, retryDelay, type RetryPolicy } from "./retry.ts";

const policy: RetryPolicy = { maxRetries: 3, maxDelayMs: 10_000 };
const NOW = Date.parse("2025-01-01T00:00:00Z");

describe("parseRetryAfter", () => {
  test("reads delta-seconds and HTTP dates", () => {
    assert.equal(parseRetryAfter("2", NOW), 2000);
    assert.equal(parseRetryAfter(" 0 ", NOW), 0);
    assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:05 GMT", NOW), 5000);
    assert.equal(parseRetryAfter("Tue, 31 Dec 2024 23:59:00 GMT", NOW), 0, "a past date: at once");
  });
  test("ignores what is absent or malformed", () => {
    assert.equal(parseRetryAfter(undefined, NOW), undefined);
    assert.equal(parseRetryAfter("", NOW), undefined);
    assert.equal(parseRetryAfter("-1", NOW), undefined);
    assert.equal(parseRetryAfter("1.5", NOW), undefined);
    assert.equal(parseRetryAfter("soon", NOW), undefined);
  });
});

describe("retryDelay", () => {
  test("429: any verb, after Retry-After (1 s without one), capped", () => {
    assert.equal(retryDelay("GET", 429, "2", 1, policy, NOW), 2000);
    assert.equal(retryDelay("POST", 429, "2", 1, policy, NOW), 2000);
    assert.equal(retryDelay("PATCH", 429, undefined, 1, policy, NOW), DEFAULT_429_DELAY_MS);
    assert.equal(retryDelay("DELETE", 429, "3600", 1, policy, NOW), 10_000);
  });
  test("5xx: only GETs, and only when the server sent Retry-After", () => {
    assert.equal(retryDelay("GET", 503, "1", 1, policy, NOW), 1000);
    assert.equal(retryDelay("GET", 504, "1", 1, policy, NOW), 1000);
    assert.equal(retryDelay("GET", 503, undefined, 1, policy, NOW), undefined);
    for (const m of ["POST", "PUT", "PATCH", "DELETE"]) {
      assert.equal(retryDelay(m, 503, "1", 1, policy, NOW), undefined, `${m} may have been processed`);
    }
  });
  test("other codes are not retried", () => {
    for (const code of [200, 201, 400, 401, 403, 404, 409, 410, 422]) {
      assert.equal(retryDelay("GET", code, "1", 1, policy, NOW), undefined, String(code));
    }
  });
  test("at most maxRetries repeats", () => {
    assert.equal(retryDelay("GET", 429, "1", 3, policy, NOW), 1000);
    assert.equal(retryDelay("GET", 429, "1", 4, policy, NOW), undefined);
    assert.equal(retryDelay("GET", 429, "1", 1, { ...policy, maxRetries: 0 }, NOW), undefined);
  });
});
