import assert from "node:assert/strict";
import { test } from "node:test";
import { ByteBudget, TimeoutError, withTimeout } from "./limiter.ts";

test("transfers wait while the byte budget is spent, first come first served", async () => {
  const b = new ByteBudget(100);
  const r1 = await b.acquire(60);
  const order: string[] = [];
  const p2 = b.acquire(60).then((r) => (order.push("second"), r));
  const p3 = b.acquire(10).then((r) => (order.push("third"), r));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(order, [], "both wait: the second does not fit, the third queues behind it");
  assert.equal(b.waiting, 2);
  r1();
  const [r2, r3] = await Promise.all([p2, p3]);
  assert.deepEqual(order, ["second", "third"]);
  assert.equal(b.inFlight, 70);
  r2();
  r3();
  r3();
  assert.equal(b.inFlight, 0, "release is idempotent");
});

test("a transfer larger than the budget runs alone", async () => {
  const b = new ByteBudget(10);
  const got = await b.with(1000, async () => b.inFlight);
  assert.equal(got, 1000);
  assert.equal(b.inFlight, 0);
});

test("withTimeout names what timed out", async () => {
  await assert.rejects(
    () => withTimeout(new Promise(() => undefined), 20, "get x"),
    (e: unknown) => e instanceof TimeoutError && /get x timed out after 20 ms/.test(e.message),
  );
  assert.equal(await withTimeout(Promise.resolve(5), 20, "y"), 5);
});
