import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { resolveRunConfig, roundConfigOf } from "../api/runconfig.ts";
import { PRESET_SHAPES } from "../api/presets.ts";
import { makeRun } from "../operator/controllers/testing.ts";
import { densePayloadBytes as busDenseBytes, llamaTensors } from "../operator/bus/runspec.ts";
import type { BusClient } from "../protocol/bus/client.ts";
import { roundConfigDigest } from "../protocol/configepoch.ts";
import { WIRE_FORMAT_DENSE_FP32 } from "../protocol/envelope.ts";
import { stateDigest, weightsDigest } from "./checkpoint.ts";
import { RunConfigEpochs } from "./config.ts";
import {
  aggregateDense,
  aggregatedGradient,
  clippedMean,
  DENSE_MAX_ABS,
  denseCodec,
  densePayloadBytes,
  encodeDense,
  isDense,
  nesterovStep,
  outerOptimizer,
  parseDense,
  payloadFormat,
  sgdStep,
  zerosLike,
} from "./dense.ts";
import type { Codec, Engine, Tensors } from "./kernels.ts";
import { workerMetrics } from "./metrics.ts";
import { Replica } from "./replica.ts";
import { emptySelection } from "./testing.ts";

const tensors = [
  { name: "w", dims: [2, 3] },
  { name: "b", dims: [4] },
];
const delta = (): Tensors => [
  Float32Array.from([0.5, -2, 1, 3, 0, -0.25]),
  Float32Array.from([1e-3, -7, 1e6, -1e6]),
];

const f = Math.fround;

test("a dense payload round-trips bit for bit, deterministically, at the size the bus plans", () => {
  const bytes = encodeDense(tensors, delta());
  assert.deepEqual(bytes, encodeDense(tensors, delta()));
  assert.equal(bytes.length, densePayloadBytes(tensors));
  assert.equal(bytes.length, 24 + (4 + 8) + (4 + 4) + 4 * 10);
  assert.equal(bytes[6], WIRE_FORMAT_DENSE_FP32);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "CVDN");
  const back = parseDense(tensors, bytes);
  assert.ok(back.ok);
  assert.equal(weightsDigest(back.values), weightsDigest(delta()));
  // An unaligned view decodes alike.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const v = parseDense(tensors, shifted.subarray(1));
  assert.ok(v.ok && weightsDigest(v.values) === weightsDigest(delta()));
  // The operator's bound of the bus is the exact dense size of the model.
  const model = llamaTensors(PRESET_SHAPES["llama3-tiny"]);
  assert.equal(
    busDenseBytes(model),
    densePayloadBytes(model.map((t) => ({ name: t.name, dims: [...t.dims] }))),
  );
});

test("every malformed dense payload is refused with its reason, never thrown", () => {
  const good = encodeDense(tensors, delta());
  const edit = (fn: (b: Uint8Array, v: DataView) => void, bytes = good) => {
    const b = bytes.slice();
    fn(b, new DataView(b.buffer));
    return b;
  };
  const valueAt = (k: number) => densePayloadBytes(tensors) - 4 * (10 - k);
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "truncated"],
    ["shorter than the header", good.subarray(0, 23), "truncated"],
    ["truncated body", good.subarray(0, good.length - 4), "truncated"],
    ["inside the table", edit((_, v) => v.setBigUint64(16, 30n, true)).subarray(0, 30), "truncated"],
    [
      "one byte more",
      edit((b, v) => v.setBigUint64(16, BigInt(b.length), true), new Uint8Array([...good, 0])),
      "length",
    ],
    ["bytes beyond its total", new Uint8Array([...good, 0]), "length"],
    ["magic", edit((b) => (b[0] = 0x41)), "magic"],
    ["version", edit((_, v) => v.setUint16(4, 2, true)), "version"],
    ["format", edit((b) => (b[6] = 2)), "format"],
    ["flags", edit((b) => (b[7] = 1)), "format"],
    ["no tensors", edit((_, v) => v.setUint32(8, 0, true)), "table"],
    ["another tensor count", edit((_, v) => v.setUint32(8, 3, true)), "mismatch"],
    ["rank 3", edit((_, v) => v.setUint16(24, 3, true)), "table"],
    ["reserved", edit((_, v) => v.setUint16(26, 1, true)), "table"],
    ["another shape", edit((_, v) => v.setUint32(28, 3, true)), "mismatch"],
    ["header length", edit((_, v) => v.setUint32(12, 40, true)), "length"],
    ["NaN", edit((_, v) => v.setFloat32(valueAt(2), NaN, true)), "nonfinite"],
    ["infinite", edit((_, v) => v.setFloat32(valueAt(7), -Infinity, true)), "nonfinite"],
    ["beyond the bound", edit((_, v) => v.setFloat32(valueAt(9), -1.0001e6, true)), "quant"],
  ];
  const codec = denseCodec(tensors);
  for (const [what, bytes, reason] of cases) {
    const v = parseDense(tensors, bytes);
    assert.ok(!v.ok, what);
    assert.equal(v.reason, reason, `${what}: ${v.detail}`);
    assert.deepEqual(codec.validate(bytes), { ok: false, reason, detail: v.detail }, what);
    assert.throws(() => codec.decode(bytes), { name: "CodecError", code: reason }, what);
  }
  // Another model's payload: its size differs from the run's.
  const other = encodeDense([{ name: "w", dims: [6] }], [new Float32Array(6)]);
  assert.equal(parseDense([{ name: "w", dims: [7] }], other).ok, false);
  assert.equal((parseDense([{ name: "w", dims: [7] }], other) as { reason: string }).reason, "mismatch");
  // A lower bound is the receiver's to set.
  assert.equal((parseDense(tensors, good, 10) as { reason: string }).reason, "quant");
});

