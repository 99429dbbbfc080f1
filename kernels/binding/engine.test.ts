// The engine addon through its TypeScript face: a real model trained on real text.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { byteTokens, encodeShard, Engine, presets, type EngineOptions } from "./engine.ts";

const SMALL: EngineOptions = {
  model: {
    name: "binding-test",
    vocabSize: 257,
    dim: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnDim: 160,
    maxSeqLen: 32,
    ropeTheta: 10000,
  },
  optim: { lr: 3e-3, warmupSteps: 2, totalSteps: 20 },
  train: { batch: 4, seed: 11, dataSeed: 5 },
};

/** Licence texts that ship with the operating system: real English, found at run time. */
function corpus(): string[] {
  const dir = "/usr/share/common-licenses";
  const docs: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (statSync(file).isFile()) docs.push(readFileSync(file, "utf8"));
  }
  return docs;
}

let dir = "";
let shard = "";
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "engine-binding-"));
  shard = path.join(dir, "shard0.bin");
  writeFileSync(shard, encodeShard(byteTokens(corpus()), 257));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function heldOut(count: number, seqLen: number): Int32Array {
  const tokens = byteTokens(corpus().slice(0, 1));
  const out = new Int32Array(count * (seqLen + 1));
  for (let i = 0; i < count; i++) {
    out.set(tokens.subarray(i * 97, i * 97 + seqLen + 1), i * (seqLen + 1));
  }
  return out;
}

describe("engine binding", () => {
  test("presets report their size; llama3-72b builds only its config", () => {
    const all = presets();
    assert.equal(all["llama3-72b"].nLayers, 80);
    assert.equal(all["llama3-72b"].vocabSize, 262144);
    assert.ok(all["llama3-72b"].parameters > 72e9 && all["llama3-72b"].parameters < 73e9);
    assert.ok(all["llama3-tiny"].parameters < 10e6);
    assert.equal(all["llama3-72b"].trainingBytesFp32, 16 * all["llama3-72b"].parameters);
  });

  test("trains off the JavaScript thread with progress, and refuses calls meanwhile", async () => {
    const e = new Engine(SMALL);
    e.attachShard(0, shard);
    const seen: number[] = [];
    let busyError: unknown;
    const pending = e.train(6, (r) => {
      seen.push(r.step);
      assert.ok(Number.isFinite(r.loss) && r.gradNorm > 0);
    });
    try {
      e.getParameter("model.norm.weight");
    } catch (err) {
      busyError = err;
    }
    assert.match(String(busyError), /busy training/);
    const results = await pending;
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    assert.equal(e.step, 6);
    assert.ok(results[5]!.loss < results[0]!.loss, "loss falls over the first steps");
  });

  test("snapshot, outer step and set parameters act on named tensors", () => {
    const e = new Engine(SMALL);
    const before = e.snapshot();
    assert.equal(before.size, e.parameters.length);
    const name = "model.layers.1.self_attn.k_proj.weight";
    assert.deepEqual(e.parameters.find((p) => p.name === name)?.shape, [32, 64]);
    const w = before.get(name)!;
    const delta = new Float32Array(w.length).fill(0.25);
    e.applyOuterStep(new Map([[name, delta]]), 0.5);
    const after = e.getParameter(name);
    for (let i = 0; i < w.length; i++) assert.equal(after[i], Math.fround(w[i]! - Math.fround(0.5 * 0.25)));
    const tokens = heldOut(4, 32);
    const l0 = e.evalLoss(tokens, 32);
    assert.equal(e.evalLoss(tokens, 32), l0, "evaluation is deterministic");
    e.setParameters(new Map([["lm_head.weight", new Float32Array(257 * 64)]]));
    assert.ok(Math.abs(e.evalLoss(tokens, 32) - Math.log(257)) < 1e-5, "a zero head predicts uniformly");
  });

  test("save -> load -> continue matches not stopping", async () => {
    const a = new Engine(SMALL);
    a.attachShard(0, shard);
    await a.train(3);
    const file = path.join(dir, "a.safetensors");
    a.save(file);
    const b = new Engine({ ...SMALL, train: { ...SMALL.train, seed: 999 } });
    b.attachShard(0, shard);
    b.load(file);
    assert.equal(b.step, 3);
    const ra = await a.train(2);
    const rb = await b.train(2);
    assert.deepEqual(rb, ra);
    const sa = a.snapshot();
    for (const [name, v] of b.snapshot()) assert.deepEqual(v, sa.get(name), name);
    const header = readFileSync(file);
    const len = Number(header.readBigUInt64LE(0));
    const json = JSON.parse(header.subarray(8, 8 + len).toString("utf8")) as Record<string, unknown>;
    assert.deepEqual((json["lm_head.weight"] as { shape: number[] }).shape, [257, 64]);
    assert.equal((json["__metadata__"] as Record<string, string>)["optimizer.step"], "3");
  });

  test("bad input is refused with a reason and loses nothing", () => {
    assert.throws(() => new Engine({ model: "llama3-nope" as "llama3-tiny" }), /unknown model preset/);
    assert.throws(() => new Engine({ model: { ...(SMALL.model as object), nKvHeads: 3 } }), /n_kv_heads/);
    const e = new Engine(SMALL);
    const name = "model.norm.weight";
    const keep = e.getParameter(name);
    assert.throws(() => e.setParameters(new Map([[name, new Float32Array(3)]])), /expected a Float32Array of 64/);
    const bad = new Float32Array(64);
    bad[7] = NaN;
    assert.throws(() => e.applyOuterStep(new Map([[name, bad]]), 1), /non-finite value at index 7/);
    assert.throws(() => e.applyOuterStep(new Map([["nope", bad]]), 1), /no parameter named nope/);
    assert.deepEqual(e.getParameter(name), keep);
    const junk = path.join(dir, "junk.bin");
    writeFileSync(junk, Buffer.from("not a shard. ".repeat(10)));
    assert.throws(() => e.attachShard(1, junk), /bad magic/);
    const cut = path.join(dir, "cut.safetensors");
    writeFileSync(cut, Buffer.alloc(16));
    assert.throws(() => e.load(cut), /cut.safetensors/);
    assert.deepEqual(e.getParameter(name), keep);
    assert.throws(() => e.evalLoss(new Int32Array(10), 32), /whole sequences/);
    assert.throws(() => e.evalLoss(new Int32Array(33).fill(300), 32), /outside the vocabulary/);
    assert.throws(() => e.train(1), /no shards attached/);
  });
});
