// Deterministic data sampling: which sequences a peer trains on in a round.
// Anyone (the validator in particular) can recompute a peer's sample from
// (run, hotkey, round) and the peer's assigned shards.
import { createHash } from "node:crypto";

/** xoshiro128** seeded from SHA-256 of the inputs; 32-bit arithmetic, identical everywhere. */
export function rng(...parts: (string | number)[]): () => number {
  const d = createHash("sha256").update(parts.join("\u0000")).digest();
  const s: number[] = [d.readUInt32LE(0), d.readUInt32LE(4), d.readUInt32LE(8), d.readUInt32LE(12)];
  if (!s.some((x) => x !== 0)) s[0] = 1;
  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2] = (s[2]! ^ s[0]!) >>> 0;
    s[3] = (s[3]! ^ s[1]!) >>> 0;
    s[1] = (s[1]! ^ s[2]!) >>> 0;
    s[0] = (s[0]! ^ s[3]!) >>> 0;
    s[2] = (s[2]! ^ t) >>> 0;
    s[3] = rotl(s[3]!, 11);
    return result;
  };
}

/** A uniform integer in [0, n) without modulo bias. */
function below(next: () => number, n: number): number {
  if (n <= 0 || n > 2 ** 32) throw new Error(`range ${n} out of bounds`);
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const x = next();
    if (x < limit) return x % n;
  }
}

export interface SequenceRef {
  shard: number;
  /** Index of the sequence inside the shard. */
  index: number;
}

export interface SampleRequest {
  run: string;
  hotkey: string;
  round: number;
  /** The peer's assigned shards. */
  shards: readonly number[];
  /** Sequences available in each shard. */
  sequencesPerShard: number;
  count: number;
}

/** `count` sequences drawn uniformly (with replacement) from the assigned shards. */
export function sampleSequences(r: SampleRequest): SequenceRef[] {
  if (r.shards.length === 0 || r.sequencesPerShard <= 0) return [];
  const next = rng(r.run, r.hotkey, r.round);
  return Array.from({ length: r.count }, () => ({
    shard: r.shards[below(next, r.shards.length)]!,
    index: below(next, r.sequencesPerShard),
  }));
}
