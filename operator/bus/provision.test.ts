import assert from "node:assert/strict";
import { test } from "node:test";
import { nanos } from "@nats-io/nats-core";
import { planBus } from "./provision.ts";
import type { BusSpec } from "./provision.ts";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const spec: BusSpec = {
  run: "demo",
  roundMs: 30_000,
  retainRounds: 4,
  maxPayloadBytes: 100 * 1024 * 1024,
  retainCheckpoints: 2,
  maxCheckpointBytes: 10 * 1024 * 1024,
  miners: [BOB, ALICE],
  validators: [],
};

test("retention is bounded by rounds and payload buckets by size", () => {
  const plan = planBus(spec);
  assert.equal(plan.stream.name, "covenant-demo");
  assert.deepEqual(plan.stream.subjects, ["covenant.demo.>"]);
  assert.equal(plan.stream.max_age, nanos(4 * 30_000));
  assert.equal(plan.stream.storage, "file");
  assert.deepEqual(
    plan.payloadBuckets.map((b) => b.name),
    [`covenant-demo-p-${BOB}`, `covenant-demo-p-${ALICE}`].sort(),
  );
  for (const b of plan.payloadBuckets) {
    assert.equal(b.ttlMs, 120_000);
    assert.ok(b.maxBytes >= 5 * spec.maxPayloadBytes && b.maxBytes < 6 * spec.maxPayloadBytes);
  }
  assert.deepEqual(plan.checkpointBuckets, []);
});

test("validators get a checkpoint bucket without age limit", () => {
  const plan = planBus({ ...spec, miners: [ALICE], validators: [BOB] });
  assert.equal(plan.checkpointBuckets.length, 1);
  assert.equal(plan.checkpointBuckets[0]!.name, `covenant-demo-c-${BOB}`);
  assert.equal(plan.checkpointBuckets[0]!.ttlMs, 0);
  assert.equal(plan.payloadBuckets.length, 2, "validators have a payload bucket too");
});

test("bad specs are refused with the field named", () => {
  assert.throws(() => planBus({ ...spec, retainRounds: 1 }), /retainRounds 1/);
  assert.throws(() => planBus({ ...spec, roundMs: 0 }), /roundMs 0/);
  assert.throws(() => planBus({ ...spec, run: "Bad_Run" }), /DNS-1123/);
  assert.throws(() => planBus({ ...spec, validators: [ALICE] }), /both miner and validator/);
});

test("one copy by default; replicas apply to the stream, state and every bucket", () => {
  assert.equal(planBus(spec).replicas, 1);
  assert.equal(planBus(spec).stream.num_replicas, 1);
  const r3 = planBus({ ...spec, validators: [], replicas: 3 });
  assert.equal(r3.replicas, 3);
  assert.equal(r3.stream.num_replicas, 3);
  assert.equal(planBus({ ...spec, replicas: 5 }).replicas, 5);
});

test("replicas outside 1..5 or not whole are refused", () => {
  for (const replicas of [0, -1, 6, 1.5, Number.NaN])
    assert.throws(
      () => planBus({ ...spec, replicas }),
      new RegExp(`replicas ${replicas} must be an integer from 1 to 5`),
    );
});

test("the duplicates window never exceeds the stream's retention (JetStream refuses it)", () => {
  // 7 rounds of 15 s: 105 s of retention, shorter than the 2-minute default window.
  const short = planBus({ ...spec, roundMs: 15_000, retainRounds: 7 });
  assert.equal(short.stream.max_age, nanos(105_000));
  assert.equal(short.stream.duplicate_window, nanos(105_000));
  const long = planBus(spec);
  assert.equal(long.stream.duplicate_window, nanos(120_000), "the default window when retention is longer");
});
