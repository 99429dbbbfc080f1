// The few facts of a token shard's bytes the data path needs without reading every token:
// its header (docs/token-shards.md), and how to cut one long stream of tokens in the engine's
// format into N shards. Pure; the engine and worker/shards.ts remain the readers that check
// every token.

export const SHARD_HEADER_BYTES = 64;
const MAGIC = "CVTOKENS";

export interface ShardHeader {
  tokenBytes: 2 | 4;
  vocab: number;
  /** 1 byte-level, 2 BPE (0 from writers that do not say, e.g. worker/shards.ts). */
  tokenizer: number;
  tokens: number;
  /** FNV-1a 64 of the BPE vocabulary file as 16 hex digits, zeros for byte-level. */
  vocabHash: string;
}

/** The header of shard bytes; throws with the reason when they are not a consistent shard. */
export function shardHeader(bytes: Uint8Array): ShardHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < SHARD_HEADER_BYTES || b.toString("latin1", 0, 8) !== MAGIC)
    throw new Error("not a token shard (no CVTOKENS header)");
  if (b.readUInt32LE(8) !== 1) throw new Error(`token shard version ${b.readUInt32LE(8)} is not 1`);
  const width = b.readUInt32LE(12);
  if (width !== 2 && width !== 4) throw new Error(`token width ${width} is not 2 or 4`);
  const tokens = b.readBigUInt64LE(24);
  if (tokens > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`token count ${tokens} is too large`);
  const header: ShardHeader = {
    tokenBytes: width,
    vocab: b.readUInt32LE(16),
    tokenizer: b.readUInt32LE(20),
    tokens: Number(tokens),
    vocabHash: b.readBigUInt64LE(32).toString(16).padStart(16, "0"),
  };
  if (SHARD_HEADER_BYTES + header.tokens * width !== b.length)
    throw new Error(
      `header says ${header.tokens} tokens of ${width} bytes, the shard holds ${b.length} bytes`,
    );
  return header;
}

/** Bytes of a shard of `tokens` tokens from a vocabulary of `vocab` (the engine's width rule). */
export const shardBytes = (tokens: number, vocab: number): number =>
  SHARD_HEADER_BYTES + tokens * (vocab <= 65536 ? 2 : 4);

/**
 * Cuts one shard into `n` shards of nearly equal token counts (shard i holds tokens
 * [floor(i*T/n), floor((i+1)*T/n))), each with the source's header and its own count.
 * Documents may straddle two shards: sampling reads random windows, so a boundary costs
 * at most one sequence that spans two documents, as every document boundary does anyway.
 */
export function splitShard(whole: Uint8Array, n: number): Buffer[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`shard count ${n} must be a positive integer`);
  const h = shardHeader(whole);
  if (h.tokens < n) throw new Error(`${h.tokens} tokens cannot fill ${n} shards`);
  const src = Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * h.tokens) / n);
    const to = Math.floor(((i + 1) * h.tokens) / n);
    const part = Buffer.alloc(SHARD_HEADER_BYTES + (to - from) * h.tokenBytes);
    src.copy(part, 0, 0, SHARD_HEADER_BYTES);
    part.writeBigUInt64LE(BigInt(to - from), 24);
    src.copy(
      part,
      SHARD_HEADER_BYTES,
      SHARD_HEADER_BYTES + from * h.tokenBytes,
      SHARD_HEADER_BYTES + to * h.tokenBytes,
    );
    out.push(part);
  }
  return out;
}

/**
 * Joins shards that share a header (the engine's tokenizer writes several when the corpus
 * exceeds its --shard-tokens) into one, so it can be split into the run's count.
 */
export function joinShards(parts: readonly Uint8Array[]): Buffer {
  if (parts.length === 0) throw new Error("no shards to join");
  const headers = parts.map(shardHeader);
  const first = headers[0]!;
  for (const [i, h] of headers.entries())
    if (h.tokenBytes !== first.tokenBytes || h.vocab !== first.vocab || h.vocabHash !== first.vocabHash)
      throw new Error(`shard ${i} was made with another tokenizer than shard 0`);
  const tokens = headers.reduce((a, h) => a + h.tokens, 0);
  const out = Buffer.alloc(SHARD_HEADER_BYTES + tokens * first.tokenBytes);
  Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, SHARD_HEADER_BYTES).copy(out, 0);
  out.writeBigUInt64LE(BigInt(tokens), 24);
  let at = SHARD_HEADER_BYTES;
  for (const p of parts) {
    const body = Buffer.from(p.buffer, p.byteOffset + SHARD_HEADER_BYTES, p.byteLength - SHARD_HEADER_BYTES);
    body.copy(out, at);
    at += body.length;
  }
  return out;
}
