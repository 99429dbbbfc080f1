// Text to one stream of tokens in the engine's shard format, with the project's own
// tokenizers (docs/token-shards.md): the byte-level one through kernels/binding/engine.ts
// (`byteTokens`, `encodeShard`), BPE through the engine's command line (`covenant-engine
// tokenize --bpe`), which holds the only BPE encoder. Each input file is one document.
// The whole stream is then cut into the run's shard count (shard-bytes.ts).
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { byteTokens, encodeShard } from "../../kernels/binding/engine.ts";
import type { TokenizerInfo } from "./manifest.ts";
import { sha256Hex } from "./manifest.ts";
import { joinShards, shardHeader } from "./shard-bytes.ts";

export type TokenizerSpec = { kind: "byte" } | { kind: "bpe"; file: string };

export function parseTokenizer(text: string): TokenizerSpec {
  if (text === "byte") return { kind: "byte" };
  if (text.startsWith("bpe:") && text.length > 4) return { kind: "bpe", file: text.slice(4) };
  throw new Error(
    `--tokenizer must be byte or bpe:FILE (a tiktoken-format vocabulary), got ${JSON.stringify(text)}`,
  );
}

/** The documents under a path: the file itself, or every regular file of a directory (sorted, recursive). */
export function textFiles(path: string): string[] {
  const st = statSync(path);
  if (st.isFile()) return [path];
  if (!st.isDirectory()) throw new Error(`${path} is neither a file nor a directory`);
  return readdirSync(path, { withFileTypes: true })
    .filter((d) => !d.name.startsWith("."))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((d) =>
      d.isDirectory() ? textFiles(join(path, d.name)) : d.isFile() ? [join(path, d.name)] : [],
    );
}

/** The engine's command line (built by `make kernels-build`; COVENANT_ENGINE_CLI overrides). */
export function engineCli(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return process.env.COVENANT_ENGINE_CLI ?? resolve(here, "../../kernels/build/engine/covenant-engine");
}

export interface Tokenized {
  /** All documents as one shard in the engine's format. */
  whole: Buffer;
  tokenizer: TokenizerInfo;
  /** The BPE vocabulary file's bytes, published beside the shards. */
  vocabulary?: Buffer;
}

function byteLevel(files: readonly string[]): Tokenized {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const docs = files.map((f) => {
    try {
      return utf8.decode(readFileSync(f));
    } catch {
      throw new Error(`${f} is not UTF-8 text`);
    }
  });
  return { whole: encodeShard(byteTokens(docs), 257, "bytes"), tokenizer: { kind: "byte", vocab: 257 } };
}

async function bpe(files: readonly string[], vocabFile: string): Promise<Tokenized> {
  const out = mkdtempSync(join(tmpdir(), "covenant-tokenize-"));
  try {
    // One engine shard for the whole corpus (the cut into the run's count happens here).
    await promisify(execFile)(
      engineCli(),
      ["tokenize", "--out", out, "--bpe", vocabFile, "--shard-tokens", String(2 ** 40), ...files],
      { maxBuffer: 64 * 1024 * 1024 },
    ).catch((err: Error & { stderr?: string }) => {
      throw new Error(`${engineCli()} tokenize failed: ${(err.stderr ?? "").trim() || err.message}`);
    });
    const parts = readdirSync(out)
      .filter((n) => /^shard_\d+\.bin$/.test(n))
      .sort()
      .map((n) => readFileSync(join(out, n)));
    const whole = joinShards(parts);
    const h = shardHeader(whole);
    const vocabulary = readFileSync(vocabFile);
    return {
      whole,
      vocabulary,
      tokenizer: {
        kind: "bpe",
        vocab: h.vocab,
        vocabHash: h.vocabHash,
        object: "tokenizer.model",
        sha256: sha256Hex(vocabulary),
      },
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function tokenize(files: readonly string[], spec: TokenizerSpec): Promise<Tokenized> {
  if (files.length === 0) throw new Error("no text to tokenize");
  return spec.kind === "byte" ? byteLevel(files) : bpe(files, spec.file);
}
