// A new config epoch with other inner-optimizer settings: the native engine is rebuilt with
// them and keeps its weights, AdamW moments, step and shards (needs the engine addon,
// `make kernels-build`).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { resolveRunConfig, type ResolvedRunConfig } from "../api/runconfig.ts";
import { makeRun } from "../operator/controllers/testing.ts";
import { openEngine } from "./engine-native.ts";
import type { Engine } from "./kernels.ts";
import { shardPath, syntheticTokens, writeShard } from "./shards.ts";

const dir = mkdtempSync(join(tmpdir(), "covenant-engine-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
for (let s = 0; s < 2; s++) writeShard(shardPath(dir, s), 512, syntheticTokens("run", 4000, 512, 4, s));

function config(set: Record<string, unknown> = {}): ResolvedRunConfig {
  const b = makeRun("run")
    .set("spec.data.source", `file://${dir}`)
    .set("spec.data.shards", 2)
    .set("spec.data.sequenceLength", 32)
    .set("spec.innerOptimizer.learningRate", 0.01)
    .set("spec.innerOptimizer.batchSize", 2)
    .set("spec.innerOptimizer.schedule.kind", "cosine")
    .set("spec.innerOptimizer.schedule.warmupSteps", 2)
    .set("spec.rounds", 10)
    .set("spec.innerSteps", 2);
  for (const [k, v] of Object.entries(set)) b.set(k, v);
  const r = resolveRunConfig(b.defaulted());
  assert.ok(r.ok);
  return r.config;
}

async function trained(steps: number[], between: (e: Engine, i: number) => void = () => {}) {
  const e = await openEngine(config(), dir, "hotkey");
  e.setShards([0, 1]);
  for (const [i, n] of steps.entries()) {
    between(e, i);
    await e.train(n);
  }
  return e.getParameters();
}

const same = (a: Float32Array[], b: Float32Array[]) =>
  a.length === b.length && a.every((t, i) => t.length === b[i]!.length && t.every((x, j) => x === b[i]![j]));

test("rebuilding the engine keeps weights, moments, step and shards: training goes on bit for bit", async () => {
  const straight = await trained([2, 2]);
  // Away to other settings and back between the two rounds: two rebuilds, same result.
  const rebuilt = await trained([2, 2], (e, i) => {
    if (i !== 1) return;
    e.reconfigure!(config({ "spec.innerOptimizer.learningRate": 0.001, "spec.innerOptimizer.batchSize": 4 }));
    e.reconfigure!(config());
  });
  assert.ok(same(straight, rebuilt), "the state survives the rebuilds");
});

test("new settings take effect from the next inner step", async () => {
  const straight = await trained([2, 2]);
  const changed = await trained([2, 2], (e, i) => {
    if (i === 1) e.reconfigure!(config({ "spec.innerOptimizer.learningRate": 0.001 }));
  });
  assert.ok(!same(straight, changed));
  // A change that leaves the engine's settings alone (validator-only fields) rebuilds nothing.
  const untouched = await trained([2, 2], (e, i) => {
    if (i === 1) e.reconfigure!(config({ "spec.validator.sequences": 2, "spec.roundDeadlineSeconds": 60 }));
  });
  assert.ok(same(straight, untouched));
});
