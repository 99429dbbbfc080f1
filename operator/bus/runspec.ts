// What a TrainingRun needs on its bus, derived from its spec: the BusSpec that planBus
// turns into a stream and buckets. Pure, so the sizes are tested without a server.
//
// Bucket sizes are limits JetStream reserves against the run's account (max_bytes of every
// copy), so they are computed from the model rather than guessed: a payload's length is
// fixed by the model's shapes and the compression settings (docs/wire-format.md: sparse, or
// dense fp32 with spec.compression.mode none), and a checkpoint is the fp32 weights (and the
// outer momentum with spec.outer.optimizer nesterov) plus a small header (worker/checkpoint.ts).
import type { ModelShape, TrainingRunSpec } from "../../api/index.ts";
import { parameterCount, resolveShape } from "../../api/presets.ts";
import type { BusSpec } from "./provision.ts";

/** Tile side of the codec: each side of a chunk is the largest divisor of its dimension up to this. */
export const WIRE_TILE_SIDE = 64;
/** Longest tensor name the wire format allows; the bound assumes every name is this long. */
export const WIRE_MAX_NAME_BYTES = 255;
const WIRE_HEADER_BYTES = 24;

/** One parameter tensor: rank 1 `[n]` or rank 2 `[rows, cols]`. */
export interface TensorShape {
  name: string;
  dims: readonly number[];
}

export type CompressionSettings = Pick<TrainingRunSpec["compression"], "topK" | "valueBits" | "wireFormat"> &
  Partial<Pick<TrainingRunSpec["compression"], "mode">>;

function largestDivisorAtMost(n: number, cap: number): number {
  for (let d = Math.min(n, cap); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** Bytes of one chunk record: k indices (12-bit fields or Elias-Fano over u) and k codes. */
function chunkRecordBytes(u: number, k: number, valueBits: number, format: number): number {
  const codes = Math.ceil((valueBits * k) / 8);
  if (format === 1) return Math.ceil((12 * k) / 8) + codes;
  const l = Math.floor(u / k) >= 2 ? Math.floor(Math.log2(Math.floor(u / k))) : 0;
  return Math.ceil((k * l + k + ((u - 1) >> l) + 1) / 8) + codes;
}

/**
 * The exact length of a dense payload (format 3) of these tensors: the 24-byte header, per
 * tensor 4 + 4 * rank bytes of table, and its fp32 values (worker/dense.ts).
 */
export function densePayloadBytes(tensors: readonly TensorShape[]): number {
  let total = WIRE_HEADER_BYTES;
  for (const t of tensors) total += 4 + 4 * t.dims.length + 4 * t.dims.reduce((a, b) => a * b, 1);
  return total;
}

/** The exact length of a payload of these tensors (docs/wire-format.md, "Layout"). */
export function payloadBytes(tensors: readonly TensorShape[], c: CompressionSettings): number {
  if (c.mode === "none") return densePayloadBytes(tensors);
  let total = WIRE_HEADER_BYTES;
  for (const t of tensors) {
    if (t.dims.length !== 1 && t.dims.length !== 2) throw new Error(`tensor ${t.name}: rank must be 1 or 2`);
    const [rows, cols] = t.dims.length === 1 ? [1, t.dims[0]!] : [t.dims[0]!, t.dims[1]!];
    total += 2 + Buffer.byteLength(t.name) + 2 + 4 * t.dims.length + 4 + 24;
    const cr = largestDivisorAtMost(rows, WIRE_TILE_SIDE);
    const cc = largestDivisorAtMost(cols, WIRE_TILE_SIDE);
    const u = cr * cc;
    const k = Math.min(c.topK, u);
    total += (rows / cr) * (cols / cc) * chunkRecordBytes(u, k, c.valueBits, c.wireFormat);
  }
  return total;
}

/**
 * The model's parameter tensors as parameterCount counts them (untied embeddings, RMSNorm
 * weights, no biases). Names are placeholders: chunking depends only on the shapes (and is
 * the same for a tensor and its transpose), so only their lengths matter to a size.
 */
export function llamaTensors(s: ModelShape, name: (i: number) => string = (i) => `t${i}`): TensorShape[] {
  const kvDim = (s.hidden / s.heads) * s.kvHeads;
  const dims: number[][] = [[s.vocab, s.hidden]];
  for (let l = 0; l < s.layers; l++) {
    dims.push([s.hidden], [s.hidden, s.hidden], [kvDim, s.hidden], [kvDim, s.hidden], [s.hidden, s.hidden]);
    dims.push([s.hidden], [s.ffn, s.hidden], [s.ffn, s.hidden], [s.hidden, s.ffn]);
  }
  dims.push([s.hidden], [s.vocab, s.hidden]);
  return dims.map((d, i) => ({ name: name(i), dims: d }));
}

/**
 * An upper bound of a payload of this model: exact but for names taken at their longest
 * (exact for dense payloads, which name no tensor).
 */
export function payloadBytesBound(s: ModelShape, c: CompressionSettings): number {
  return payloadBytes(
    llamaTensors(s, () => "n".repeat(WIRE_MAX_NAME_BYTES)),
    c,
  );
}

/**
 * An upper bound of a checkpoint: fp32 weights (and as much again of outer momentum with the
 * nesterov outer optimizer) plus a JSON header naming each tensor and its dimensions (at most
 * ~300 bytes each) and the run.
 */
export function checkpointBytesBound(s: ModelShape, momentum = false): number {
  return (momentum ? 8 : 4) * parameterCount(s) + 64 * 1024 + 320 * llamaTensors(s).length;
}

/**
 * Rounds of announcements, selections and payloads the bus keeps. A worker catching up loads
 * the validator's latest checkpoint and replays every round since from the bus: up to
 * `everyRounds` rounds, plus the round in flight and one for a checkpoint that lands late.
 */
export function retainRoundsOf(spec: Pick<TrainingRunSpec, "checkpoints">): number {
  return Math.max(4, spec.checkpoints.everyRounds + 2);
}

export interface RunHotkeys {
  miners: readonly string[];
  validators: readonly string[];
}

/**
 * The BusSpec of a run (spec defaulted). A round lasts at most its deadline, so retention
 * in time is `retainRounds` deadlines.
 */
export function runBusSpec(
  name: string,
  spec: Pick<TrainingRunSpec, "model" | "compression" | "checkpoints" | "roundDeadlineSeconds"> &
    Partial<Pick<TrainingRunSpec, "outer">>,
  hotkeys: RunHotkeys,
  replicas: number,
): BusSpec {
  const { preset, ...overrides } = spec.model;
  const shape = resolveShape(preset, overrides);
  return {
    run: name,
    roundMs: spec.roundDeadlineSeconds * 1000,
    retainRounds: retainRoundsOf(spec),
    maxPayloadBytes: payloadBytesBound(shape, spec.compression),
    retainCheckpoints: spec.checkpoints.keep,
    // The outer optimizer may change with a config epoch: the bound follows the spec at once.
    maxCheckpointBytes: checkpointBytesBound(shape, spec.outer?.optimizer === "nesterov"),
    miners: hotkeys.miners,
    validators: hotkeys.validators,
    replicas,
  };
}
