import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveRunConfig } from "../api/runconfig.ts";
import { makeRun } from "../operator/controllers/testing.ts";
import { encodeCheckpoint, stateDigest } from "./checkpoint.ts";
import { RunConfigEpochs } from "./config.ts";
import { verifyCheckpoint } from "./fetch-checkpoint.ts";

const configOf = (optimizer: "sgd" | "nesterov") => {
  const r = resolveRunConfig(makeRun("run").set("spec.outer.optimizer", optimizer).defaulted());
  assert.ok(r.ok);
  return r.config;
};
const tensors = [
  { name: "a", dims: [2, 3] },
  { name: "b", dims: [4] },
];
const theta = [Float32Array.from([1, 2, 3, 4, 5, 6]), Float32Array.from([-1, 0.5, 2, 7])];
const momentum = [new Float32Array(6).fill(0.25), new Float32Array(4).fill(-0.5)];

test("a fetched checkpoint is kept only when it is the one the validator recorded", () => {
  const sgd = new RunConfigEpochs(configOf("sgd"));
  const bytes = encodeCheckpoint({ run: "run", round: 9, tensors }, theta);
  const ptr = { round: 9, object: "checkpoint-9", digest: stateDigest(theta) };
  assert.deepEqual(verifyCheckpoint(bytes, ptr, sgd, "run"), { round: 9, digest: ptr.digest });

  const flipped = bytes.slice();
  flipped[flipped.length - 1]! ^= 1;
  assert.throws(() => verifyCheckpoint(flipped, ptr, sgd, "run"), /round 9 is corrupt: digest \w+, recorded/);
  assert.throws(
    () => verifyCheckpoint(bytes, { ...ptr, round: 10 }, sgd, "run"),
    /holds round 9, the pointer names round 10/,
  );
  assert.throws(() => verifyCheckpoint(bytes, ptr, sgd, "other"), /run run, expected other/);
  assert.throws(
    () => verifyCheckpoint(bytes.subarray(0, 20), ptr, sgd, "run"),
    /not a covenant checkpoint|truncated/,
  );
});

test("the momentum a nesterov run's checkpoint must hold is part of what is checked", () => {
  const nesterov = new RunConfigEpochs(configOf("nesterov"));
  const withMomentum = encodeCheckpoint({ run: "run", round: 4, tensors }, theta, momentum);
  const ptr = { round: 4, object: "checkpoint-4", digest: stateDigest(theta, momentum) };
  assert.equal(verifyCheckpoint(withMomentum, ptr, nesterov, "run").digest, ptr.digest);
  // The same weights without the momentum: no peer could continue from it.
  const bare = encodeCheckpoint({ run: "run", round: 4, tensors }, theta);
  assert.throws(() => verifyCheckpoint(bare, ptr, nesterov, "run"), /holds no outer momentum/);
});
