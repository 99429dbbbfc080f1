/**
 * LLaMA-3 style model presets a TrainingRun names in `spec.model.preset`, and the function
 * that resolves a preset plus overrides into one concrete shape.
 */

export const MODEL_PRESETS = [
  "llama3-tiny",
  "llama3-20m",
  "llama3-150m",
  "llama3-1b",
  "llama3-8b",
  "llama3-72b",
] as const;
export type ModelPreset = (typeof MODEL_PRESETS)[number];

/** The shape of a decoder-only LLaMA-3 style transformer. */
export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  ropeTheta: number;
  normEps: number;
}

/** The fields a run may override on top of its preset. */
export const SHAPE_FIELDS = [
  "layers",
  "hidden",
  "heads",
  "kvHeads",
  "ffn",
  "vocab",
  "ropeTheta",
  "normEps",
] as const;

export const PRESET_SHAPES: Readonly<Record<ModelPreset, Readonly<ModelShape>>> = {
  // Small enough for the CPU backend in tests and the local demo.
  "llama3-tiny": {
    layers: 2,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    ffn: 192,
    vocab: 512,
    ropeTheta: 10000,
    normEps: 1e-5,
  },
  "llama3-20m": {
    layers: 8,
    hidden: 256,
    heads: 8,
    kvHeads: 4,
    ffn: 768,
    vocab: 32768,
    ropeTheta: 500000,
    normEps: 1e-5,
  },
  "llama3-150m": {
    layers: 12,
    hidden: 768,
    heads: 12,
    kvHeads: 4,
    ffn: 2048,
    vocab: 32768,
    ropeTheta: 500000,
    normEps: 1e-5,
  },
  "llama3-1b": {
    layers: 16,
    hidden: 2048,
    heads: 32,
    kvHeads: 8,
    ffn: 8192,
    vocab: 128256,
    ropeTheta: 500000,
    normEps: 1e-5,
  },
  "llama3-8b": {
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    ffn: 14336,
    vocab: 128256,
    ropeTheta: 500000,
    normEps: 1e-5,
  },
  // The shape of Covenant-72B.
  "llama3-72b": {
    layers: 80,
    hidden: 8192,
    heads: 64,
    kvHeads: 8,
    ffn: 28672,
    vocab: 262144,
    ropeTheta: 500000,
    normEps: 1e-5,
  },
};

/** Resolves a preset and its overrides; overrides win field by field. */
export function resolveShape(preset: ModelPreset, overrides: Partial<ModelShape> = {}): ModelShape {
  const shape: ModelShape = { ...PRESET_SHAPES[preset] };
  for (const f of SHAPE_FIELDS) {
    const v = overrides[f];
    if (v !== undefined) shape[f] = v;
  }
  return shape;
}

/** Problems with a resolved shape, each naming the field; empty when the shape is usable. */
export function shapeProblems(s: ModelShape): string[] {
  const out: string[] = [];
  if (s.hidden % s.heads !== 0)
    out.push(`spec.model.hidden (${s.hidden}) must be divisible by heads (${s.heads})`);
  else if ((s.hidden / s.heads) % 2 !== 0)
    out.push(`spec.model: head dimension hidden/heads must be even for RoPE`);
  if (s.heads % s.kvHeads !== 0)
    out.push(`spec.model.heads (${s.heads}) must be divisible by kvHeads (${s.kvHeads})`);
  return out;
}

/** Number of trainable parameters (untied embeddings, RMSNorm weights, no biases). */
export function parameterCount(s: ModelShape): number {
  const headDim = s.hidden / s.heads;
  const kvDim = headDim * s.kvHeads;
  const attention = 2 * s.hidden * s.hidden + 2 * s.hidden * kvDim;
  const mlp = 3 * s.hidden * s.ffn;
  const norms = 2 * s.hidden;
  return 2 * s.vocab * s.hidden + s.layers * (attention + mlp + norms) + s.hidden;
}