test("a miner cannot encode a value no receiver would accept", () => {
  const nan = delta();
  nan[1]![0] = NaN;
  assert.throws(() => encodeDense(tensors, nan), { name: "CodecError", code: "nonfinite" });
  const big = delta();
  big[0]![5] = 2 * DENSE_MAX_ABS;
  assert.throws(() => encodeDense(tensors, big), { name: "CodecError", code: "quant" });
  assert.throws(() => encodeDense(tensors, [delta()[0]!]), { name: "CodecError", code: "argument" });
  // No error feedback: the buffers given are not touched.
  const errors = [new Float32Array(6).fill(3), new Float32Array(4)];
  denseCodec(tensors).compress(delta(), errors);
  assert.deepEqual([...errors[0]!], [3, 3, 3, 3, 3, 3]);
});

test("aggregation clips each payload to the lower median norm per tensor, then averages", () => {
  const one = (values: number[]): Tensors => [Float32Array.from(values)];
  // Norms 5, 1, 2: the lower median is 2; only the first is clipped (factor 0.4).
  const odd = clippedMean([one([3, 4]), one([0.6, 0.8]), one([0, 2])]);
  const k = f(2 / 5);
  assert.deepEqual([...odd[0]!], [f(f(f(f(3 * k) + f(0.6)) + 0) / 3), f(f(f(f(4 * k) + f(0.8)) + 2) / 3)]);
  assert.ok(Math.abs(odd[0]![0]! - 0.6) < 1e-6 && Math.abs(odd[0]![1]! - 4.4 / 3) < 1e-6);
  // Two payloads: the lower median is the smaller norm.
  const even = clippedMean([one([3, 4]), one([0, 1])]);
  assert.ok(Math.abs(even[0]![0]! - 0.3) < 1e-7 && Math.abs(even[0]![1]! - 0.9) < 1e-7, String(even[0]));
  // Per tensor: a tensor's clip does not depend on another's norms.
  const two = clippedMean([
    [Float32Array.from([10]), Float32Array.from([1])],
    [Float32Array.from([1]), Float32Array.from([10])],
  ]);
  assert.deepEqual([...two[0]!, ...two[1]!], [1, 1]);
  // The step: theta -= lr * mean, bad payloads left out and reported.
  const theta = one([1, 1]);
  const res = aggregateDense(
    [{ name: "w", dims: [2] }],
    [encodeDense([{ name: "w", dims: [2] }], one([3, 4])), new Uint8Array(3)],
    0.5,
    theta,
  );
  assert.deepEqual(res, { statuses: ["ok", "truncated"], accepted: 1 });
  assert.deepEqual([...theta[0]!], [f(1 - 1.5), f(1 - 2)]);
});

