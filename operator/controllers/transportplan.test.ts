import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Reason, type TrainingRun } from "../../api/index.ts";
import { SubnetDirectory, type SubnetView } from "./subnet.ts";
import { makeRun } from "./testing.ts";
import {
  cleanupOrder,
  desiredBus,
  isUnreachable,
  planDepartures,
  retryAfterMs,
  runHotkeys,
  safeMessage,
  transportCondition,
  transportEvents,
  transportStatus,
  type DesiredBus,
  type TransportOutcome,
} from "./transportplan.ts";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const CHARLIE = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y";
const DAVE = "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy";
const NOW = new Date("2026-06-01T12:00:00Z");

const subnet = (neurons: [string, boolean][]): SubnetView => ({
  netuid: 3,
  block: 100,
  neurons: neurons.map(([hotkey, validatorPermit]) => ({ hotkey, validatorPermit })),
});

describe("runHotkeys", () => {
  it("joins this cluster's peers and the subnet's registered hotkeys", () => {
    const s = runHotkeys(
      [
        { hotkey: ALICE, role: "miner" },
        { hotkey: BOB, role: "validator" },
        { hotkey: "not-a-hotkey", role: "miner" },
      ],
      subnet([
        [ALICE, false],
        [CHARLIE, true],
        [DAVE, false],
      ]),
    );
    assert.deepEqual(s.hotkeys.validators, [BOB, CHARLIE].sort());
    assert.deepEqual(s.hotkeys.miners, [ALICE, DAVE].sort());
    assert.equal(s.fromCluster, 2);
    assert.equal(s.fromSubnet, 2);
  });

  it("a permit makes a hotkey a validator even where its peer here mines", () => {
    const s = runHotkeys([{ hotkey: ALICE, role: "miner" }], subnet([[ALICE, true]]));
    assert.deepEqual(s.hotkeys, { miners: [], validators: [ALICE] });
  });

  it("with the subnet unknown, only this cluster's peers", () => {
    const s = runHotkeys([{ hotkey: ALICE, role: "miner" }], undefined);
    assert.deepEqual(s.hotkeys, { miners: [ALICE], validators: [] });
    assert.equal(s.fromSubnet, 0);
  });
});

describe("desiredBus", () => {
  it("plans the run's objects with the replicas and the payload retention as grace", () => {
    const run = makeRun("demo").defaulted();
    const d = desiredBus(run, [{ hotkey: ALICE, role: "miner" }], subnet([[BOB, true]]), {
      replicas: 3,
    }) as DesiredBus;
    assert.equal(d.plan.replicas, 3);
    assert.equal(d.plan.payloadBuckets.length, 2);
    assert.equal(d.plan.checkpointBuckets.length, 1);
    assert.equal(d.graceMs, d.plan.payloadBuckets[0]!.ttlMs);
    const short = desiredBus(run, [], undefined, { replicas: 1, departedGraceMs: 2_000 }) as DesiredBus;
    assert.equal(short.graceMs, 2_000);
  });

  it("answers why a run cannot be planned", () => {
    const run = makeRun("demo.v2").defaulted();
    const d = desiredBus(run, [], undefined, { replicas: 1 });
    assert.match((d as { error: string }).error, /DNS-1123/);
    assert.match(
      transportCondition({ kind: "invalid", message: (d as { error: string }).error }).reason,
      /InvalidSpec/,
    );
  });
});

describe("planDepartures", () => {
  it("removes a dropped bucket after its grace and forgets one wanted again", () => {
    const a = planDepartures(["x", "y"], undefined, 1_000, 500, true);
    assert.deepEqual(a.remove, []);
    assert.equal(a.nextInMs, 500);
    const b = planDepartures(["x"], a.since, 1_400, 500, true);
    assert.deepEqual([b.remove, b.nextInMs, [...b.since.keys()]], [[], 100, ["x"]]);
    const c = planDepartures(["x", "z"], b.since, 1_500, 500, true);
    assert.deepEqual(c.remove, ["x"]);
    assert.deepEqual([...c.since.keys()], ["z"]);
    const again = planDepartures(["y"], c.since, 1_600, 500, true);
    assert.equal(again.since.get("y"), 1_600, "y was wanted again in between: its clock restarted");
  });

  it("removes nothing while the subnet is unknown, and restarts the clocks", () => {
    const a = planDepartures(["x"], new Map([["x", 0]]), 10_000, 500, false);
    assert.deepEqual(a.remove, []);
    assert.equal(a.since.size, 0);
  });
});

