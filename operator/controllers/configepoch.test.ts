import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_CONFIG_EPOCHS,
  resolveRunConfig,
  roundConfigOf,
  type ConfigEpoch,
  type RoundConfig,
} from "../../api/index.ts";
import { configOf, epochFor, epochProblems, roundConfigDigest } from "../../protocol/configepoch.ts";
import { CONFIG_EPOCH_MARGIN, planConfigEpochs, storedEpochs } from "./configepoch.ts";
import { makeRun } from "./testing.ts";

const spec = (f: (s: RoundConfig) => void = () => {}): RoundConfig => {
  const s = roundConfigOf(makeRun("run").defaulted().spec);
  f(s);
  return s;
};
const status = (e: ConfigEpoch) => ({ epoch: e.epoch, digest: e.digest, fromRound: e.fromRound });

describe("planConfigEpochs", () => {
  it("starts a run with epoch 1 from round 0", () => {
    const p = planConfigEpochs(undefined, undefined, spec(), 0);
    assert.equal(p.epochs.length, 1);
    assert.deepEqual(
      { epoch: p.added?.epoch, fromRound: p.added?.fromRound, digest: p.added?.digest },
      { epoch: 1, fromRound: 0, digest: roundConfigDigest(spec()) },
    );
    assert.deepEqual(p.changed, []);
    assert.deepEqual(epochProblems(p.epochs), []);
  });

  it("keeps the epochs while the round-level fields stay the same (fields outside them do not count)", () => {
    const first = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    const again = planConfigEpochs(first, status(first[0]!), spec(), 40);
    assert.equal(again.added, undefined);
    assert.deepEqual(again.epochs, first);
    const other = {
      ...makeRun("run")
        .image("x@sha256:" + "e".repeat(64))
        .defaulted().spec,
    };
    assert.equal(planConfigEpochs(first, status(first[0]!), other, 40).added, undefined);
  });

  it("a change takes effect a margin of rounds after the current one, with the changed fields named", () => {
    const first = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    const next = spec((s) => {
      s.innerSteps = 50;
      s.outer.learningRate = 0.7;
    });
    const p = planConfigEpochs(first, status(first[0]!), next, 17);
    assert.equal(p.added?.epoch, 2);
    assert.equal(p.added?.fromRound, 17 + CONFIG_EPOCH_MARGIN);
    assert.deepEqual(p.changed, ["spec.innerSteps", "spec.outer.learningRate"]);
    assert.equal(epochFor(p.epochs, 18).epoch, 1, "the old epoch until the boundary");
    assert.equal(epochFor(p.epochs, 19).epoch, 2);
    assert.equal(epochFor(p.epochs, 1000).epoch, 2);
    const base = resolveRunConfig(makeRun("run").defaulted());
    assert.ok(base.ok);
    assert.equal(configOf(base.config, epochFor(p.epochs, 19)).innerSteps, 50);
    assert.deepEqual(epochProblems(p.epochs), []);
  });

  it("a second change before the first took effect never takes effect earlier than it", () => {
    const e1 = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    const e2 = planConfigEpochs(
      e1,
      status(e1[0]!),
      spec((s) => (s.innerSteps = 40)),
      10,
    ).epochs;
    // The run's status round lags (or went back): the new epoch still starts no earlier.
    const e3 = planConfigEpochs(
      e2,
      status(e2[1]!),
      spec((s) => (s.innerSteps = 20)),
      5,
    );
    assert.equal(e3.added?.fromRound, 12);
    assert.equal(epochFor(e3.epochs, 12).config.innerSteps, 20, "the later epoch wins at the same round");
    // Back to the original settings: a new epoch with the original digest.
    const e4 = planConfigEpochs(e3.epochs, status(e3.epochs[2]!), spec(), 30);
    assert.equal(e4.added?.epoch, 4);
    assert.equal(e4.added?.digest, e1[0]!.digest);
  });

  it("keeps at most MAX_CONFIG_EPOCHS, the newest", () => {
    let epochs = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    for (let i = 1; i <= MAX_CONFIG_EPOCHS + 3; i++) {
      epochs = planConfigEpochs(
        epochs,
        status(epochs.at(-1)!),
        spec((s) => (s.innerSteps = i)),
        i * 10,
      ).epochs;
    }
    assert.equal(epochs.length, MAX_CONFIG_EPOCHS);
    assert.equal(epochs.at(-1)?.epoch, MAX_CONFIG_EPOCHS + 4);
    assert.equal(epochFor(epochs, 0).epoch, epochs[0]!.epoch, "before the oldest kept: the oldest");
  });

  it("waits when the stored epochs lag behind the status (a stale ConfigMap cache)", () => {
    const e1 = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    const e2 = planConfigEpochs(
      e1,
      status(e1[0]!),
      spec((s) => (s.innerSteps = 40)),
      10,
    ).epochs;
    const p = planConfigEpochs(
      e1,
      status(e2[1]!),
      spec((s) => (s.innerSteps = 40)),
      11,
    );
    assert.equal(p.stale, true);
    assert.equal(p.added, undefined);
  });

  it("rebuilds from the status when the stored config is gone", () => {
    const e1 = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    const e2 = planConfigEpochs(
      e1,
      status(e1[0]!),
      spec((s) => (s.innerSteps = 40)),
      10,
    ).epochs;
    const same = planConfigEpochs(
      undefined,
      status(e2[1]!),
      spec((s) => (s.innerSteps = 40)),
      30,
    );
    assert.deepEqual(same.epochs, [e2[1]]);
    const changed = planConfigEpochs(
      undefined,
      status(e2[1]!),
      spec((s) => (s.innerSteps = 9)),
      30,
    );
    assert.equal(changed.added?.epoch, 3);
    assert.equal(changed.added?.fromRound, 30 + CONFIG_EPOCH_MARGIN);
  });

  it("reads the epochs of a stored run config, and none from a broken one", () => {
    const e1 = planConfigEpochs(undefined, undefined, spec(), 0).epochs;
    assert.deepEqual(storedEpochs(JSON.stringify({ epochs: e1 })), e1);
    assert.equal(storedEpochs("{"), undefined);
    assert.equal(storedEpochs(JSON.stringify({})), undefined);
    const forged = [{ ...e1[0]!, config: { ...e1[0]!.config, innerSteps: 99 } }];
    assert.equal(storedEpochs(JSON.stringify({ epochs: forged })), undefined, "digest must match");
  });
});
