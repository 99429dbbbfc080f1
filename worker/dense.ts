// The DiLoCo and dense baselines of SparseLoCo, in TypeScript:
//  - dense payloads (spec.compression.mode none, wire format 3): the fp32 pseudo-gradient
//    as it is, without error feedback; encoded, checked strictly on receipt, decoded and
//    aggregated by the same rule as the codec's (per tensor, each payload clipped to the lower
//    median of the payloads' L2 norms, then the mean, then theta -= lr * mean);
//  - the outer optimizers (spec.outer.optimizer): sgd, the codec's step, and nesterov
//    (DiLoCo): v = mu * v + g; theta -= lr * (g + mu * v).
// Every operation is defined in fp32 with a fixed order (tensor order, index order, payloads in
// the selection's order), so every peer computes the same bits (docs/wire-format.md, format 3).
import type { ResolvedRunConfig } from "../api/runconfig.ts";
import type { OuterOptimizer } from "../api/trainingrun.ts";
import { CodecError } from "../kernels/binding/codec.ts";
import type { CodecErrorCode } from "../kernels/binding/codec.ts";
import { WIRE_FORMAT_DENSE_FP32 } from "../protocol/envelope.ts";
import type { AggregateResult, Codec, PayloadCheck, TensorSpec, Tensors } from "./kernels.ts";
import { tensorSize } from "./kernels.ts";

/** "CVDN": the magic of a dense payload. */
const MAGIC = 0x4e445643;
export const DENSE_VERSION = 1;
const HEADER_BYTES = 24;
const MAX_TENSORS = 65535;
/**
 * Largest accepted |value| of a dense payload: the codec's bound on quantization parameters
 * (CodecConfig.maxAbs, 1e6 unless configured; the worker's codec does not configure it).
 */
export const DENSE_MAX_ABS = 1e6;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Whether a run sends dense payloads (spec.compression.mode none). */
export const isDense = (cfg: Pick<ResolvedRunConfig, "compression">): boolean =>
  cfg.compression.mode === "none";

/** The envelope format of a run's payloads: 3 for dense ones, else the codec's wire format. */
export const payloadFormat = (cfg: Pick<ResolvedRunConfig, "compression">): number =>
  isDense(cfg) ? WIRE_FORMAT_DENSE_FP32 : cfg.compression.wireFormat;

/** The outer optimizer of a round's config (sgd for configs written before there was a choice). */
export const outerOptimizer = (cfg: Pick<ResolvedRunConfig, "outer">): OuterOptimizer =>
  cfg.outer.optimizer ?? "sgd";

/** The nesterov momentum of a round's config. */
export const outerMomentum = (cfg: Pick<ResolvedRunConfig, "outer">): number => cfg.outer.momentum ?? 0.9;

/** Bytes of the header and table of a dense payload of these tensors. */
function tableBytes(tensors: readonly TensorSpec[]): number {
  return tensors.reduce((a, t) => a + 4 + 4 * t.dims.length, HEADER_BYTES);
}

/** The exact length of a dense payload of these tensors (docs/wire-format.md, format 3). */
export function densePayloadBytes(tensors: readonly TensorSpec[]): number {
  return tensors.reduce((a, t) => a + 4 * tensorSize(t), tableBytes(tensors));
}

/**
 * The payload of a dense pseudo-gradient. A value no receiver would accept is not sent: the
 * call throws CodecError "nonfinite" (NaN or infinite) or "quant" (beyond `maxAbs`), as the
 * codec's compress does.
 */
export function encodeDense(
  tensors: readonly TensorSpec[],
  values: Tensors,
  maxAbs: number = DENSE_MAX_ABS,
): Uint8Array {
  if (values.length !== tensors.length)
    throw new CodecError("argument", `${values.length} tensors, the model has ${tensors.length}`);
  if (tensors.length === 0 || tensors.length > MAX_TENSORS)
    throw new CodecError("argument", `${tensors.length} tensors (1..${MAX_TENSORS})`);
  for (const [i, t] of tensors.entries()) {
    const v = values[i]!;
    if (v.length !== tensorSize(t))
      throw new CodecError("argument", `${t.name}: ${v.length} values, its shape holds ${tensorSize(t)}`);
    for (let j = 0; j < v.length; j++) {
      const x = v[j]!;
      if (!Number.isFinite(x)) throw new CodecError("nonfinite", `${t.name}[${j}] is ${x}`);
      if (Math.abs(x) > maxAbs)
        throw new CodecError("quant", `${t.name}[${j}] = ${x} is beyond the bound ${maxAbs}`);
    }
  }
  const head = tableBytes(tensors);
  const total = densePayloadBytes(tensors);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, DENSE_VERSION, true);
  out[6] = WIRE_FORMAT_DENSE_FP32;
  out[7] = 0;
  view.setUint32(8, tensors.length, true);
  view.setUint32(12, head, true);
  view.setBigUint64(16, BigInt(total), true);
  let o = HEADER_BYTES;
  for (const t of tensors) {
    view.setUint16(o, t.dims.length, true);
    view.setUint16(o + 2, 0, true);
    o += 4;
    for (const d of t.dims) {
      view.setUint32(o, d, true);
      o += 4;
    }
  }
  for (const v of values) {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), o);
    else for (let j = 0; j < v.length; j++) view.setFloat32(o + 4 * j, v[j]!, true);
    o += v.byteLength;
  }
  return out;
}

