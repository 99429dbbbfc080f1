/**
 * LLaMA-3 style model presets a TrainingRun names in `spec.model.preset`, and the function
 * that resolves a preset plus overrides into one concrete shape.
 *
 * The numbers live in one table, kernels/engine/presets.json, which the engine compiles in
 * (its `preset()` and `covenant-engine info`) and this module imports, so that a preset means
 * the same shape to the operator's sizing and validation, to the worker that trains it, and
 * to the engine's own tools and tests.
 */
import table from "../kernels/engine/presets.json" with { type: "json" };

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

/** One row of kernels/engine/presets.json: the shape, the engine's default sequence length. */
export interface PresetRow extends ModelShape {
  name: string;
  about: string;
  /** The engine's default sequence length (its CLI and benchmarks); a run uses data.sequenceLength. */
  maxSeqLen: number;
}

/** Checks the table's rows: every preset once, in MODEL_PRESETS' order, every field a positive number. */
export function parsePresetTable(rows: unknown): Record<ModelPreset, PresetRow> {
  if (!Array.isArray(rows)) throw new Error("presets.json: presets must be an array");
  const names = rows.map((r: { name?: unknown }) => r?.name);
  if (names.join() !== MODEL_PRESETS.join())
    throw new Error(`presets.json: presets are ${names.join(", ")}; expected ${MODEL_PRESETS.join(", ")}`);
  const known = new Set<string>(["name", "about", "maxSeqLen", ...SHAPE_FIELDS]);
  const out = {} as Record<ModelPreset, PresetRow>;
  for (const r of rows as Record<string, unknown>[]) {
    const name = r.name as ModelPreset;
    for (const k of Object.keys(r))
      if (!known.has(k)) throw new Error(`presets.json: ${name}: unknown field ${k}`);
    const row = { name, about: typeof r.about === "string" ? r.about : "" } as PresetRow;
    for (const f of [...SHAPE_FIELDS, "maxSeqLen"] as const) {
      const v = r[f];
      const integral = f !== "ropeTheta" && f !== "normEps";
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v) || (integral && !Number.isSafeInteger(v)))
        throw new Error(`presets.json: ${name}.${f} must be a positive ${integral ? "integer" : "number"}`);
      row[f] = v;
    }
    out[name] = Object.freeze(row);
  }
  return out;
}

/** Every preset's row of kernels/engine/presets.json. */
export const PRESET_TABLE: Readonly<Record<ModelPreset, Readonly<PresetRow>>> = parsePresetTable(
  table.presets,
);

export const PRESET_SHAPES: Readonly<Record<ModelPreset, Readonly<ModelShape>>> = Object.fromEntries(
  MODEL_PRESETS.map((p) => {
    const shape = {} as ModelShape;
    for (const f of SHAPE_FIELDS) shape[f] = PRESET_TABLE[p][f];
    return [p, Object.freeze(shape)];
  }),
) as Record<ModelPreset, Readonly<ModelShape>>;

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
