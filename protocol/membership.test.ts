import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultGrace, inactiveReason, nextMembership, type PeerSignals } from "./membership.ts";

const now = 1_000_000;
const healthy = (over: Partial<PeerSignals> = {}): PeerSignals => ({
  hotkey: "a",
  lastHeartbeat: now - 1_000,
  missedRounds: 0,
  ...over,
});

test("a healthy peer is active; each bad signal counts only after its grace period", () => {
  assert.equal(inactiveReason(healthy(), now), undefined);
  assert.equal(inactiveReason(healthy({ podNotReadySince: now - 59_000 }), now), undefined);
  assert.equal(inactiveReason(healthy({ podNotReadySince: now - 60_000 }), now), "PodNotReady");
  assert.equal(inactiveReason(healthy({ unregisteredSince: now - 119_000 }), now), undefined);
  assert.equal(inactiveReason(healthy({ unregisteredSince: now - 120_000 }), now), "NotRegistered");
  assert.equal(inactiveReason(healthy({ lastHeartbeat: now - 29_000 }), now), undefined);
  assert.equal(inactiveReason(healthy({ lastHeartbeat: now - 30_000 }), now), "NoHeartbeat");
  assert.equal(inactiveReason(healthy({ lastHeartbeat: undefined }), now), "NoHeartbeat");
  assert.equal(inactiveReason(healthy({ missedRounds: 3 }), now), undefined);
  assert.equal(inactiveReason(healthy({ missedRounds: 4 }), now, defaultGrace), "MissedRounds");
});

test("the epoch moves only when the member set changes", () => {
  const first = nextMembership(undefined, ["b", "a"]);
  assert.deepEqual(first, { epoch: 1, members: ["a", "b"] });
  assert.equal(nextMembership(first, ["a", "b", "a"]), first);
  assert.deepEqual(nextMembership(first, ["a"]), { epoch: 2, members: ["a"] });
  assert.deepEqual(nextMembership(first, ["a", "c"]), { epoch: 2, members: ["a", "c"] });
});
