import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nanos } from "@nats-io/nats-core";
import { kvStream, objectStream } from "../../protocol/names.ts";
import { classifyStream, diffBus, type RunInventory } from "./inventory.ts";
import { planBus, type BusSpec } from "./provision.ts";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const spec: BusSpec = {
  run: "demo",
  roundMs: 30_000,
  retainRounds: 4,
  maxPayloadBytes: 1024 * 1024,
  retainCheckpoints: 2,
  maxCheckpointBytes: 1024 * 1024,
  miners: [ALICE],
  validators: [BOB],
};

/** The inventory a server holds after applyBus(plan). */
function inventoryOf(plan: ReturnType<typeof planBus>): RunInventory {
  const inv: RunInventory = new Map();
  inv.set(plan.stream.name, {
    max_bytes: plan.stream.max_bytes,
    max_age: plan.stream.max_age,
    num_replicas: plan.replicas,
  });
  inv.set(kvStream(plan.state.bucket), { max_bytes: -1, max_age: 0, num_replicas: plan.replicas });
  for (const b of [...plan.payloadBuckets, ...plan.checkpointBuckets])
    inv.set(objectStream(b.name), {
      max_bytes: b.maxBytes,
      max_age: nanos(b.ttlMs),
      num_replicas: plan.replicas,
    });
  return inv;
}

describe("classifyStream", () => {
  it("names the run's stream, state bucket and buckets, and nothing of other runs", () => {
    assert.deepEqual(classifyStream("demo", "covenant-demo"), { kind: "stream" });
    assert.deepEqual(classifyStream("demo", "KV_covenant-demo-state"), { kind: "state" });
    assert.deepEqual(classifyStream("demo", `OBJ_covenant-demo-p-${ALICE}`), {
      kind: "payload",
      hotkey: ALICE,
    });
    assert.deepEqual(classifyStream("demo", `OBJ_covenant-demo-c-${BOB}`), {
      kind: "checkpoint",
      hotkey: BOB,
    });
    // Run "demo-p" and run "demo-c" share the prefix; their objects are not demo's.
    assert.equal(classifyStream("demo", "covenant-demo-p"), undefined);
    assert.equal(classifyStream("demo", `OBJ_covenant-demo-p-p-${ALICE}`), undefined);
    assert.equal(classifyStream("demo", `OBJ_covenant-demo-c-state`), undefined);
    assert.equal(classifyStream("demo", "KV_covenant-demo-p-state"), undefined);
    assert.equal(classifyStream("demo", "covenant-data"), undefined);
  });
});

describe("diffBus", () => {
  const plan = planBus(spec);

  it("creates everything on an empty bus", () => {
    const d = diffBus(plan, new Map());
    assert.deepEqual(d.apply, plan);
    assert.equal(d.create.length, 5);
    assert.deepEqual(d.update, []);
    assert.deepEqual(d.extra, []);
  });

  it("does nothing when the bus holds the plan", () => {
    const d = diffBus(plan, inventoryOf(plan));
    assert.equal(d.apply, undefined);
    assert.deepEqual([d.create, d.update, d.extra], [[], [], []]);
  });

  it("applies only the missing or outdated buckets", () => {
    const inv = inventoryOf(plan);
    inv.delete(objectStream(plan.payloadBuckets[0]!.name));
    inv.set(objectStream(plan.checkpointBuckets[0]!.name), {
      ...inv.get(objectStream(plan.checkpointBuckets[0]!.name))!,
      max_bytes: 1,
    });
    const d = diffBus(plan, inv);
    assert.deepEqual(d.create, [objectStream(plan.payloadBuckets[0]!.name)]);
    assert.deepEqual(d.update, [objectStream(plan.checkpointBuckets[0]!.name)]);
    assert.deepEqual(d.apply?.payloadBuckets, [plan.payloadBuckets[0]]);
    assert.deepEqual(d.apply?.checkpointBuckets, plan.checkpointBuckets);
  });

  it("a change of replicas updates every stream", () => {
    const r3 = planBus({ ...spec, replicas: 3 });
    const d = diffBus(r3, inventoryOf(plan));
    assert.equal(d.update.length, 5);
    assert.equal(d.apply?.replicas, 3);
  });

  it("names the buckets the plan dropped, never the stream or the state bucket", () => {
    const smaller = planBus({ ...spec, miners: [], validators: [] });
    const d = diffBus(smaller, inventoryOf(plan));
    assert.deepEqual(
      d.extra,
      [
        objectStream(plan.payloadBuckets[0]!.name),
        objectStream(plan.payloadBuckets[1]!.name),
        objectStream(plan.checkpointBuckets[0]!.name),
      ].sort(),
    );
    // The stream's size follows the number of peers, so it is updated, not removed.
    assert.ok(!d.extra.includes(smaller.stream.name));
  });
});
