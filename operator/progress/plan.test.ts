import assert from "node:assert/strict";
import { test } from "node:test";
import type { TrainingRun } from "../../api/index.ts";
import { emptyBusProgress, parseRunSubject, planProgress, progressChanged } from "./plan.ts";

const run = (rounds: number, status?: TrainingRun["status"]) =>
  ({ metadata: { name: "tiny" }, spec: { rounds }, status }) as unknown as TrainingRun;

test("a published selection for round r means r + 1 rounds are done, capped at the run's rounds", () => {
  const at = new Date("2026-01-01T00:01:00Z");
  const before = new Date("2026-01-01T00:00:30Z");
  assert.deepEqual(
    planProgress(run(20), {
      ...emptyBusProgress(),
      lastSelectedRound: 4,
      lastSelectedAt: at,
      previousSelectedAt: before,
    }),
    {
      round: 5,
      roundStartedAt: at.toISOString(),
      lastRoundSeconds: 30,
    },
  );
  assert.equal(planProgress(run(20), { ...emptyBusProgress(), lastSelectedRound: 25 }).round, 20);
  assert.deepEqual(planProgress(run(20), emptyBusProgress()), {});
});

test("membership becomes the epoch and the sorted active peers", () => {
  const p = planProgress(run(5), { ...emptyBusProgress(), membership: { epoch: 3, members: ["b", "a"] } });
  assert.deepEqual(p, { membershipEpoch: 3, activePeers: ["a", "b"] });
});

test("only fields the bus has shown are compared", () => {
  const current = run(5, { round: 2, phase: "Training" }).status;
  assert.equal(progressChanged(current, { round: 2 }), false);
  assert.equal(progressChanged(current, { round: 3 }), true);
  assert.equal(progressChanged(current, {}), false);
  assert.equal(progressChanged(undefined, { activePeers: [] }), true);
});

test("selection subjects are parsed strictly", () => {
  const hk = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
  assert.deepEqual(parseRunSubject(`covenant.tiny.round.7.selection.${hk}`, "tiny"), {
    kind: "selection",
    round: 7,
    hotkey: hk,
  });
  assert.equal(parseRunSubject(`covenant.other.round.7.selection.${hk}`, "tiny"), undefined);
  assert.equal(parseRunSubject(`covenant.tiny.round.7.submit.${hk}`, "tiny")?.kind, "submit");
  assert.equal(parseRunSubject(`covenant.tiny.round.x.selection.${hk}`, "tiny"), undefined);
});

test("submit and heartbeat subjects are parsed too, anything else is not the run's", () => {
  const hk = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
  assert.deepEqual(parseRunSubject(`covenant.tiny.round.3.submit.${hk}`, "tiny"), {
    kind: "submit",
    round: 3,
    hotkey: hk,
  });
  assert.deepEqual(parseRunSubject(`covenant.tiny.heartbeat.${hk}`, "tiny"), {
    kind: "heartbeat",
    hotkey: hk,
  });
  assert.equal(parseRunSubject(`covenant.tiny.heartbeat.not-a-hotkey`, "tiny"), undefined);
  assert.equal(parseRunSubject(`covenant.tiny.round.3.other.${hk}`, "tiny"), undefined);
  assert.equal(parseRunSubject(`covenant.tiny.round.1234567890123456.submit.${hk}`, "tiny"), undefined);
});
