// TypeScript face of the training engine (kernels/engine): a LLaMA-3-style model with its
// AdamW optimizer and attached token shards, as the worker's inner loop needs it.
//
// Training runs off the JavaScript thread: `train(n, onProgress)` resolves after n optimizer
// steps and calls onProgress after each one. While a train() is pending every other call on
// the same engine throws (the engine is not shared with the training thread).
//
// The addon is built by `make kernels-build` into kernels/build/engine/covenant_engine.node;
// COVENANT_ENGINE_ADDON overrides its path.
import { addonLoader } from "./addon.ts";

/** Shape of the model. Field names match the engine's presets (see docs/engine.md). */
export interface ModelConfig {
  name: string;
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  ffnDim: number;
  maxSeqLen: number;
  ropeTheta: number;
  normEps: number;
}

export const PRESET_NAMES = [
  "llama3-tiny",
  "llama3-20m",
  "llama3-150m",
  "llama3-1b",
  "llama3-8b",
  "llama3-72b",
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** A preset by name, or a preset with overrides, or a full configuration. */
export type ModelSpec = PresetName | ({ preset?: PresetName } & Partial<ModelConfig>);

/** AdamW with decoupled weight decay, global-norm clipping, warmup then cosine decay. */
export interface OptimConfig {
  lr: number;
  minLrRatio: number;
  warmupSteps: number;
  /** Cosine decay ends here; 0 keeps the learning rate constant after warmup. */
  totalSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global L2 norm; 0 disables clipping. */
  gradClip: number;
}

export interface TrainConfig {
  /** Sequences per micro-batch. */
  batch: number;
  /** 0 uses the model's maxSeqLen. */
  seqLen: number;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  /** Initialisation seed. */
  seed: number | bigint;
  /** Sampling seed: sequence (step, row) comes from a pure function of it and the shard id. */
  dataSeed: number | bigint;
}

export interface StepResult {
  /** Optimizer steps taken after this one. */
  step: number;
  loss: number;
  lr: number;
  /** Before clipping. */
  gradNorm: number;
}

export interface ParameterInfo {
  /** Hugging Face LLaMA names, e.g. "model.layers.0.self_attn.q_proj.weight". */
  name: string;
  shape: number[];
}

export interface PresetInfo extends ModelConfig {
  parameters: number;
  /** fp32 weights, gradients and both AdamW moments. */
  trainingBytesFp32: number;
}

interface NativeEngine {
  attachShard(id: number, file: string): number;
  detachShards(): void;
  train(steps: number, onProgress?: (r: StepResult) => void): Promise<StepResult[]>;
  evalLoss(tokens: Int32Array, seqLen: number): number;
  parameterInfo(): ParameterInfo[];
  getParameter(name: string): Float32Array;
  setParameter(name: string, values: Float32Array): void;
  applyOuterStep(name: string, delta: Float32Array, lr: number): void;
  save(file: string): void;
  load(file: string): void;
  step(): number;
  config(): ModelConfig;
}

interface Native {
  Engine: new (
    model: ModelSpec,
    optim: Partial<OptimConfig>,
    train: Partial<TrainConfig>,
  ) => NativeEngine;
  presets(): Record<PresetName, PresetInfo>;
}

const load = addonLoader<Native>({ what: "engine", envVar: "COVENANT_ENGINE_ADDON", buildPath: "engine/covenant_engine.node" });

/** Every preset with its parameter count and fp32 training memory. */
export function presets(): Record<PresetName, PresetInfo> {
  return load().presets();
}

export interface EngineOptions {
  model: ModelSpec;
  optim?: Partial<OptimConfig>;
  train?: Partial<TrainConfig>;
}

/** One model, its optimizer state and its attached shards. */
export class Engine {
  readonly #native: NativeEngine;
  readonly #params: ParameterInfo[];

  constructor(options: EngineOptions) {
    const n = load();
    this.#native = new n.Engine(options.model, options.optim ?? {}, options.train ?? {});
    this.#params = this.#native.parameterInfo();
  }

  get config(): ModelConfig {
    return this.#native.config();
  }

  /** Optimizer steps taken so far (restored by load()). */
  get step(): number {
    return this.#native.step();
  }

  get parameters(): readonly ParameterInfo[] {
    return this.#params;
  }

  /** Reads and validates a token shard; `id` is the run's shard number (seeds sampling). */
  attachShard(id: number, file: string): void {
    this.#native.attachShard(id, file);
  }

  detachShards(): void {
    this.#native.detachShards();
  }

  /** Runs `steps` optimizer steps off the JavaScript thread. */
  train(steps: number, onProgress?: (r: StepResult) => void): Promise<StepResult[]> {
    return this.#native.train(steps, onProgress);
  }

  /** Mean loss over sequences of seqLen + 1 tokens each, laid end to end. */
  evalLoss(tokens: Int32Array, seqLen: number): number {
    return this.#native.evalLoss(tokens, seqLen);
  }

  /** A copy of one parameter tensor. */
  getParameter(name: string): Float32Array {
    return this.#native.getParameter(name);
  }

  /** Copies of every parameter tensor, in model order. */
  snapshot(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.#params) out.set(p.name, this.#native.getParameter(p.name));
    return out;
  }

  /** Overwrites the named tensors; every array is checked (length, finite) before any write. */
  setParameters(values: ReadonlyMap<string, Float32Array>): void {
    for (const [name, v] of values) this.#checkShape(name, v);
    for (const [name, v] of values) this.#native.setParameter(name, v);
  }

  /** Outer step: w -= lr * delta for each named tensor (deltas checked before any write). */
  applyOuterStep(deltas: ReadonlyMap<string, Float32Array>, lr: number): void {
    if (!Number.isFinite(lr)) throw new RangeError("outer lr must be a finite number");
    for (const [name, v] of deltas) this.#checkShape(name, v);
    for (const [name, v] of deltas) this.#native.applyOuterStep(name, v, lr);
  }

  /** safetensors checkpoint: weights, AdamW moments, step (written atomically). */
  save(file: string): void {
    this.#native.save(file);
  }

  load(file: string): void {
    this.#native.load(file);
  }

  #checkShape(name: string, v: Float32Array): void {
    const info = this.#params.find((p) => p.name === name);
    if (!info) throw new RangeError(`no parameter named ${name}`);
    const numel = info.shape.reduce((a, b) => a * b, 1);
    if (!(v instanceof Float32Array) || v.length !== numel) {
      throw new RangeError(`${name}: expected a Float32Array of ${numel} values`);
    }
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new RangeError(`${name}: non-finite value at index ${i}`);
    }
  }
}

/** Token shard bytes in the documented format (docs/token-shards.md). */
export function encodeShard(
  tokens: ArrayLike<number>,
  vocabSize: number,
  tokenizer: "bytes" | "bpe" = "bytes",
): Buffer {
  const width = vocabSize <= 65536 ? 2 : 4;
  const out = Buffer.alloc(64 + tokens.length * width);
  out.write("CVTOKENS", 0, "latin1");
  out.writeUInt32LE(1, 8);
  out.writeUInt32LE(width, 12);
  out.writeUInt32LE(vocabSize, 16);
  out.writeUInt32LE(tokenizer === "bytes" ? 1 : 2, 20);
  out.writeBigUInt64LE(BigInt(tokens.length), 24);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new RangeError(`token ${t} at ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
    if (width === 2) out.writeUInt16LE(t, 64 + 2 * i);
    else out.writeUInt32LE(t, 64 + 4 * i);
  }
  return out;
}

/** The built-in byte-level tokenizer: one token per byte, 256 ends a document. */
export function byteTokens(documents: readonly string[]): Int32Array {
  const parts = documents.map((d) => Buffer.from(d, "utf8"));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    out[at++] = 256;
  }
  return out;
}
