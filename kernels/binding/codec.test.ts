import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  aggregate,
  aggregateAsync,
  CodecError,
  compress,
  compressAsync,
  decode,
  numel,
  payloadSize,
  validate,
  wireVersion,
  type CodecConfig,
  type TensorSpec,
} from "./codec.ts";

const spec: TensorSpec[] = [
  { name: "layers.0.attn.q_proj.weight", shape: [128, 192] },
  { name: "layers.0.mlp.up_proj.weight", shape: [96, 80] },
  { name: "layers.0.input_layernorm.weight", shape: [64] },
  { name: "norm.bias", shape: [100] },
];
const config1: CodecConfig = { format: 1, topk: 16, beta: 0.95, threads: 2 };
const config2: CodecConfig = { ...config1, format: 2 };

/** Deterministic pseudo-random values (xorshift32), scaled. */
function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return out;
}

function inputs(seed: number): { deltas: Float32Array[]; errors: Float32Array[] } {
  return {
    deltas: spec.map((t, i) => values(numel(t), seed * 31 + i, 0.02)),
    errors: spec.map((t, i) => values(numel(t), seed * 17 + i + 5, 0.01)),
  };
}

describe("codec binding", () => {
  it("compresses, validates and decodes; the error buffer keeps what was not sent", () => {
    const { deltas, errors } = inputs(1);
    const expected = errors.map((e, t) => e.map((v, i) => Math.fround(Math.fround(Math.fround(0.95) * v) + deltas[t]![i]!)));
    const payload = compress(spec, config1, deltas, errors);
    assert.equal(payload.length, payloadSize(spec, config1));
    assert.deepEqual([...payload.subarray(0, 4)], [..."CVSL"].map((c) => c.charCodeAt(0)));
    assert.equal(payload[4], wireVersion());
    validate(spec, config1, payload);
    const recon = decode(spec, config1, payload);
    let kept = 0;
    for (let t = 0; t < spec.length; t++) {
      for (let i = 0; i < recon[t]!.length; i++) {
        const r = recon[t]![i]!;
        const want = r !== 0 ? Math.fround(expected[t]![i]! - r) : expected[t]![i]!;
        assert.equal(errors[t]![i], want, `${spec[t]!.name}[${i}]`);
        if (r !== 0) kept++;
      }
    }
    // 6 tiles of 64x64, 4 of 48x40, one chunk of 64 and 2 chunks of 50: 16 kept in each
    assert.equal(kept, 6 * 16 + 4 * 16 + 16 + 2 * 16);
  });

  it("writes into the caller's buffers without copies", () => {
    const { deltas } = inputs(2);
    const backing = new Float32Array(spec.reduce((a, t) => a + numel(t), 0) + 3);
    let offset = 3;
    const errors = spec.map((t) => {
      const view = backing.subarray(offset, offset + numel(t));
      offset += numel(t);
      return view;
    });
    const out = new Uint8Array(payloadSize(spec, config2) + 10);
    const payload = compress(spec, config2, deltas, errors, out);
    assert.equal(payload.buffer, out.buffer);
    assert.equal(payload.byteOffset, 0);
    assert.ok(backing.subarray(3).some((v) => v !== 0));
    assert.equal(backing[0], 0);
    const dense = spec.map((t) => new Float32Array(numel(t)).fill(9));
    const decoded = decode(spec, config2, payload, dense);
    assert.equal(decoded[0], dense[0]);
    assert.ok(!dense[0]!.includes(9));
  });

  it("takes bf16 pseudo-gradients as Uint16Array bit patterns", () => {
    const f32 = inputs(3);
    const bf16 = f32.deltas.map((d) => {
      const bits = new Uint16Array(d.length);
      const u32 = new Uint32Array(d.buffer, d.byteOffset, d.length);
      for (let i = 0; i < d.length; i++) bits[i] = u32[i]! >>> 16;
      for (let i = 0; i < d.length; i++) u32[i] = u32[i]! & 0xffff0000;
      return bits;
    });
    const errorsA = f32.errors.map((e) => e.slice());
    const errorsB = f32.errors.map((e) => e.slice());
    const a = compress(spec, config1, f32.deltas, errorsA);
    const b = compress(spec, config1, bf16, errorsB);
    assert.deepEqual(b, a);
    assert.deepEqual(errorsB, errorsA);
  });

  it("is deterministic, and format 2 is smaller than format 1 with the same reconstruction", async () => {
    const a = inputs(4);
    const b = inputs(4);
    const c = inputs(4);
    const p1 = compress(spec, config1, a.deltas, a.errors);
    const p1async = await compressAsync(spec, config1, b.deltas, b.errors);
    assert.deepEqual(p1async, p1);
    assert.deepEqual(b.errors, a.errors);
    const p2 = compress(spec, config2, c.deltas, c.errors);
    assert.ok(p2.length < p1.length);
    assert.deepEqual(decode(spec, config2, p2), decode(spec, config1, p1));
  });

  it("rejects malformed payloads with a named reason", () => {
    const { deltas, errors } = inputs(5);
    const payload = compress(spec, config1, deltas, errors);
    const cases: [string, Uint8Array, string][] = [
      ["truncated", payload.subarray(0, 10), "truncated"],
      ["short body", payload.subarray(0, payload.length - 1), "length"],
      ["magic", Uint8Array.from(payload, (v, i) => (i === 0 ? 0 : v)), "magic"],
      ["version", Uint8Array.from(payload, (v, i) => (i === 4 ? 7 : v)), "version"],
      ["format", Uint8Array.from(payload, (v, i) => (i === 6 ? 2 : v)), "format"],
    ];
    for (const [what, bytes, code] of cases) {
      assert.throws(
        () => validate(spec, config1, bytes),
        (e: unknown) => e instanceof CodecError && e.code === code && e.message.length > 0,
        what,
      );
    }
    // a different run layout: same bytes, other top-k
    assert.throws(
      () => validate(spec, { ...config1, topk: 8 }, payload),
      (e: unknown) => e instanceof CodecError && e.code === "k",
    );
    assert.throws(
      () => validate(spec.slice(1), config1, payload),
      (e: unknown) => e instanceof CodecError && e.code === "mismatch",
    );
  });

  it("checks arguments before touching memory", () => {
    const { deltas, errors } = inputs(6);
    assert.throws(() => compress(spec, config1, deltas.slice(1), errors), RangeError);
    const short = errors.map((e, i) => (i === 2 ? e.subarray(1) : e));
    assert.throws(() => compress(spec, config1, deltas, short), /error of layers.0.input_layernorm.weight/);
    assert.throws(
      () => compress(spec, config1, deltas.map((d) => new Float64Array(d)) as never, errors),
      TypeError,
    );
    assert.throws(
      () => compress(spec, config1, deltas, errors, new Uint8Array(10)),
      (e: unknown) => e instanceof CodecError && e.code === "capacity",
    );
    assert.throws(
      () => payloadSize([{ name: "bad name", shape: [4] }], config1),
      (e: unknown) => e instanceof CodecError && e.code === "argument",
    );
    assert.throws(() => payloadSize([{ name: "w", shape: [0] as never }], config1), TypeError);
    const nan = deltas.map((d) => d.slice());
    nan[1]![3] = NaN;
    assert.throws(
      () => compress(spec, config1, nan, errors),
      (e: unknown) => e instanceof CodecError && e.code === "nonfinite",
    );
  });

  it("refuses a payload no receiver would accept and leaves the error buffers as they were", async () => {
    const w: TensorSpec[] = [{ name: "w", shape: [64, 64] }];
    const config: CodecConfig = { format: 2, topk: 64, beta: 0.95, threads: 2 };
    const delta = values(64 * 64, 41, 0.02);
    delta[1000] = 2e6; // the codebook entry of its bin lies beyond the bound of 1e6
    const errors = [values(64 * 64, 42, 0.01)];
    const before = errors[0]!.slice();
    const quant = (e: unknown): boolean =>
      e instanceof CodecError && e.code === "quant" && /^w: quantization parameter beyond the bound/.test(e.message);
    assert.throws(() => compress(w, config, [delta], errors), quant);
    await assert.rejects(compressAsync(w, config, [delta], errors), quant);
    assert.deepEqual(new Uint8Array(errors[0]!.buffer), new Uint8Array(before.buffer));
    // the same tensor without the outlier compresses and validates
    delta[1000] = 0;
    validate(w, config, compress(w, config, [delta], errors));
  });

  it("aggregates the accepted payloads and reports the rejected ones", async () => {
    const payloads = [7, 8, 9].map((seed) => {
      const { deltas, errors } = inputs(seed);
      return compress(spec, config2, deltas, errors);
    });
    const broken = payloads[1]!.slice();
    broken[4] = 9; // an unknown wire version
    const theta = spec.map((t, i) => values(numel(t), 100 + i, 1));
    const before = theta.map((t) => t.slice());
    const report = await aggregateAsync(spec, config2, [payloads[0]!, broken, payloads[2]!], 0.5, theta);
    assert.equal(report.accepted, 2);
    assert.equal(report.rejected, 1);
    assert.deepEqual(report.payloadStatus[0], "ok");
    assert.equal(report.payloadStatus[1], "version");
    assert.equal(report.payloadStatus[2], "ok");
    assert.ok(report.updated > 0);
    assert.equal(report.skippedNonFinite, 0);
    const changed = theta.reduce((n, t, i) => n + t.filter((v, j) => v !== before[i]![j]).length, 0);
    assert.equal(changed, report.updated);

    // one payload, lr 1: theta moves by exactly its reconstruction
    const single = spec.map((t, i) => values(numel(t), 200 + i, 1));
    const start = single.map((t) => t.slice());
    const r = aggregate(spec, config2, [payloads[0]!], 1, single);
    assert.equal(r.accepted, 1);
    const recon = decode(spec, config2, payloads[0]!);
    for (let t = 0; t < spec.length; t++)
      for (let i = 0; i < start[t]!.length; i++)
        assert.equal(single[t]![i], Math.fround(start[t]![i]! - recon[t]![i]!));

    // nothing valid: nothing changes
    const none = aggregate(spec, config2, [broken], 1, single);
    assert.equal(none.accepted, 0);
    assert.equal(none.updated, 0);
  });
});