test("the aggregate without the step is exactly the mean the step uses", () => {
  const codec = denseCodec(tensors);
  const payloads = [
    delta(),
    delta().map((t) => t.map((x) => x * -0.5)),
    delta().map((t) => t.map((x) => x / 4 + 1)),
  ].map((d) => codec.compress(d, []));
  const { g, result } = aggregatedGradient(codec, payloads, zerosLike(delta()));
  assert.equal(result.accepted, 3);
  const decoded = payloads.map((p) => codec.decode(p));
  assert.equal(weightsDigest(g), weightsDigest(clippedMean(decoded)));
  const viaCodec = delta();
  codec.aggregate(payloads, 0.7, viaCodec);
  const viaG = delta();
  sgdStep(viaG, g, 0.7);
  assert.equal(weightsDigest(viaG), weightsDigest(viaCodec));
});

// The native codec gives the same g for sparse payloads: its step with lr equals sgdStep with g.
const addon = join(import.meta.dirname, "../kernels/build/codec/covenant_codec.node");
test(
  "the sparse codec's aggregate without the step gives the g of its own step",
  { skip: !existsSync(addon) && "codec addon not built" },
  async () => {
    const { nativeCodec } = await import("./native.ts");
    const model = [
      { name: "w", dims: [64, 128] },
      { name: "n", dims: [96] },
    ];
    const codec = nativeCodec(model, { format: 2, topk: 32, beta: 0.95, threads: 1 });
    const rnd = (seed: number) =>
      model.map((t) => {
        const a = new Float32Array(t.dims.reduce((x, y) => x * y, 1));
        for (let i = 0; i < a.length; i++) a[i] = Math.sin(seed * 7919 + i * 104729) * (1 + seed);
        return a;
      });
    const payloads = [1, 2, 3].map((s) => codec.compress(rnd(s), zerosLike(rnd(0))).slice());
    const { g, result } = aggregatedGradient(codec, payloads, rnd(0));
    assert.equal(result.accepted, 3);
    const viaCodec = rnd(9);
    codec.aggregate(payloads, 0.7, viaCodec);
    const viaG = rnd(9);
    sgdStep(viaG, g, 0.7);
    assert.equal(weightsDigest(viaG), weightsDigest(viaCodec));
  },
);

test("nesterov follows v = mu v + g; theta -= lr (g + mu v) over three rounds", () => {
  const theta: Tensors = [Float32Array.from([1, -1])];
  const v = zerosLike(theta);
  const lr = 0.5;
  const mu = 0.9;
  const rounds = [
    { g: [1, 0], v: [1, 0], theta: [0.05, -1] },
    { g: [1, 2], v: [1.9, 2], theta: [-1.305, -2.9] },
    { g: [0, -1], v: [1.71, 0.8], theta: [-2.0745, -2.76] },
  ];
  for (const [i, r] of rounds.entries()) {
    nesterovStep(theta, v, [Float32Array.from(r.g)], lr, mu);
    for (let j = 0; j < 2; j++) {
      assert.ok(Math.abs(v[0]![j]! - r.v[j]!) < 1e-5, `round ${i}: v ${v[0]}`);
      assert.ok(Math.abs(theta[0]![j]! - r.theta[j]!) < 1e-5, `round ${i}: theta ${theta[0]}`);
    }
  }
  // fp32, one rounding per operation: the first round exactly.
  const t1: Tensors = [Float32Array.from([1])];
  const v1 = zerosLike(t1);
  nesterovStep(t1, v1, [Float32Array.from([0.1])], 0.3, 0.9);
  const vv = f(f(f(0.9) * 0) + f(0.1));
  assert.equal(v1[0]![0], vv);
  assert.equal(t1[0]![0], f(1 - f(f(0.3) * f(f(0.1) + f(f(0.9) * vv)))));
  // Momentum 0 is the sgd step, bit for bit.
  const a = delta();
  const b = delta();
  const g = delta().map((t) => t.map((x) => x / 3));
  nesterovStep(a, zerosLike(a), g, 0.7, 0);
  sgdStep(b, g, 0.7);
  assert.equal(weightsDigest(a), weightsDigest(b));
  // A non-finite result leaves the coordinate's weight and momentum as they were.
  const th: Tensors = [Float32Array.from([3.4e38, 1])];
  const m: Tensors = [Float32Array.from([0, 0])];
  nesterovStep(th, m, [Float32Array.from([-3e38, 1])], 10, 0.9);
  assert.equal(th[0]![0], f(3.4e38));
  assert.equal(m[0]![0], 0);
  assert.notEqual(th[0]![1], 1);
});

