// The data manifest: what the organiser publishes beside the shards (`manifest.json`), so
// that every peer can tell a good shard from a corrupt, truncated or substituted one before
// it trains on it. One entry per shard (index, object name relative to the source, size,
// SHA-256, token count, vocabulary) plus the tokenizer and a format version. Pure: parsing,
// validation with reasons, and building one from shard bytes.
import { createHash } from "node:crypto";
import { shardBytes, shardHeader } from "./shard-bytes.ts";

export const MANIFEST_NAME = "manifest.json";
export const MANIFEST_FORMAT = "covenant-token-shards";
export const MANIFEST_VERSION = 1;
/** The CRD's bound on spec.data.shards. */
export const MAX_SHARDS = 10_000_000;
/** Largest shard accepted (64 GiB); far above a sensible shard, below anything absurd. */
export const MAX_SHARD_BYTES = 64 * 1024 ** 3;
/** Largest manifest read (about 1.5 million shards' entries). */
export const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

export type TokenizerInfo =
  | { kind: "byte"; vocab: number }
  | {
      kind: "bpe";
      vocab: number;
      /** FNV-1a 64 of the vocabulary file, 16 hex digits, as in every shard's header. */
      vocabHash: string;
      /** The vocabulary file published beside the shards, and its SHA-256. */
      object?: string;
      sha256?: string;
    };

export interface ShardEntry {
  index: number;
  /** Object name (nats://) or path (https://, file://) relative to the source. */
  object: string;
  bytes: number;
  /** SHA-256 of the shard's bytes, 64 lowercase hex digits. */
  sha256: string;
  tokens: number;
  vocab: number;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  tokenizer: TokenizerInfo;
  shards: ShardEntry[];
}

/** What the run expects of its data (from the run configuration). */
export interface ManifestExpectations {
  /** spec.data.shards */
  shards: number;
  /** The model's vocabulary: the engine refuses a shard with a larger one. */
  modelVocab?: number;
  /** spec.data.sequenceLength: the engine needs seq_len + 1 tokens in every shard. */
  sequenceLength?: number;
}

export type ManifestResult = { ok: true; manifest: Manifest } | { ok: false; problems: string[] };

const HEX64 = /^[0-9a-f]{64}$/;
const HEX16 = /^[0-9a-f]{16}$/;
/** Relative names of plain segments: no absolute paths, no `..`, nothing a URL or a shell would reinterpret. */
const OBJECT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

export const isObjectName = (s: unknown): s is string =>
  typeof s === "string" && s.length <= 1024 && OBJECT_NAME.test(s) && !s.split("/").includes("..");

const isCount = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

function tokenizerProblems(t: unknown, p: string[]): void {
  const tok = t as Partial<Record<string, unknown>> | null;
  if (typeof tok !== "object" || tok === null) return void p.push("tokenizer is missing");
  if (tok.kind === "byte") {
    if (tok.vocab !== 257)
      p.push(`tokenizer.vocab of the byte-level tokenizer must be 257, got ${String(tok.vocab)}`);
  } else if (tok.kind === "bpe") {
    if (!isCount(tok.vocab, 257, 2 ** 32 - 1))
      p.push(`tokenizer.vocab must be an integer in [257, 2^32), got ${String(tok.vocab)}`);
    if (typeof tok.vocabHash !== "string" || !HEX16.test(tok.vocabHash))
      p.push("tokenizer.vocabHash must be 16 lowercase hex digits");
    if (tok.object !== undefined && !isObjectName(tok.object))
      p.push(`tokenizer.object ${JSON.stringify(tok.object)} is not a relative object name`);
    if (tok.sha256 !== undefined && (typeof tok.sha256 !== "string" || !HEX64.test(tok.sha256)))
      p.push("tokenizer.sha256 must be 64 lowercase hex digits");
  } else {
    p.push(`tokenizer.kind must be "byte" or "bpe", got ${JSON.stringify(tok.kind)}`);
  }
}

/** What is wrong with one shard entry, each problem naming the field. */
function entryProblems(e: unknown, i: number, vocab: unknown, p: string[]): void {
  const at = `shards[${i}]`;
  const s = e as Partial<Record<keyof ShardEntry, unknown>> | null;
  if (typeof s !== "object" || s === null) return void p.push(`${at} is not an object`);
  const before = p.length;
  if (s.index !== i)
    p.push(`${at}.index must be ${i} (shards listed in order, from 0), got ${String(s.index)}`);
  if (!isObjectName(s.object))
    p.push(`${at}.object ${JSON.stringify(s.object)} is not a relative object name`);
  if (typeof s.sha256 !== "string" || !HEX64.test(s.sha256))
    p.push(`${at}.sha256 must be 64 lowercase hex digits, got ${JSON.stringify(s.sha256)}`);
  if (!isCount(s.tokens, 1, Number.MAX_SAFE_INTEGER)) p.push(`${at}.tokens must be a positive integer`);
  if (s.vocab !== vocab)
    p.push(`${at}.vocab ${String(s.vocab)} differs from the tokenizer's ${String(vocab)}`);
  if (!isCount(s.bytes, 1, MAX_SHARD_BYTES))
    p.push(`${at}.bytes must be an integer in [1, ${MAX_SHARD_BYTES}], got ${String(s.bytes)}`);
  // Size, count and vocabulary must agree with the shard format, so that a shard which
  // matches its digest is also one the engine accepts.
  if (p.length === before && s.bytes !== shardBytes(s.tokens as number, s.vocab as number))
    p.push(
      `${at}.bytes ${String(s.bytes)} is not the size of ${String(s.tokens)} tokens (${shardBytes(s.tokens as number, s.vocab as number)})`,
    );
}

