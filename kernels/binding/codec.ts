// TypeScript face of the SparseLoCo codec (kernels/codec): compress a pseudo-gradient,
// validate and decode a payload, aggregate the gathered payloads into the weights.
//
// Every function works on the caller's TypedArrays in place (no copies). The *Async variants
// run on the libuv thread pool and keep the arrays alive until they settle; the caller must
// not touch those arrays in the meantime. Failures throw (or reject with) a CodecError whose
// `code` names the rule that was broken (see CODEC_ERROR_CODES and docs/wire-format.md).
//
// The addon is built by `make kernels-build` into kernels/build/codec/covenant_codec.node;
// COVENANT_CODEC_ADDON overrides its path.
import { addonLoader } from "./addon.ts";

/** Status names of the codec, in the order of their numeric codes. */
export const CODEC_ERROR_CODES = [
  "ok",
  "argument",
  "truncated",
  "magic",
  "version",
  "format",
  "length",
  "table",
  "duplicate",
  "mismatch",
  "k",
  "quant",
  "index_range",
  "index_order",
  "padding",
  "encoding",
  "nonfinite",
  "capacity",
  "backend",
] as const;
export type CodecStatus = (typeof CODEC_ERROR_CODES)[number];
export type CodecErrorCode = Exclude<CodecStatus, "ok">;

/** One parameter tensor of the model, rank 1 or 2, row-major. */
export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly [number] | readonly [number, number];
}

export interface CodecConfig {
  /** 1: 12-bit chunk-local indices; 2: Elias-Fano indices. Both with 2-bit codes. */
  readonly format: 1 | 2;
  /** Values kept per chunk (64 in Covenant-72B); smaller chunks are sent whole. */
  readonly topk: number;
  /** Error-feedback decay (0.95 in Covenant-72B). */
  readonly beta: number;
  /** Largest accepted |quantization parameter| in received payloads (default 1e6). */
  readonly maxAbs?: number;
  /** CPU threads (default: all). */
  readonly threads?: number;
}

/** A pseudo-gradient tensor: fp32, or bf16 bit patterns in a Uint16Array. */
export type DeltaArray = Float32Array | Uint16Array;

export interface AggregateReport {
  /** Payloads that passed validation and were averaged in. */
  readonly accepted: number;
  /** Payloads rejected; payloadStatus[i] says why. */
  readonly rejected: number;
  /** Coordinates of the weights that changed. */
  readonly updated: number;
  /** Coordinates left unchanged because the update was not finite. */
  readonly skippedNonFinite: number;
  /** Per payload, in input order: "ok" or the rule it broke. */
  readonly payloadStatus: readonly CodecStatus[];
}

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  constructor(code: CodecErrorCode, message: string) {
    super(message);
    this.name = "CodecError";
    this.code = code;
  }
}

interface Native {
  payloadSize(spec: readonly TensorSpec[], config: CodecConfig): number;
  compress(
    spec: readonly TensorSpec[],
    config: CodecConfig,
    deltas: readonly DeltaArray[],
    errors: readonly Float32Array[],
    out: Uint8Array,
    async?: boolean,
  ): number | Promise<number>;
  validate(spec: readonly TensorSpec[], config: CodecConfig, payload: Uint8Array): void;
  decode(
    spec: readonly TensorSpec[],
    config: CodecConfig,
    payload: Uint8Array,
    out: readonly Float32Array[],
    async?: boolean,
  ): undefined | Promise<undefined>;
  aggregate(
    spec: readonly TensorSpec[],
    config: CodecConfig,
    payloads: readonly Uint8Array[],
    lr: number,
    theta: readonly Float32Array[],
    async?: boolean,
  ): AggregateReport | Promise<AggregateReport>;
  cudaAvailable(): boolean;
  wireVersion: number;
}

const load = addonLoader<Native>({ what: "codec", envVar: "COVENANT_CODEC_ADDON", buildPath: "codec/covenant_codec.node" });