describe("TransportReady", () => {
  const run = makeRun("demo").defaulted();
  const desired = desiredBus(run, [{ hotkey: ALICE, role: "miner" }], subnet([[BOB, true]]), {
    replicas: 3,
  }) as DesiredBus;
  const provisioned: TransportOutcome = {
    kind: "provisioned",
    desired,
    subnet: subnet([[BOB, true]]),
    created: ["covenant-demo"],
    updated: [],
    removed: [],
    waiting: 1,
  };

  it("is True with counts once provisioned", () => {
    const c = transportCondition(provisioned);
    assert.equal(c.status, "True");
    assert.equal(c.reason, Reason.Provisioned);
    assert.equal(
      c.message,
      "stream covenant-demo, state bucket, 2 payload buckets and 1 checkpoint bucket, 3 replicas each; " +
        "hotkeys: 1 from this cluster's peers, 1 more registered on subnet 3; 1 bucket of departed hotkeys awaiting removal",
    );
  });

  it("is False with the reason while the bus is down or refuses, and while cleanup fails", () => {
    assert.deepEqual(transportCondition({ kind: "unreachable", message: "connection refused" }), {
      type: "TransportReady",
      status: "False",
      reason: "BusUnreachable",
      message: "connection refused",
    });
    assert.equal(
      transportCondition({ kind: "failed", message: "insufficient resources" }).reason,
      "ProvisionFailed",
    );
    const d = transportCondition({ kind: "unreachable", message: "down" }, true);
    assert.equal(d.reason, "BusUnreachable");
    assert.match(d.message, /finalizer covenant.io\/bus-objects stays/);
    assert.equal(transportCondition({ kind: "failed", message: "x" }, true).reason, "CleanupFailed");
  });

  it("keeps its transition time while the status holds, and only its own condition", () => {
    const first = transportStatus(run, transportCondition(provisioned), NOW);
    const later = transportStatus(
      { ...run, status: first } as TrainingRun,
      transportCondition({ ...provisioned, waiting: 0 }),
      new Date(NOW.getTime() + 60_000),
    );
    assert.equal(later.conditions?.length, 1);
    assert.equal(later.conditions?.[0]?.lastTransitionTime, NOW.toISOString());
  });

  it("Events: what changed on the bus; a Warning once per turn to False", () => {
    assert.deepEqual(
      transportEvents({ ...provisioned, removed: ["OBJ_x"] }, undefined).map((e) => e.reason),
      ["BusObjectsCreated", "BusBucketsRemoved"],
    );
    assert.deepEqual(transportEvents({ ...provisioned, created: [] }, undefined), []);
    const down: TransportOutcome = { kind: "unreachable", message: "down" };
    assert.equal(transportEvents(down, undefined)[0]?.type, "Warning");
    const already = transportStatus(run, transportCondition(down), NOW);
    assert.deepEqual(transportEvents(down, already), []);
  });
});

describe("errors", () => {
  it("tells an unreachable bus from a refusal, through causes", () => {
    const named = (name: string, cause?: unknown) => Object.assign(new Error(name, { cause }), { name });
    assert.equal(isUnreachable(named("JetStreamApiError"), false), true, "a connection that is down");
    assert.equal(isUnreachable(named("TimeoutError"), true), true);
    assert.equal(isUnreachable(new Error("creating stream", { cause: named("NoResponders") }), true), true);
    assert.equal(isUnreachable(Object.assign(new Error("x"), { code: "ECONNREFUSED" }), true), true);
    assert.equal(isUnreachable(named("JetStreamApiError"), true), false);
    assert.equal(isUnreachable(named("AuthorizationError"), true), false);
  });

  it("messages carry no credentials", () => {
    const seed = "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4";
    assert.equal(
      safeMessage(new Error(`connecting to nats://op:secret@bus-0:4222 with ${seed}`)),
      "connecting to nats://bus-0:4222 with <seed>",
    );
  });

  it("backs off exponentially up to 30 s", () => {
    const fixed = () => 1;
    assert.equal(retryAfterMs(1, undefined, fixed), 1_000);
    assert.equal(retryAfterMs(3, undefined, fixed), 4_000);
    assert.equal(retryAfterMs(20, undefined, fixed), 30_000);
  });

  it("cleanup deletes buckets first and the run stream last", () => {
    assert.deepEqual(
      cleanupOrder(["covenant-demo", "KV_covenant-demo-state", "OBJ_b", "OBJ_a"], "covenant-demo"),
      ["OBJ_a", "OBJ_b", "KV_covenant-demo-state", "covenant-demo"],
    );
  });
});

describe("SubnetDirectory", () => {
  it("tells of a change of registered hotkeys or permits, not of every block", () => {
    const d = new SubnetDirectory();
    const heard: string[] = [];
    d.onChange((r) => heard.push(r));
    d.set("ns/run", subnet([[ALICE, false]]));
    d.set("ns/run", { ...subnet([[ALICE, false]]), block: 101 });
    assert.equal(d.get("ns/run")?.block, 101);
    d.set("ns/run", subnet([[ALICE, true]]));
    d.set(
      "ns/run",
      subnet([
        [ALICE, true],
        [BOB, false],
      ]),
    );
    d.set("ns/run", undefined);
    d.set("ns/run", undefined);
    assert.deepEqual(heard, ["ns/run", "ns/run", "ns/run", "ns/run"]);
    assert.equal(d.get("ns/run"), undefined);
  });
});