/** Checks a parsed JSON value; answers the manifest or every problem found. */
export function validateManifest(value: unknown, expect?: ManifestExpectations): ManifestResult {
  const p: string[] = [];
  const m = value as Partial<Record<keyof Manifest, unknown>> | null;
  if (typeof m !== "object" || m === null || Array.isArray(m))
    return { ok: false, problems: ["the manifest is not a JSON object"] };
  if (m.format !== MANIFEST_FORMAT)
    p.push(`format must be ${JSON.stringify(MANIFEST_FORMAT)}, got ${JSON.stringify(m.format)}`);
  if (m.version !== MANIFEST_VERSION)
    p.push(`version ${JSON.stringify(m.version)} is not supported (this worker reads ${MANIFEST_VERSION})`);
  tokenizerProblems(m.tokenizer, p);
  const vocab = (m.tokenizer as { vocab?: unknown } | undefined)?.vocab;
  if (!Array.isArray(m.shards) || m.shards.length === 0) {
    p.push("shards must be a non-empty list");
  } else if (m.shards.length > MAX_SHARDS) {
    p.push(`${m.shards.length} shards is more than ${MAX_SHARDS}`);
  } else {
    // Report at most a few broken entries: one bad writer tends to break all of them alike.
    const entryIssues: string[] = [];
    m.shards.forEach((e, i) => entryProblems(e, i, vocab, entryIssues));
    p.push(...entryIssues.slice(0, 5));
    if (entryIssues.length > 5) p.push(`... and ${entryIssues.length - 5} more problems in shards`);
    const names = new Set<unknown>();
    for (const e of m.shards as { object?: unknown }[]) {
      if (names.has(e?.object)) {
        p.push(`object ${JSON.stringify(e.object)} is listed twice`);
        break;
      }
      names.add(e?.object);
    }
  }
  if (p.length === 0 && expect) p.push(...expectationProblems(m as unknown as Manifest, expect));
  return p.length ? { ok: false, problems: p } : { ok: true, manifest: m as unknown as Manifest };
}

/** What makes a well-formed manifest unusable for this run. */
export function expectationProblems(m: Manifest, expect: ManifestExpectations): string[] {
  const p: string[] = [];
  if (m.shards.length !== expect.shards)
    p.push(`the manifest lists ${m.shards.length} shards, the run's spec.data.shards is ${expect.shards}`);
  if (expect.modelVocab !== undefined && m.tokenizer.vocab > expect.modelVocab)
    p.push(
      `the tokenizer's vocabulary (${m.tokenizer.vocab}) is larger than the model's (${expect.modelVocab})`,
    );
  if (expect.sequenceLength !== undefined) {
    const short = m.shards.find((s) => s.tokens < expect.sequenceLength! + 1);
    if (short)
      p.push(
        `shard ${short.index} holds ${short.tokens} tokens, fewer than one sequence of ${expect.sequenceLength} + 1`,
      );
  }
  return p;
}

/** Parses and checks the manifest's text. */
export function parseManifest(text: string, expect?: ManifestExpectations): ManifestResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`not JSON: ${(err as Error).message}`] };
  }
  return validateManifest(value, expect);
}

/** The run's conventional object name of shard `index` (the engine's local name too). */
export const shardObjectName = (index: number): string => `shard-${String(index).padStart(5, "0")}.tok`;

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The manifest entry of shard bytes (their header gives the tokens and vocabulary). */
export function shardEntry(index: number, bytes: Uint8Array, object = shardObjectName(index)): ShardEntry {
  const h = shardHeader(bytes);
  return { index, object, bytes: bytes.length, sha256: sha256Hex(bytes), tokens: h.tokens, vocab: h.vocab };
}

/** The manifest of a corpus; checks it as a reader would, so a writer never publishes a bad one. */
export function makeManifest(tokenizer: TokenizerInfo, shards: ShardEntry[]): Manifest {
  const m: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, tokenizer, shards };
  const r = validateManifest(JSON.parse(JSON.stringify(m)));
  if (!r.ok) throw new Error(`refusing to write an invalid manifest: ${r.problems.join("; ")}`);
  return m;
}

/** The manifest's text as published: one shard per line, so a diff of two corpora reads well. */
export function manifestText(m: Manifest): string {
  const head = JSON.stringify({ format: m.format, version: m.version, tokenizer: m.tokenizer });
  const lines = m.shards.map((s) => `    ${JSON.stringify(s)}`);
  return `${head.slice(0, -1)},\n  "shards": [\n${lines.join(",\n")}\n  ]\n}\n`;
}