test("a run's options: dense payloads in format 3, sgd by default", () => {
  const run = makeRun("run").defaulted();
  const r = resolveRunConfig(run);
  assert.ok(r.ok);
  assert.equal(r.config.compression.mode, "sparseloco");
  assert.equal(isDense(r.config), false);
  assert.equal(payloadFormat(r.config), r.config.compression.wireFormat);
  assert.equal(outerOptimizer(r.config), "sgd");
  assert.equal(r.config.outer.momentum, 0.9);
  const dense = { ...r.config, compression: { ...r.config.compression, mode: "none" as const } };
  assert.equal(payloadFormat(dense), 3);
  // A config written before the choice existed: sgd.
  const { optimizer: _o, ...older } = r.config.outer;
  assert.equal(outerOptimizer({ outer: older as typeof r.config.outer }), "sgd");
});

test("a replica's momentum: zeros from the first nesterov round, kept by null rounds, dropped by sgd", async () => {
  const base = (() => {
    const r = resolveRunConfig(
      makeRun("run").set("spec.outer", { optimizer: "nesterov", momentum: 0.5 }).defaulted(),
    );
    assert.ok(r.ok);
    return r.config;
  })();
  assert.equal(base.outer.optimizer, "nesterov");
  let held: Tensors = [Float32Array.from([1, 2])];
  const engine = {
    tensors: [{ name: "w", dims: [2] }],
    getParameters: () => held.map((t) => t.slice()),
    setParameters: (t: Tensors) => (held = t),
  } as unknown as Engine;
  const bus = { names: { run: "run" } } as unknown as BusClient;
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  const metrics = workerMetrics({ run: "run", role: "miner" });
  const sgd = { ...base, outer: { ...base.outer, optimizer: "sgd" as const } };
  const epochs = new RunConfigEpochs(base);
  const codec = { payloadSize: () => 100 } as unknown as Codec;
  const r = new Replica(epochs, bus, engine, codec, "validator", metrics, log as never);
  const momentum = () => r.momentum;
  const sel = (round: number) => emptySelection(round);

  assert.equal(momentum(), undefined);
  const before = r.digest;
  assert.equal(before, weightsDigest(r.theta));
  await r.apply(sel(0));
  assert.deepEqual(
    momentum()?.map((t) => [...t]),
    [[0, 0]],
  );
  assert.equal(r.digest, stateDigest(r.theta, r.momentum));
  assert.notEqual(r.digest, before, "the digest covers the momentum");
  momentum()![0]![0] = 0.25;
  await r.apply(sel(1));
  assert.deepEqual([...momentum()![0]!], [0.25, 0], "a round that aggregates nothing keeps it");
  assert.deepEqual([...r.theta[0]!], [1, 2]);
  // A config epoch to sgd drops it.
  epochs.update({
    ...base,
    epochs: [
      { ...epochs.epochs[0]! },
      {
        epoch: 2,
        fromRound: 2,
        digest: roundConfigDigest(sgd),
        config: roundConfigOf(sgd),
      },
    ],
  });
  await r.apply(sel(2));
  assert.equal(momentum(), undefined);
  assert.equal(r.digest, weightsDigest(r.theta));
  assert.equal(r.round, 3);
});

test("a dense run's replica uses the dense codec and bounds payloads by the dense size", () => {
  const r = resolveRunConfig(makeRun("run").set("spec.compression.mode", "none").defaulted());
  assert.ok(r.ok);
  const engine = { tensors, getParameters: () => delta(), setParameters: () => {} } as unknown as Engine;
  const bus = { names: { run: "run" } } as unknown as BusClient;
  const native = { payloadSize: () => 100 } as unknown as Codec;
  const rep = new Replica(new RunConfigEpochs(r.config), bus, engine, native, "v", {} as never, {} as never);
  assert.equal(rep.gather.maxPayloadBytes, densePayloadBytes(tensors));
  assert.deepEqual(rep.codec.validate(encodeDense(tensors, delta())), { ok: true });
});
