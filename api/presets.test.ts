import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  MODEL_PRESETS,
  PRESET_SHAPES,
  PRESET_TABLE,
  SHAPE_FIELDS,
  parameterCount,
  parsePresetTable,
  type ModelShape,
} from "./presets.ts";

const jsonFile = join(import.meta.dirname, "../kernels/engine/presets.json");
const rows = (JSON.parse(readFileSync(jsonFile, "utf8")) as { presets: Record<string, unknown>[] }).presets;

describe("model presets: one table", () => {
  it("PRESET_SHAPES is kernels/engine/presets.json, preset by preset and field by field", () => {
    assert.deepEqual(
      rows.map((r) => r.name),
      [...MODEL_PRESETS],
    );
    for (const r of rows) {
      const p = r.name as (typeof MODEL_PRESETS)[number];
      for (const f of SHAPE_FIELDS) assert.equal(PRESET_SHAPES[p][f], r[f], `${p}.${f}`);
      assert.equal(PRESET_TABLE[p].maxSeqLen, r.maxSeqLen, `${p}.maxSeqLen`);
    }
  });

  it("1b and 8b are LLaMA-3's shapes, 72b is Covenant-72B's", () => {
    const llama = (
      layers: number,
      hidden: number,
      heads: number,
      ffn: number,
      vocab: number,
    ): ModelShape => ({
      layers,
      hidden,
      heads,
      kvHeads: 8,
      ffn,
      vocab,
      ropeTheta: 500000,
      normEps: 1e-5,
    });
    assert.deepEqual(PRESET_SHAPES["llama3-1b"], llama(16, 2048, 32, 8192, 128256));
    assert.deepEqual(PRESET_SHAPES["llama3-8b"], llama(32, 4096, 32, 14336, 128256));
    assert.deepEqual(PRESET_SHAPES["llama3-72b"], llama(80, 8192, 64, 28672, 262144));
  });

  it("the small presets are the sizes their names and docs/scale.md give", () => {
    const millions = (p: (typeof MODEL_PRESETS)[number]) => parameterCount(PRESET_SHAPES[p]) / 1e6;
    assert.equal(parameterCount(PRESET_SHAPES["llama3-tiny"]), 164160);
    assert.ok(millions("llama3-20m") > 15 && millions("llama3-20m") < 30);
    assert.ok(millions("llama3-150m") > 100 && millions("llama3-150m") < 200);
  });

  it("a malformed table is refused with the preset and the field", () => {
    const good = () => rows.map((r) => ({ ...r }));
    assert.deepEqual(parsePresetTable(good()), PRESET_TABLE);
    assert.throws(() => parsePresetTable({}), /must be an array/);
    assert.throws(() => parsePresetTable(good().slice(1)), /expected llama3-tiny/);
    assert.throws(() => parsePresetTable(good().reverse()), /expected llama3-tiny/);
    const bad = (field: string, value: unknown, message: RegExp) => {
      const t = good();
      t[1]![field] = value;
      assert.throws(() => parsePresetTable(t), message);
    };
    bad("layers", 2.5, /llama3-20m\.layers must be a positive integer/);
    bad("hidden", "256", /llama3-20m\.hidden must be a positive integer/);
    bad("normEps", -1e-5, /llama3-20m\.normEps must be a positive number/);
    bad("maxSeqLen", 0, /llama3-20m\.maxSeqLen/);
    bad("dim", 256, /llama3-20m: unknown field dim/);
  });

  // The engine compiles the same file in (kernels/engine/presets.cmake); where its addon is
  // built, its presets must be this table exactly (a stale build or a generator fault shows here).
  const addon = join(import.meta.dirname, "../kernels/build/engine/covenant_engine.node");
  it(
    "the engine's compiled presets are this table",
    { skip: !existsSync(addon) && "engine addon not built" },
    async () => {
      const engine = await import("../kernels/binding/engine.ts");
      assert.deepEqual([...engine.PRESET_NAMES], [...MODEL_PRESETS]);
      const all = engine.presets();
      assert.deepEqual(Object.keys(all), [...MODEL_PRESETS]);
      for (const p of MODEL_PRESETS) {
        const e = all[p];
        const t = PRESET_TABLE[p];
        assert.deepEqual(
          {
            name: e.name,
            layers: e.nLayers,
            hidden: e.dim,
            heads: e.nHeads,
            kvHeads: e.nKvHeads,
            ffn: e.ffnDim,
            vocab: e.vocabSize,
            maxSeqLen: e.maxSeqLen,
            ropeTheta: e.ropeTheta,
            normEps: e.normEps,
            parameters: e.parameters,
          },
          {
            name: p,
            layers: t.layers,
            hidden: t.hidden,
            heads: t.heads,
            kvHeads: t.kvHeads,
            ffn: t.ffn,
            vocab: t.vocab,
            maxSeqLen: t.maxSeqLen,
            // the engine holds fp32, as a run's shape reaches it
            ropeTheta: Math.fround(t.ropeTheta),
            normEps: Math.fround(t.normEps),
            parameters: parameterCount(t),
          },
          p,
        );
      }
    },
  );
});
