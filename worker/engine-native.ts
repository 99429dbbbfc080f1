// The training engine (kernels/engine through its N-API addon) behind the worker's
// Engine interface. Every peer of a run builds the model with the same initialisation
// seed (from the run), so all start from identical weights; each peer's data seed comes
// from its hotkey. Goes through kernels/binding/engine.ts (the addon is built by
// `make kernels-build`; COVENANT_ENGINE_ADDON overrides its path).
// A new config epoch with other inner-optimizer settings rebuilds the native engine with them
// and loads the old one's state (weights, AdamW moments, step) into it: the addon fixes its
// optimizer settings at construction.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine as NativeEngine, type EngineOptions } from "../kernels/binding/engine.ts";
import { canonicalJson } from "../protocol/canonical.ts";
import type { ResolvedRunConfig } from "../api/runconfig.ts";
import { rng } from "../protocol/sampling.ts";
import type { Engine, TensorSpec, TrainResult } from "./kernels.ts";
import { readShard, sequencesIn, shardPath } from "./shards.ts";

/** 53-bit seed from 64 bits of SHA-256 of the parts. */
const seedOf = (...parts: (string | number)[]) => {
  const next = rng(...parts);
  return (next() * 2 ** 21 + (next() >>> 11)) % Number.MAX_SAFE_INTEGER;
};

/** The native engine's options for a run config and a peer. */
export function engineOptions(cfg: ResolvedRunConfig, hotkey: string): EngineOptions {
  const m = cfg.model;
  const seqLen = cfg.data.sequenceLength;
  const opt = cfg.innerOptimizer;
  return {
    model: {
      vocabSize: m.vocab,
      dim: m.hidden,
      nLayers: m.layers,
      nHeads: m.heads,
      nKvHeads: m.kvHeads,
      ffnDim: m.ffn,
      maxSeqLen: seqLen,
      ropeTheta: m.ropeTheta,
      normEps: m.normEps,
    },
    optim: {
      lr: opt.learningRate,
      minLrRatio: opt.schedule.kind === "constant" ? 1 : opt.schedule.minRatio,
      warmupSteps: opt.schedule.warmupSteps,
      totalSteps: opt.schedule.kind === "constant" ? 0 : cfg.rounds * cfg.innerSteps,
      beta1: opt.beta1,
      beta2: opt.beta2,
      eps: opt.epsilon,
      weightDecay: opt.weightDecay,
      gradClip: opt.gradClip,
    },
    train: {
      batch: opt.batchSize,
      seqLen,
      seed: seedOf("covenant-init", cfg.run.name),
      dataSeed: seedOf("covenant-data", cfg.run.name, hotkey),
    },
  };
}

export async function openEngine(cfg: ResolvedRunConfig, dataDir: string, hotkey = ""): Promise<Engine> {
  const seqLen = cfg.data.sequenceLength;
  let options = engineOptions(cfg, hotkey);
  let batchSize = cfg.innerOptimizer.batchSize;
  let native = new NativeEngine(options);
  let attached: number[] = [];
  const tensors: TensorSpec[] = native.parameters.map((p) => ({ name: p.name, dims: [...p.shape] }));
  const shards = new Map<number, Uint32Array>();
  const tokensOf = (shard: number) => {
    let t = shards.get(shard);
    if (!t) {
      t = readShard(shardPath(dataDir, shard)).tokens;
      shards.set(shard, t);
    }
    return t;
  };
  const sequencesPerShard = sequencesIn(tokensOf(0).length, seqLen);
  return {
    tensors,
    sequencesPerShard,
    getParameters: () => tensors.map((t) => native.getParameter(t.name)),
    setParameters(theta) {
      native.setParameters(new Map(tensors.map((t, i) => [t.name, theta[i]!])));
    },
    setShards(list) {
      attached = [...list];
      native.detachShards();
      for (const s of list) native.attachShard(s, shardPath(dataDir, s));
    },
    async train(steps): Promise<TrainResult> {
      const results = await native.train(steps);
      const loss = results.reduce((a, r) => a + r.loss, 0) / Math.max(1, results.length);
      return { loss, tokens: steps * batchSize * seqLen };
    },
    reconfigure(next) {
      const want = engineOptions(next, hotkey);
      if (canonicalJson(want) === canonicalJson(options)) return;
      const dir = mkdtempSync(join(tmpdir(), "covenant-engine-"));
      try {
        const file = join(dir, "state.safetensors");
        native.save(file);
        const fresh = new NativeEngine(want);
        fresh.load(file);
        for (const s of attached) fresh.attachShard(s, shardPath(dataDir, s));
        native = fresh;
        options = want;
        batchSize = next.innerOptimizer.batchSize;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    evalLoss(refs) {
      const out = new Int32Array(refs.length * (seqLen + 1));
      refs.forEach((r, k) => {
        const t = tokensOf(r.shard);
        out.set(t.subarray(r.index * seqLen, r.index * seqLen + seqLen + 1), k * (seqLen + 1));
      });
      return native.evalLoss(out, seqLen);
    },
    close() {
      shards.clear();
    },
  };
}
