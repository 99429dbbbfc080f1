// What the worker needs from the native kernels, as two small interfaces. The
// worker's round logic is written against these; `native.ts` adapts the N-API
// bindings in kernels/binding/ to them.
import type { ResolvedRunConfig } from "../api/runconfig.ts";

/** One parameter tensor of the model (rank 1 or 2), in the model's order. */
export interface TensorSpec {
  name: string;
  dims: number[];
}

export const tensorSize = (t: TensorSpec): number => t.dims.reduce((a, b) => a * b, 1);

/** Parameters or pseudo-gradients: one fp32 array per tensor, in TensorSpec order. */
export type Tensors = Float32Array[];

export type PayloadCheck = { ok: true } | { ok: false; reason: string; detail: string };

export interface AggregateResult {
  /** Per payload: "ok" or the codec's reason for rejecting it. */
  statuses: string[];
  accepted: number;
}

/** The SparseLoCo codec of a run (spec and configuration fixed at creation). */
export interface Codec {
  /** Exact size of every payload of this run. */
  payloadSize(): number;
  /** Error feedback, top-k, quantization and encoding; updates `errors` in place. */
  compress(deltas: Tensors, errors: Tensors): Uint8Array;
  /** Full validation against the run's spec and configuration; never throws. */
  validate(payload: Uint8Array): PayloadCheck;
  /** The dense reconstruction (zeros where nothing was kept). */
  decode(payload: Uint8Array): Tensors;
  /** Median norm clip, mean over selectors, theta -= lr * aggregate, in place. */
  aggregate(payloads: Uint8Array[], lr: number, theta: Tensors): AggregateResult;
}

export interface TrainResult {
  /** Mean loss of the steps. */
  loss: number;
  tokens: number;
}

/** The model and its inner optimizer on one peer. */
export interface Engine {
  readonly tensors: TensorSpec[];
  /** Copies of every parameter. */
  getParameters(): Tensors;
  setParameters(theta: Tensors): void;
  /** The shards this peer trains on (the run's shard numbers). */
  setShards(shards: readonly number[]): void;
  /** `steps` inner optimizer steps on sequences of the attached shards (the peer's data seed). */
  train(steps: number): Promise<TrainResult>;
  /** Mean loss over the given sequences of the run's corpus. */
  evalLoss(sequences: readonly { shard: number; index: number }[]): number;
  /** Sequences in each shard. */
  readonly sequencesPerShard: number;
  /**
   * Takes the inner-optimizer settings of a run config (a new config epoch): weights, AdamW
   * moments, step and attached shards are kept. Does nothing when they did not change.
   */
  reconfigure?(cfg: ResolvedRunConfig): void;
  close(): void;
}
