import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Reason, RUN_CONFIG_FILE, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import { findCondition } from "./conditions.ts";
import { CONFIG_HASH_ANNOTATION, planRun } from "./runplan.ts";
import { makePeer, makeRun } from "./testing.ts";

const NOW = new Date("2026-06-01T12:00:00Z");

const readyPeer = (name: string, ready = true, run = "run"): CovenantPeer =>
  makePeer(name, run)
    .status({
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: "X",
          message: "",
          lastTransitionTime: NOW.toISOString(),
        },
      ],
    })
    .defaulted();

const withStatus = (r: TrainingRun, status: Record<string, unknown>): TrainingRun =>
  ({ ...r, status }) as TrainingRun;
const cond = (s: { conditions?: unknown[] }, t: string) => findCondition(s.conditions as never, t);

describe("planRun", () => {
  const run = makeRun("run").minPeers(2).defaulted();

  it("writes the resolved config and waits for peers", () => {
    const plan = planRun({ run, peers: [readyPeer("a")], configMap: undefined, now: NOW });
    assert.equal(plan.status.phase, "WaitingForPeers");
    assert.equal(plan.status.peers, 1);
    assert.equal(plan.status.readyPeers, 1);
    const cm = plan.configMap!;
    assert.equal(cm.metadata?.name, "run-run-config");
    assert.equal(cm.metadata?.ownerReferences?.[0]?.kind, "TrainingRun");
    const cfg = JSON.parse(cm.data![RUN_CONFIG_FILE]!);
    assert.equal(cfg.model.hidden, 64, "the preset is expanded");
    assert.equal(cfg.compression.topK, 64);
    assert.equal(cfg.kind, "ResolvedRunConfig");
    assert.equal(cond(plan.status, "Ready")?.status, "False");
    assert.equal(cond(plan.status, "Progressing")?.status, "True");
  });

  it("does not rewrite an up-to-date ConfigMap", () => {
    const first = planRun({ run, peers: [], configMap: undefined, now: NOW });
    const again = planRun({ run, peers: [], configMap: first.configMap, now: NOW });
    assert.equal(again.configMap, undefined);
    assert.equal(first.configMap?.metadata?.annotations?.[CONFIG_HASH_ANNOTATION], first.status.configHash);
  });

  it("moves WaitingForPeers -> Warmup -> Training -> Completed with peers and rounds", () => {
    const peers = [readyPeer("a"), readyPeer("b"), readyPeer("c", false)];
    const warm = planRun({ run, peers, configMap: undefined, now: NOW });
    assert.equal(warm.status.phase, "Warmup");
    assert.equal(warm.status.readyPeers, 2);
    assert.equal(cond(warm.status, "Ready")?.status, "True");
    assert.equal(cond(warm.status, "Degraded")?.status, "True");
    const training = planRun({
      run: withStatus(run, { phase: "Warmup", round: 2 }),
      peers,
      configMap: undefined,
      now: NOW,
    });
    assert.equal(training.status.phase, "Training");
    assert.ok(training.events.some((e) => e.reason === "Training"));
    const done = planRun({
      run: withStatus(run, { phase: "Training", round: 100 }),
      peers,
      configMap: undefined,
      now: NOW,
    });
    assert.equal(done.status.phase, "Completed");
    assert.equal(cond(done.status, "Progressing")?.status, "False");
    const stays = planRun({
      run: withStatus(run, { phase: "Completed", round: 3 }),
      peers: [],
      configMap: undefined,
      now: NOW,
    });
    assert.equal(stays.status.phase, "Completed", "Completed is terminal");
  });

  it("falls back to WaitingForPeers when peers drop out", () => {
    const plan = planRun({
      run: withStatus(run, { phase: "Training", round: 10 }),
      peers: [readyPeer("a")],
      configMap: undefined,
      now: NOW,
    });
    assert.equal(plan.status.phase, "WaitingForPeers");
  });

  it("suspend keeps the phase and sets Suspended", () => {
    const suspended = makeRun("run").suspend().defaulted();
    const plan = planRun({
      run: withStatus(suspended, { phase: "Training", round: 10 }),
      peers: [],
      configMap: undefined,
      now: NOW,
    });
    assert.equal(plan.status.phase, "Training");
    assert.equal(cond(plan.status, "Suspended")?.status, "True");
    assert.equal(cond(plan.status, "Ready")?.reason, Reason.Suspended);
    assert.ok(plan.events.some((e) => e.reason === Reason.Suspended));
    const resumed = planRun({
      run: withStatus(run, { phase: "Training", round: 10, conditions: plan.status.conditions }),
      peers: [readyPeer("a"), readyPeer("b")],
      configMap: undefined,
      now: NOW,
    });
    assert.ok(resumed.events.some((e) => e.reason === Reason.Resumed));
    assert.equal(cond(resumed.status, "Suspended")?.status, "False");
  });

  it("an impossible model fails the run with the field named and writes no config", () => {
    const bad = makeRun("run").set("spec.model.hidden", 60).defaulted(); // 60 / 4 heads = 15: odd head dim
    const plan = planRun({ run: bad, peers: [], configMap: undefined, now: NOW });
    assert.equal(plan.status.phase, "Failed");
    assert.equal(plan.configMap, undefined);
    assert.equal(cond(plan.status, "Ready")?.reason, Reason.InvalidSpec);
    assert.match(cond(plan.status, "Ready")?.message ?? "", /spec\.model/);
  });

  it("counts validators and ignores suspended peers for readiness", () => {
    const v = makePeer("v").role("validator").defaulted();
    const s = makePeer("s").suspend().defaulted();
    const plan = planRun({ run, peers: [v, s, readyPeer("a")], configMap: undefined, now: NOW });
    assert.equal(plan.status.validators, 1);
    assert.equal(plan.status.peers, 3);
    assert.match(cond(plan.status, "Degraded")?.message ?? "", /1 of 2 peers not ready/);
  });

  it("a change of round-level fields is a new config epoch a margin of rounds ahead, without a new pod spec", () => {
    const first = planRun({ run, peers: [], configMap: undefined, now: NOW });
    assert.deepEqual(
      { epoch: first.status.configEpoch?.epoch, fromRound: first.status.configEpoch?.fromRound },
      { epoch: 1, fromRound: 0 },
    );
    assert.ok(!first.events.some((e) => e.reason === Reason.ConfigEpoch), "no event for a run's first epoch");
    const changed = makeRun("run").minPeers(2).set("spec.innerSteps", 60).set("spec.outer.learningRate", 0.5);
    const plan = planRun({
      run: withStatus(changed.defaulted(), { round: 7, configEpoch: first.status.configEpoch }),
      peers: [],
      configMap: first.configMap,
      now: NOW,
    });
    assert.deepEqual(
      { epoch: plan.status.configEpoch?.epoch, fromRound: plan.status.configEpoch?.fromRound },
      { epoch: 2, fromRound: 9 },
    );
    const cfg = JSON.parse(plan.configMap!.data![RUN_CONFIG_FILE]!);
    assert.deepEqual(
      cfg.epochs.map((e: { epoch: number; fromRound: number; config: { innerSteps: number } }) => [
        e.epoch,
        e.fromRound,
        e.config.innerSteps,
      ]),
      [
        [1, 0, 30],
        [2, 9, 60],
      ],
    );
    const ev = plan.events.find((e) => e.reason === Reason.ConfigEpoch);
    assert.match(
      ev?.message ?? "",
      /config epoch 2 .* takes effect at round 9: spec\.innerSteps, spec\.outer\.learningRate/,
    );
    // Planned again from what it wrote: nothing more to do.
    const again = planRun({
      run: withStatus(changed.defaulted(), { round: 8, configEpoch: plan.status.configEpoch }),
      peers: [],
      configMap: plan.configMap,
      now: NOW,
    });
    assert.equal(again.configMap, undefined);
    assert.deepEqual(again.status.configEpoch, plan.status.configEpoch);
  });

  it("writes nothing while its ConfigMap cache lags behind the status", () => {
    const first = planRun({ run, peers: [], configMap: undefined, now: NOW });
    const changed = makeRun("run").minPeers(2).set("spec.innerSteps", 60).defaulted();
    const written = planRun({
      run: withStatus(changed, { round: 7, configEpoch: first.status.configEpoch }),
      peers: [],
      configMap: first.configMap,
      now: NOW,
    });
    const lagging = planRun({
      run: withStatus(changed, {
        round: 8,
        configEpoch: written.status.configEpoch,
        configHash: written.status.configHash,
      }),
      peers: [],
      configMap: first.configMap,
      now: NOW,
    });
    assert.equal(lagging.configMap, undefined);
    assert.deepEqual(lagging.status.configEpoch, written.status.configEpoch);
  });
});