/** Why a dense payload is refused: the codec's names for the same rules (docs/wire-format.md). */
export type DenseReason = Extract<
  CodecErrorCode,
  "truncated" | "magic" | "version" | "format" | "length" | "table" | "mismatch" | "nonfinite" | "quant"
>;

export type DenseParse = { ok: true; values: Tensors } | { ok: false; reason: DenseReason; detail: string };

const bad = (reason: DenseReason, detail: string): DenseParse => ({ ok: false, reason, detail });

/**
 * Checks every field and every value of a dense payload against the run's model, and answers
 * its values; never throws. Reasons as the codec names them (docs/wire-format.md).
 */
export function parseDense(
  tensors: readonly TensorSpec[],
  bytes: Uint8Array,
  maxAbs: number = DENSE_MAX_ABS,
): DenseParse {
  if (bytes.length < HEADER_BYTES)
    return bad("truncated", `${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) return bad("magic", "not a dense payload (magic is not CVDN)");
  const version = view.getUint16(4, true);
  if (version !== DENSE_VERSION) return bad("version", `version ${version}, expected ${DENSE_VERSION}`);
  if (bytes[6] !== WIRE_FORMAT_DENSE_FP32)
    return bad("format", `format ${bytes[6]}, expected ${WIRE_FORMAT_DENSE_FP32}`);
  if (bytes[7] !== 0) return bad("format", `flags ${bytes[7]}, expected 0`);
  const total = view.getBigUint64(16, true);
  if (total > BigInt(bytes.length))
    return bad("truncated", `${bytes.length} bytes, the header says ${total}`);
  if (total < BigInt(bytes.length)) return bad("length", `${bytes.length} bytes, the header says ${total}`);
  const count = view.getUint32(8, true);
  if (count === 0 || count > MAX_TENSORS) return bad("table", `tensor count ${count}`);
  if (count !== tensors.length) return bad("mismatch", `${count} tensors, the model has ${tensors.length}`);
  let o = HEADER_BYTES;
  for (const t of tensors) {
    if (o + 4 > bytes.length) return bad("truncated", "the payload ends inside the table");
    const rank = view.getUint16(o, true);
    if ((rank !== 1 && rank !== 2) || view.getUint16(o + 2, true) !== 0)
      return bad("table", `${t.name}: rank ${rank} or a nonzero reserved field`);
    if (o + 4 + 4 * rank > bytes.length) return bad("truncated", "the payload ends inside the table");
    const dims = Array.from({ length: rank }, (_, k) => view.getUint32(o + 4 + 4 * k, true));
    if (dims.join("x") !== t.dims.join("x"))
      return bad("mismatch", `${t.name}: shape [${dims.join(", ")}], the model's is [${t.dims.join(", ")}]`);
    o += 4 + 4 * rank;
  }
  const head = view.getUint32(12, true);
  if (head !== o) return bad("length", `header length ${head}, its table ends at ${o}`);
  const expected = densePayloadBytes(tensors);
  if (bytes.length !== expected)
    return bad("length", `${bytes.length} bytes, the model's payload is ${expected}`);
  const values: Tensors = [];
  for (const t of tensors) {
    const n = tensorSize(t);
    let v: Float32Array;
    if (LITTLE_ENDIAN) v = new Float32Array(bytes.slice(o, o + 4 * n).buffer);
    else {
      v = new Float32Array(n);
      for (let j = 0; j < n; j++) v[j] = view.getFloat32(o + 4 * j, true);
    }
    for (let j = 0; j < n; j++) {
      const x = v[j]!;
      if (!Number.isFinite(x)) return bad("nonfinite", `${t.name}[${j}] is ${x}`);
      if (Math.abs(x) > maxAbs) return bad("quant", `${t.name}[${j}] = ${x} is beyond the bound ${maxAbs}`);
    }
    values.push(v);
    o += 4 * n;
  }
  return { ok: true, values };
}

/**
 * Per tensor: each payload's values times min(1, lower median of the payloads' L2 norms / its
 * norm), then the mean over the payloads. As the codec: norms in binary64 (sequentially in
 * index order), the factor rounded once to fp32, an fp32 sum in payload order, one fp32
 * division by the count. Every payload holds every coordinate, so the count is theirs.
 */