function isCodecStatus(v: unknown): v is CodecErrorCode {
  return typeof v === "string" && v !== "ok" && (CODEC_ERROR_CODES as readonly string[]).includes(v);
}

/** Native failures become CodecError; argument mistakes stay TypeError / RangeError. */
function translate(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError)) {
    const code = (e as Error & { code?: unknown }).code;
    if (isCodecStatus(code)) return new CodecError(code, e.message);
  }
  return e;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw translate(e);
  }
}

async function callAsync<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translate(e);
  }
}

/** Number of elements of a tensor. */
export function numel(t: TensorSpec): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** Exact size in bytes of the payload of this model under this configuration. */
export function payloadSize(spec: readonly TensorSpec[], config: CodecConfig): number {
  return call(() => load().payloadSize(spec, config));
}

/**
 * Error feedback, top-k, quantization and encoding: returns the payload and leaves in each
 * error buffer beta * e + delta - reconstruction. `out`, when given, must be at least
 * payloadSize() bytes; the returned array is a view of it. A payload that validate() would
 * reject is not produced: the call throws CodecError ("quant": a quantization parameter beyond
 * maxAbs; "nonfinite": a non-finite beta * e + delta) and the error buffers are unchanged.
 */
export function compress(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  deltas: readonly DeltaArray[],
  errors: readonly Float32Array[],
  out?: Uint8Array,
): Uint8Array {
  const buffer = out ?? new Uint8Array(payloadSize(spec, config));
  const length = call(() => load().compress(spec, config, deltas, errors, buffer, false) as number);
  return buffer.subarray(0, length);
}

export async function compressAsync(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  deltas: readonly DeltaArray[],
  errors: readonly Float32Array[],
  out?: Uint8Array,
): Promise<Uint8Array> {
  const buffer = out ?? new Uint8Array(payloadSize(spec, config));
  const length = await callAsync(() => load().compress(spec, config, deltas, errors, buffer, true));
  return buffer.subarray(0, length);
}

/** Checks every field and every chunk of a payload against the run; throws CodecError. */
export function validate(spec: readonly TensorSpec[], config: CodecConfig, payload: Uint8Array): void {
  call(() => load().validate(spec, config, payload));
}

/** Dense reconstruction of one payload (zeros where nothing was kept). */
export function decode(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  payload: Uint8Array,
  out?: readonly Float32Array[],
): Float32Array[] {
  const buffers = out ? [...out] : spec.map((t) => new Float32Array(numel(t)));
  call(() => load().decode(spec, config, payload, buffers, false));
  return buffers;
}

export async function decodeAsync(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  payload: Uint8Array,
  out?: readonly Float32Array[],
): Promise<Float32Array[]> {
  const buffers = out ? [...out] : spec.map((t) => new Float32Array(numel(t)));
  await callAsync(() => load().decode(spec, config, payload, buffers, true));
  return buffers;
}

/**
 * Validates every payload, then applies the outer step to theta in place: per tensor, each
 * payload's norm is clipped to the median, values are averaged over the payloads that
 * selected each coordinate, and theta -= lr * mean (non-finite results are skipped).
 * Invalid payloads are left out and reported, not thrown.
 */
export function aggregate(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  payloads: readonly Uint8Array[],
  lr: number,
  theta: readonly Float32Array[],
): AggregateReport {
  return call(() => load().aggregate(spec, config, payloads, lr, theta, false) as AggregateReport);
}

export async function aggregateAsync(
  spec: readonly TensorSpec[],
  config: CodecConfig,
  payloads: readonly Uint8Array[],
  lr: number,
  theta: readonly Float32Array[],
): Promise<AggregateReport> {
  return callAsync(() => load().aggregate(spec, config, payloads, lr, theta, true));
}

/** True when the addon was built with the CUDA backend and a GPU is present. */
export function cudaAvailable(): boolean {
  return load().cudaAvailable();
}

/** Wire version the addon writes and accepts. */
export function wireVersion(): number {
  return load().wireVersion;
}
