import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultGrace } from "../../protocol/membership.ts";
import { assignShards, movedShards } from "../../protocol/rendezvous.ts";
import {
  chooseValidator,
  firstExpectedRound,
  missedRounds,
  planMembership,
  type BusView,
  type MembershipInput,
  type PeerView,
} from "./plan.ts";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const HOT = { a: "5Alice", b: "5Bob", c: "5Carol", v: "5Val" };

/** A peer whose signals are all good unless overridden. */
function peer(name: keyof typeof HOT, over: Partial<PeerView> = {}): PeerView {
  return {
    name,
    role: name === "v" ? "validator" : "miner",
    hotkey: HOT[name],
    suspended: false,
    ready: { status: "True", lastTransitionTime: ago(600) },
    registered: { status: "True", lastTransitionTime: ago(600) },
    ...over,
  };
}

function bus(over: Partial<BusView> = {}): BusView {
  const fresh = new Map(Object.values(HOT).map((h) => [h, NOW - 1000]));
  return {
    heartbeats: fresh,
    submitted: new Map([
      [HOT.a, 9],
      [HOT.b, 9],
      [HOT.c, 9],
    ]),
    selected: new Map([[HOT.a, 9]]),
    lastClosedRound: 9,
    ...over,
  };
}

function input(over: Partial<MembershipInput> = {}): MembershipInput {
  return {
    run: "r",
    shards: 8,
    previous: { epoch: 4, members: [HOT.a, HOT.b, HOT.c].sort() },
    peers: [peer("a"), peer("b"), peer("c"), peer("v")],
    bus: bus(),
    memberSince: new Map(),
    grace: defaultGrace,
    now: NOW,
    ...over,
  };
}