export function clippedMean(payloads: readonly Tensors[]): Tensors {
  if (payloads.length === 0) throw new Error("clippedMean of no payloads");
  const first = payloads[0]!;
  return first.map((_, t) => {
    const norms = payloads.map((p) => {
      const v = p[t]!;
      let s = 0;
      for (let j = 0; j < v.length; j++) s += v[j]! * v[j]!;
      return Math.sqrt(s);
    });
    const sorted = [...norms].sort((a, b) => a - b);
    const median = sorted[(sorted.length - 1) >> 1]!;
    const sum = new Float32Array(first[t]!.length);
    for (const [k, p] of payloads.entries()) {
      const v = p[t]!;
      const f = norms[k]! > median ? Math.fround(median / norms[k]!) : 1;
      for (let j = 0; j < v.length; j++) {
        const x = f !== 1 ? Math.fround(v[j]! * f) : v[j]!;
        sum[j] = k === 0 ? x : sum[j]! + x;
      }
    }
    const count = payloads.length;
    for (let j = 0; j < sum.length; j++) sum[j] = sum[j]! / count;
    return sum;
  });
}

/** theta -= lr * g in fp32, in place; a coordinate whose new value is not finite is left as it is. */
export function sgdStep(theta: Tensors, g: Tensors, lr: number): void {
  const lrf = Math.fround(lr);
  for (const [t, th] of theta.entries()) {
    const gt = g[t]!;
    for (let j = 0; j < th.length; j++) {
      const next = Math.fround(th[j]! - Math.fround(lrf * gt[j]!));
      if (Number.isFinite(next)) th[j] = next;
    }
  }
}

/**
 * The nesterov outer step (DiLoCo, PyTorch's SGD with nesterov): v = mu * v + g;
 * theta -= lr * (g + mu * v); each operation one fp32 rounding, in place. A coordinate whose
 * new weight or momentum is not finite keeps both.
 */
export function nesterovStep(theta: Tensors, momentum: Tensors, g: Tensors, lr: number, mu: number): void {
  const lrf = Math.fround(lr);
  const muf = Math.fround(mu);
  for (const [t, th] of theta.entries()) {
    const gt = g[t]!;
    const m = momentum[t]!;
    for (let j = 0; j < th.length; j++) {
      const v = Math.fround(Math.fround(muf * m[j]!) + gt[j]!);
      const u = Math.fround(gt[j]! + Math.fround(muf * v));
      const next = Math.fround(th[j]! - Math.fround(lrf * u));
      if (Number.isFinite(v) && Number.isFinite(next)) {
        m[j] = v;
        th[j] = next;
      }
    }
  }
}

/** Zero tensors of the same sizes. */
export const zerosLike = (x: Tensors): Tensors => x.map((t) => new Float32Array(t.length));

/**
 * The aggregated pseudo-gradient g of a round without the step, through a codec's aggregate:
 * aggregating with lr = 1 into zeros leaves 0 - mean = -mean (exact in fp32) at every
 * coordinate a payload selected and 0 elsewhere; g is its negation. Identical on every peer,
 * and the sgd path (the codec's step on the weights) is untouched.
 */
export function aggregatedGradient(
  codec: Pick<Codec, "aggregate">,
  payloads: Uint8Array[],
  like: Tensors,
): { g: Tensors; result: AggregateResult } {
  const g = zerosLike(like);
  const result = codec.aggregate(payloads, 1, g);
  for (const t of g) for (let j = 0; j < t.length; j++) t[j] = -t[j]!;
  return { g, result };
}

/** Dense payloads checked and aggregated like the codec's: refused ones are left out and reported. */
export function aggregateDense(
  tensors: readonly TensorSpec[],
  payloads: readonly Uint8Array[],
  lr: number,
  theta: Tensors,
  maxAbs: number = DENSE_MAX_ABS,
): AggregateResult {
  const statuses: string[] = [];
  const accepted: Tensors[] = [];
  for (const p of payloads) {
    const v = parseDense(tensors, p, maxAbs);
    statuses.push(v.ok ? "ok" : v.reason);
    if (v.ok) accepted.push(v.values);
  }
  if (accepted.length > 0) sgdStep(theta, clippedMean(accepted), lr);
  return { statuses, accepted: accepted.length };
}

/** The Codec of a dense run: format 3 payloads, no error feedback (the error buffers are not touched). */
export function denseCodec(tensors: readonly TensorSpec[], maxAbs: number = DENSE_MAX_ABS): Codec {
  const specs = tensors.map((t) => ({ name: t.name, dims: [...t.dims] }));
  const size = densePayloadBytes(specs);
  return {
    payloadSize: () => size,
    compress: (deltas) => encodeDense(specs, deltas, maxAbs),
    validate(payload): PayloadCheck {
      const v = parseDense(specs, payload, maxAbs);
      return v.ok ? { ok: true } : { ok: false, reason: v.reason, detail: v.detail };
    },
    decode(payload) {
      const v = parseDense(specs, payload, maxAbs);
      if (!v.ok) throw new CodecError(v.reason, v.detail);
      return v.values;
    },
    aggregate: (payloads, lr, theta) => aggregateDense(specs, payloads, lr, theta, maxAbs),
  };
}
