import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PRESET_SHAPES, parameterCount, type ModelPreset } from "../../api/presets.ts";
import { makeRun } from "../controllers/testing.ts";
import { planBus } from "./provision.ts";
import {
  checkpointBytesBound,
  densePayloadBytes,
  llamaTensors,
  payloadBytes,
  payloadBytesBound,
  retainRoundsOf,
  runBusSpec,
  WIRE_MAX_NAME_BYTES,
} from "./runspec.ts";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const SPARSELOCO = { topK: 64, valueBits: 2, wireFormat: 2 } as const;

describe("payload and checkpoint sizes of a run", () => {
  it("the model's tensors are the ones parameterCount counts", () => {
    for (const s of Object.values(PRESET_SHAPES)) {
      const n = llamaTensors(s).reduce((a, t) => a + t.dims.reduce((m, d) => m * d, 1), 0);
      assert.equal(n, parameterCount(s));
    }
  });

  it("follows the wire format's worked example (one [4] tensor sent whole)", () => {
    const w = [{ name: "w", dims: [4] }];
    assert.equal(payloadBytes(w, { topK: 4, valueBits: 2, wireFormat: 1 }), 68);
    assert.equal(payloadBytes(w, { topK: 4, valueBits: 2, wireFormat: 2 }), 63);
  });

  it("a 72B payload is about 146x smaller than its fp32 pseudo-gradient", () => {
    const s = PRESET_SHAPES["llama3-72b"];
    const ratio = (4 * parameterCount(s)) / payloadBytesBound(s, SPARSELOCO);
    assert.ok(ratio > 140 && ratio < 250, `ratio ${ratio}`);
    assert.ok(checkpointBytesBound(s) > 4 * parameterCount(s));
  });

  it("the bound exceeds an exact size by at most the longest names", () => {
    const s = PRESET_SHAPES["llama3-tiny"];
    const exact = payloadBytes(llamaTensors(s), SPARSELOCO);
    const bound = payloadBytesBound(s, SPARSELOCO);
    const tensors = llamaTensors(s).length;
    assert.ok(bound > exact && bound - exact <= tensors * WIRE_MAX_NAME_BYTES);
  });

  it("a dense payload (mode none) is the fp32 pseudo-gradient plus a small table", () => {
    const s = PRESET_SHAPES["llama3-tiny"];
    const tensors = llamaTensors(s);
    const dense = { ...SPARSELOCO, mode: "none" } as const;
    const table = 24 + tensors.reduce((a, t) => a + 4 + 4 * t.dims.length, 0);
    assert.equal(payloadBytes(tensors, dense), 4 * parameterCount(s) + table);
    assert.equal(payloadBytesBound(s, dense), densePayloadBytes(tensors), "exact: no names");
    assert.equal(
      payloadBytes(tensors, { ...SPARSELOCO, mode: "sparseloco" }),
      payloadBytes(tensors, SPARSELOCO),
    );
    assert.ok(payloadBytesBound(s, dense) > 10 * payloadBytesBound(s, SPARSELOCO));
  });

  it("a nesterov run's checkpoint holds the outer momentum too", () => {
    const s = PRESET_SHAPES["llama3-1b"];
    assert.equal(checkpointBytesBound(s, true) - checkpointBytesBound(s), 4 * parameterCount(s));
  });

  // The codec itself says how long a payload is; where its addon is built, agree with it exactly.
  const addon = join(import.meta.dirname, "../../kernels/build/codec/covenant_codec.node");
  it(
    "agrees with the codec's payloadSize",
    { skip: !existsSync(addon) && "codec addon not built" },
    async () => {
      const { payloadSize } = await import("../../kernels/binding/codec.ts");
      const shapes = [
        ...(["llama3-tiny", "llama3-20m"] as ModelPreset[]).map((p) => llamaTensors(PRESET_SHAPES[p])),
        [
          { name: "odd", dims: [97, 130] },
          { name: "short", dims: [7] },
          { name: "narrow", dims: [200, 3] },
        ],
      ];
      for (const tensors of shapes)
        for (const wireFormat of [1, 2] as const)
          for (const topK of [2, 6, 64, 4096]) {
            const spec = tensors.map((t) => ({ name: t.name, shape: t.dims as [number, number] }));
            assert.equal(
              payloadBytes(tensors, { topK, valueBits: 2, wireFormat }),
              payloadSize(spec, { format: wireFormat, topk: topK, beta: 0.95 }),
              `format ${wireFormat}, topK ${topK}`,
            );
          }
    },
  );
});

describe("runBusSpec", () => {
  it("derives retention, sizes and replicas from the run's spec", () => {
    const run = makeRun("demo").set("spec.checkpoints", { everyRounds: 5, keep: 2 }).defaulted();
    const spec = runBusSpec("demo", run.spec, { miners: [ALICE], validators: [BOB] }, 3);
    assert.equal(spec.roundMs, run.spec.roundDeadlineSeconds * 1000);
    assert.equal(spec.retainRounds, 7, "a checkpoint interval, the round in flight and one late checkpoint");
    assert.equal(spec.retainCheckpoints, 2);
    assert.equal(spec.maxPayloadBytes, payloadBytesBound(PRESET_SHAPES["llama3-tiny"], run.spec.compression));
    const plan = planBus(spec);
    assert.equal(plan.replicas, 3);
    assert.equal(plan.payloadBuckets.length, 2);
    assert.equal(plan.checkpointBuckets.length, 1);
  });

  it("sizes the buses of the dense and DiLoCo baselines", () => {
    const run = makeRun("demo")
      .set("spec.compression.mode", "none")
      .set("spec.outer.optimizer", "nesterov")
      .defaulted();
    const spec = runBusSpec("demo", run.spec, { miners: [ALICE], validators: [BOB] }, 1);
    const shape = PRESET_SHAPES["llama3-tiny"];
    assert.equal(spec.maxPayloadBytes, densePayloadBytes(llamaTensors(shape)));
    assert.equal(spec.maxCheckpointBytes, checkpointBytesBound(shape, true));
    const sgd = runBusSpec("demo", makeRun("demo").defaulted().spec, { miners: [], validators: [] }, 1);
    assert.equal(sgd.maxCheckpointBytes, checkpointBytesBound(shape));
  });

  it("applies model overrides and keeps at least 4 rounds", () => {
    const run = makeRun("demo")
      .set("spec.model.layers", 4)
      .set("spec.checkpoints.everyRounds", 1)
      .defaulted();
    const spec = runBusSpec("demo", run.spec, { miners: [], validators: [] }, 1);
    assert.equal(retainRoundsOf(run.spec), 4);
    assert.equal(
      spec.maxCheckpointBytes,
      checkpointBytesBound({ ...PRESET_SHAPES["llama3-tiny"], layers: 4 }),
    );
  });
});
