// Token shards on local disk, in the engine's format (kernels/engine/src/shards.h):
// a 64-byte header ("CVTOKENS", version 1, token width, vocabulary, tokenizer, token
// count, vocabulary hash; little-endian) followed by the tokens. Shard n of a run is
// `<data dir>/shard-<n, 5 digits>.tok`. Sequence i of a shard is tokens
// [i*L, i*L + L] (L + 1 tokens: inputs and shifted targets).
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { rng } from "../protocol/sampling.ts";

const MAGIC = "CVTOKENS";
const HEADER = 64;

export const shardPath = (dir: string, shard: number): string =>
  join(dir, `shard-${String(shard).padStart(5, "0")}.tok`);

export interface ShardFile {
  vocab: number;
  tokens: Uint32Array;
}

export function writeShard(path: string, vocab: number, tokens: ArrayLike<number>): void {
  const width = vocab <= 65536 ? 2 : 4;
  const buf = Buffer.alloc(HEADER + tokens.length * width);
  buf.write(MAGIC, 0, "latin1");
  buf.writeUInt32LE(1, 8);
  buf.writeUInt32LE(width, 12);
  buf.writeUInt32LE(vocab, 16);
  buf.writeUInt32LE(0, 20);
  buf.writeBigUInt64LE(BigInt(tokens.length), 24);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= vocab)
      throw new Error(`token ${t} at ${i} is outside the vocabulary of ${vocab}`);
    if (width === 2) buf.writeUInt16LE(t, HEADER + 2 * i);
    else buf.writeUInt32LE(t, HEADER + 4 * i);
  }
  writeFileSync(`${path}.tmp`, buf);
  renameSync(`${path}.tmp`, path);
}

export function readShard(path: string): ShardFile {
  const buf = readFileSync(path);
  if (buf.length < HEADER || buf.toString("latin1", 0, 8) !== MAGIC)
    throw new Error(`${path} is not a token shard`);
  const width = buf.readUInt32LE(12);
  const vocab = buf.readUInt32LE(16);
  const count = Number(buf.readBigUInt64LE(24));
  if ((width !== 2 && width !== 4) || HEADER + count * width !== buf.length)
    throw new Error(`${path}: header does not match the file size`);
  const tokens = new Uint32Array(count);
  for (let i = 0; i < count; i++)
    tokens[i] = width === 2 ? buf.readUInt16LE(HEADER + 2 * i) : buf.readUInt32LE(HEADER + 4 * i);
  return { vocab, tokens };
}

export const sequencesIn = (tokens: number, seqLen: number): number =>
  Math.max(0, Math.floor((tokens - 1) / seqLen));

/**
 * A learnable synthetic corpus for tests and the local demo: a first-order Markov
 * chain in which every token has `branching` likely successors (fixed by `seed`), so
 * a small model's loss falls from ln(vocab) towards ln(branching).
 */
export function syntheticTokens(
  seed: string,
  count: number,
  vocab: number,
  branching = 4,
  shardSalt = 0,
): Uint32Array {
  const table = rng("covenant-synthetic-table", seed);
  const next = Array.from({ length: vocab }, () => Array.from({ length: branching }, () => table() % vocab));
  const draw = rng("covenant-synthetic-walk", seed, shardSalt);
  const out = new Uint32Array(count);
  let t = draw() % vocab;
  for (let i = 0; i < count; i++) {
    out[i] = t;
    const x = draw();
    // One time in 16 jump anywhere, otherwise follow the chain.
    t = x % 16 === 0 ? draw() % vocab : next[t]![(x >>> 4) % branching]!;
  }
  return out;
}
