// The training engine (kernels/engine through its N-API addon) behind the worker's
// Engine interface. Every peer of a run builds the model with the same initialisation
// seed (from the run), so all start from identical weights; each peer's data seed comes
// from its hotkey. Goes through kernels/binding/engine.ts (the addon is built by
// `make kernels-build`; COVENANT_ENGINE_ADDON overrides its path).
import { Engine as NativeEngine } from "../kernels/binding/engine.ts";
import type { ResolvedRunConfig } from "../operator/api/runconfig.ts";
import { rng } from "../operator/protocol/sampling.ts";
import type { Engine, TensorSpec, TrainResult } from "./kernels.ts";
import { readShard, sequencesIn, shardPath } from "./shards.ts";

/** 53-bit seed from 64 bits of SHA-256 of the parts. */
const seedOf = (...parts: (string | number)[]) => {
  const next = rng(...parts);
  return (next() * 2 ** 21 + (next() >>> 11)) % Number.MAX_SAFE_INTEGER;
};

export async function openEngine(cfg: ResolvedRunConfig, dataDir: string, hotkey = ""): Promise<Engine> {
  const m = cfg.model;
  const seqLen = cfg.data.sequenceLength;
  const opt = cfg.innerOptimizer;
  const native = new NativeEngine({
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
  });
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
      native.detachShards();
      for (const s of list) native.attachShard(s, shardPath(dataDir, s));
    },
    async train(steps): Promise<TrainResult> {
      const results = await native.train(steps);
      const loss = results.reduce((a, r) => a + r.loss, 0) / Math.max(1, results.length);
      return { loss, tokens: steps * opt.batchSize * seqLen };
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
