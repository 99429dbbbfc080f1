import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createOperatorMetrics } from "../metrics/registry.ts";
import { ExponentialBackoff } from "./backoff.ts";
import { WorkQueue } from "./queue.ts";

const newQueue = (baseMs = 5) =>
  new WorkQueue({ name: "test", rateLimiter: new ExponentialBackoff(baseMs, 1000) });

describe("WorkQueue", () => {
  test("hands keys out in FIFO order and coalesces duplicates", async () => {
    const q = newQueue();
    q.add("Pod/ns/a");
    q.add("Pod/ns/b");
    q.add("Pod/ns/a");
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), "Pod/ns/a");
    assert.equal(await q.get(), "Pod/ns/b");
    assert.equal(q.len(), 0);
    assert.equal(q.inFlight(), 2);
  });

  test("a key being processed is not handed out again; a re-add runs once after done", async () => {
    const q = newQueue();
    q.add("k");
    const first = await q.get();
    assert.equal(first, "k");
    q.add("k");
    q.add("k");
    q.add("other");
    // Only "other" is available while "k" is processing.
    assert.equal(await q.get(), "other");
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await sleep(5);
    assert.equal(second, undefined, "k must not be handed to a second worker while in flight");
    q.done("k");
    await sleep(0);
    assert.equal(second, "k", "the coalesced re-add runs once after done");
    q.done("k");
    q.done("other");
    assert.equal(q.len(), 0);
    assert.equal(q.inFlight(), 0);
  });

  test("concurrent workers never process the same key at once", async () => {
    const q = newQueue();
    const running = new Set<string>();
    let overlaps = 0;
    let processed = 0;
    const worker = async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        if (running.has(k)) overlaps++;
        running.add(k);
        await sleep(Math.random() * 3);
        running.delete(k);
        processed++;
        q.done(k);
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    for (let i = 0; i < 200; i++) {
      q.add(`k${i % 5}`);
      if (i % 10 === 0) await sleep(1);
    }
    while (q.len() > 0 || q.inFlight() > 0) await sleep(5);
    await q.drain();
    await Promise.all(workers);
    assert.equal(overlaps, 0);
    assert.ok(processed >= 5 && processed < 200, `coalescing must reduce 200 adds, got ${processed}`);
  });

  test("addAfter delays a key and the earliest delay wins", async () => {
    const q = newQueue();
    q.addAfter("k", 200);
    q.addAfter("k", 20);
    q.addAfter("k", 500);
    assert.equal(q.len(), 1);
    const t0 = performance.now();
    assert.equal(await q.get(), "k");
    const waited = performance.now() - t0;
    assert.ok(waited >= 15 && waited < 150, `waited ${waited} ms`);
    q.done("k");
  });

  test("add of a delayed key makes it ready at once", async () => {
    const q = newQueue();
    q.addAfter("k", 10_000);
    q.add("k");
    const t0 = performance.now();
    assert.equal(await q.get(), "k");
    assert.ok(performance.now() - t0 < 50);
    q.done("k");
    await q.drain();
  });

  test("addRateLimited backs off exponentially per key and forget resets it", async () => {
    const q = newQueue(20);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      q.addRateLimited("k");
      const k = await q.get();
      delays.push(performance.now() - t0);
      q.done(k!);
    }
    assert.equal(q.retries("k"), 3);
    // 20, 40, 80 ms (timers fire no earlier than asked)
    assert.ok(delays[0]! >= 18 && delays[1]! >= 38 && delays[2]! >= 78, `delays ${delays.join(", ")}`);
    assert.ok(delays[2]! > delays[0]!);
    q.forget("k");
    assert.equal(q.retries("k"), 0);
    await q.drain();
  });

  test("shutDown stops intake and wakes waiting workers; drain waits for in-flight keys", async () => {
    const q = newQueue();
    q.add("a");
    const a = await q.get();
    const waiting = q.get();
    q.addAfter("later", 50);
    let drained = false;
    const d = q.drain().then(() => (drained = true));
    assert.equal(await waiting, undefined);
    q.add("b");
    assert.equal(q.len(), 0, "adds after shutdown are ignored");
    await sleep(10);
    assert.equal(drained, false, "drain waits for the key in flight");
    q.done(a!);
    await d;
    assert.equal(drained, true);
    assert.equal(await q.get(), undefined);
    await sleep(60);
    assert.equal(q.len(), 0, "delayed keys are dropped on shutdown");
  });

  test("reports depth, adds and retries as metrics", async () => {
    const metrics = createOperatorMetrics({ processMetrics: false });
    const q = new WorkQueue({ name: "m", metrics, rateLimiter: new ExponentialBackoff(1, 10) });
    q.add("a");
    q.add("a");
    q.add("b");
    const depth = await metrics.queueDepth.get();
    assert.equal(depth.values.find((v) => v.labels.name === "m")?.value, 2);
    const adds = await metrics.queueAdds.get();
    assert.equal(adds.values.find((v) => v.labels.name === "m")?.value, 2);
    q.addRateLimited("c");
    const retries = await metrics.queueRetries.get();
    assert.equal(retries.values.find((v) => v.labels.name === "m")?.value, 1);
    await q.drain();
  });
});