describe("planMembership", () => {
  it("keeps the same membership object when every member is healthy", () => {
    const i = input();
    const plan = planMembership(i);
    assert.equal(plan.changed, false);
    assert.equal(plan.membership, i.previous);
    assert.deepEqual(plan.joined, []);
    assert.deepEqual(plan.left, []);
    assert.equal(plan.validator, HOT.v);
    const a = plan.peers.get("a")!;
    assert.equal(a.contributing.status, "True");
    assert.equal(a.lastSubmittedRound, 9);
    assert.equal(a.lastSelectedRound, 9);
    assert.equal(a.missedRounds, 0);
    assert.equal(plan.peers.get("v")!.contributing.reason, "Validating");
    assert.equal(plan.shards.assigned, 8);
  });

  it("forgives a blip within the grace and wakes up when it would run out", () => {
    const notReady = peer("b", { ready: { status: "False", lastTransitionTime: ago(20) } });
    const grace = { ...defaultGrace, heartbeatMs: 300_000 };
    const plan = planMembership(input({ peers: [peer("a"), notReady, peer("c")], grace }));
    assert.equal(plan.changed, false);
    assert.equal(plan.recheckMs, 40_000, "60 s pod grace, 20 s gone");
    // Heartbeats run out too: the earliest expiry wins (30 s grace, last beat 1 s ago).
    assert.equal(planMembership(input()).recheckMs, 29_000);
  });

  it("drops a member past a grace, bumps the epoch and moves only its shards", () => {
    const gone = peer("b", { ready: { status: "False", lastTransitionTime: ago(61) } });
    const i = input({ peers: [peer("a"), gone, peer("c")] });
    const plan = planMembership(i);
    assert.equal(plan.changed, true);
    assert.equal(plan.membership.epoch, 5);
    assert.deepEqual(plan.membership.members, [HOT.a, HOT.c].sort());
    assert.deepEqual(plan.left, [{ hotkey: HOT.b, reason: "PodNotReady" }]);
    const b = plan.peers.get("b")!;
    assert.deepEqual(
      [b.contributing.status, b.contributing.reason, b.assignedShards],
      ["False", "PodNotReady", 0],
    );
    const before = assignShards("r", 8, i.previous!.members);
    const after = assignShards("r", 8, plan.membership.members);
    assert.deepEqual(movedShards(before, after), before.get(HOT.b));
  });

  it("drops a member that stopped heartbeating or missed too many rounds", () => {
    const silent = bus({
      heartbeats: new Map([
        [HOT.a, NOW - 1000],
        [HOT.b, NOW - 31_000],
        [HOT.c, NOW - 1000],
      ]),
    });
    assert.deepEqual(planMembership(input({ bus: silent })).left, [{ hotkey: HOT.b, reason: "NoHeartbeat" }]);
    const lazy = bus({
      lastClosedRound: 20,
      submitted: new Map([
        [HOT.a, 20],
        [HOT.b, 16],
        [HOT.c, 17],
      ]),
    });
    const plan = planMembership(input({ bus: lazy }));
    assert.deepEqual(
      plan.left,
      [{ hotkey: HOT.b, reason: "MissedRounds" }],
      "4 missed > 3; Carol's 3 are allowed",
    );
    assert.equal(plan.peers.get("c")!.missedRounds, 3);
  });

  it("admits a newcomer only when every signal is good now", () => {
    const d = { ...peer("c"), name: "d", hotkey: "5Dave" };
    const previous = { epoch: 4, members: [HOT.a, HOT.b].sort() };
    const beats = new Map([...bus().heartbeats, ["5Dave", NOW - 500]]);
    const notYet = planMembership(
      input({
        previous,
        peers: [peer("a"), peer("b"), { ...d, ready: { status: "False", lastTransitionTime: ago(1) } }],
        bus: bus({ heartbeats: beats }),
      }),
    );
    assert.equal(notYet.changed, false, "a pod that is not Ready yet does not join, grace or not");
    assert.equal(notYet.peers.get("d")!.contributing.reason, "PodNotReady");
    const noBeat = planMembership(input({ previous, peers: [peer("a"), peer("b"), d] }));
    assert.equal(noBeat.changed, false, "no heartbeat yet");
    const joins = planMembership(
      input({ previous, peers: [peer("a"), peer("b"), d], bus: bus({ heartbeats: beats }) }),
    );
    assert.deepEqual(joins.joined, ["5Dave"]);
    assert.equal(joins.membership.epoch, 5);
    assert.equal(joins.peers.get("d")!.missedRounds, 0);
    assert.ok(joins.peers.get("d")!.assignedShards! > 0);
  });

  it("a suspended miner leaves at once; a miner without a hotkey never joins", () => {
    const plan = planMembership(
      input({ peers: [peer("a"), peer("b", { suspended: true }), peer("c", { hotkey: undefined })] }),
    );
    assert.deepEqual(plan.membership.members, [HOT.a]);
    assert.equal(plan.peers.get("b")!.contributing.reason, "Suspended");
    assert.equal(plan.peers.get("c")!.contributing.reason, "HotkeyUnknown");
    assert.deepEqual(
      plan.left.map((l) => l.reason),
      ["Removed", "Removed"],
    );
  });

  it("an unregistered hotkey is forgiven for the chain grace; an unknown chain state is not held against anyone", () => {
    const unreg = peer("b", { registered: { status: "False", lastTransitionTime: ago(60) } });
    assert.equal(planMembership(input({ peers: [peer("a"), unreg, peer("c")] })).changed, false);
    const long = peer("b", { registered: { status: "False", lastTransitionTime: ago(121) } });
    assert.deepEqual(planMembership(input({ peers: [peer("a"), long, peer("c")] })).left, [
      { hotkey: HOT.b, reason: "NotRegistered" },
    ]);
    const unknown = peer("b", { registered: undefined });
    assert.equal(planMembership(input({ peers: [peer("a"), unknown, peer("c")] })).changed, false);
  });

  it("nothing is published while nobody is active", () => {
    const plan = planMembership(input({ previous: undefined, bus: bus({ heartbeats: new Map() }) }));
    assert.equal(plan.changed, false);
    assert.deepEqual(plan.membership.members, []);
  });

  it("the first membership of a run starts at epoch 1", () => {
    const plan = planMembership(input({ previous: undefined }));
    assert.equal(plan.membership.epoch, 1);
    assert.deepEqual(plan.joined, [HOT.a, HOT.b, HOT.c].sort());
  });
});

describe("membership helpers", () => {
  it("counts missed rounds from the round a member was first expected", () => {
    assert.equal(missedRounds(undefined, undefined, 0), 0);
    assert.equal(missedRounds(9, 9, 0), 0);
    assert.equal(missedRounds(9, 7, 0), 2);
    assert.equal(missedRounds(9, undefined, firstExpectedRound(8)), 0, "joined while round 9 ran");
    assert.equal(missedRounds(11, undefined, firstExpectedRound(8)), 2);
  });

  it("follows a Ready validator first, then the first by name", () => {
    const v1 = {
      ...peer("v"),
      name: "v1",
      hotkey: "5V1",
      ready: { status: "False" as const, lastTransitionTime: ago(1) },
    };
    const v2 = { ...peer("v"), name: "v2", hotkey: "5V2" };
    assert.equal(chooseValidator([v1, v2]), "5V2");
    assert.equal(chooseValidator([v1]), "5V1");
    assert.equal(chooseValidator([peer("a")]), undefined);
  });
});
