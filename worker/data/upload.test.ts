import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { tempDir } from "../../e2e/stack/paths.ts";
import { readShard, shardPath } from "../shards.ts";
import { MANIFEST_NAME, parseManifest } from "./manifest.ts";
import { engineCli, parseTokenizer, textFiles } from "./tokenize.ts";
import { parseUploadArgs, upload } from "./upload.ts";
import type { UploadOptions } from "./upload.ts";

const ok = (argv: string[], env: Record<string, string> = {}): UploadOptions => {
  const r = parseUploadArgs(argv, env);
  assert.ok(r.ok === true, JSON.stringify(r));
  return r.options;
};
const error = (argv: string[]): string => {
  const r = parseUploadArgs(argv, {});
  assert.ok(r.ok === false);
  return r.error;
};

describe("upload", { timeout: 30_000 }, () => {
  const tmp = tempDir("data-upload");
  after(() => tmp.remove());

  test("command line", () => {
    const o = ok(
      [
        "--source",
        "nats://covdata/tiny",
        "--run",
        "tiny",
        "--text",
        "a",
        "--text=b",
        "--shards",
        "4",
        "--creds",
        "c",
      ],
      { COVENANT_NATS_URL: "nats://127.0.0.1:4222" },
    );
    assert.deepEqual(o.texts, ["a", "b"]);
    assert.equal(o.natsUrl, "nats://127.0.0.1:4222");
    assert.deepEqual(o.tokenizer, { kind: "byte" });
    assert.equal(o.replicas, 1);
    assert.deepEqual(parseTokenizer("bpe:/v/tok.model"), { kind: "bpe", file: "/v/tok.model" });
    assert.equal(ok(["--source", "file:///d", "--text", "a", "--shards", "2"]).source.kind, "file");
    assert.equal(parseUploadArgs(["--help"], {}).ok, "help");
    assert.match(error(["--text", "a", "--shards", "2"]), /--source is required/);
    assert.match(error(["--source", "https://x/y", "--text", "a", "--shards", "2"]), /serve it/);
    assert.match(error(["--source", "file:///d", "--shards", "2"]), /--text is required/);
    assert.match(
      error(["--source", "file:///d", "--text", "a", "--shards", "0"]),
      /--shards must be a positive/,
    );
    assert.match(
      error(["--source", "file:///d", "--text", "a", "--shards", "2", "--tokenizer", "bpe:"]),
      /byte or bpe:FILE/,
    );
    assert.match(error(["--source", "nats://b/p", "--text", "a", "--shards", "2"]), /--run is required/);
    assert.match(
      error(["--source", "nats://b/p", "--run", "r", "--text", "a", "--shards", "2"]),
      /--nats-url/,
    );
    assert.match(
      error(["--source", "nats://b/p", "--run", "r", "--nats-url", "n", "--text", "a", "--shards", "2"]),
      /--creds or --nkey-seed/,
    );
    assert.match(error(["--source", "file:///d", "--bogus", "1"]), /unknown argument/);
  });

  test("byte-level text into a directory: shards, manifest last, the engine's format", async () => {
    const texts = join(tmp.path, "texts");
    mkdirSync(join(texts, "sub"), { recursive: true });
    writeFileSync(join(texts, "b.txt"), "second document ".repeat(100));
    writeFileSync(join(texts, "a.txt"), "first document, café ".repeat(100));
    writeFileSync(join(texts, "sub", "c.txt"), "third ".repeat(100));
    writeFileSync(join(texts, ".hidden"), "skipped");
    assert.deepEqual(
      textFiles(texts).map((f) => f.slice(texts.length + 1)),
      ["a.txt", "b.txt", "sub/c.txt"],
    );
    const out = join(tmp.path, "out");
    const lines: string[] = [];
    const corpus = await upload(
      { ...ok(["--source", `file://${out}`, "--text", texts, "--shards", "3"]), minShardTokens: 100 },
      (l) => lines.push(l),
    );
    assert.match(lines[0]!, /^tokenized 3 documents: \d+ tokens \(byte, vocabulary 257\)$/);
    assert.match(
      lines[1]!,
      /^shard 0: \d+ tokens, \d+ bytes, sha256 [0-9a-f]{16}\.\. -> file:\/\/.*shard-00000.tok$/,
    );
    assert.match(lines.at(-2)!, /^manifest.json: \d+ bytes -> /);
    assert.deepEqual(readdirSync(out).sort(), [
      MANIFEST_NAME,
      "shard-00000.tok",
      "shard-00001.tok",
      "shard-00002.tok",
    ]);
    const m = parseManifest(readFileSync(join(out, MANIFEST_NAME), "utf8"), { shards: 3, modelVocab: 512 });
    assert.ok(m.ok);
    assert.deepEqual(m.manifest, corpus.manifest);
    // Every byte of the three documents (UTF-8) plus an end-of-document token after each.
    const all = [0, 1, 2].flatMap((i) => [...readShard(shardPath(out, i)).tokens]);
    const expected = ["a.txt", "b.txt", "sub/c.txt"].flatMap((f) => [...readFileSync(join(texts, f)), 256]);
    assert.deepEqual(all, expected);
    assert.equal(corpus.tokens, expected.length);
  });

  test("too little text for the shards is refused before anything is written", async () => {
    const text = join(tmp.path, "small.txt");
    writeFileSync(text, "tiny");
    const out = join(tmp.path, "small-out");
    await assert.rejects(
      upload(ok(["--source", `file://${out}`, "--text", text, "--shards", "2"]), () => undefined),
      /5 tokens cannot fill 2 shards|fewer than --min-shard-tokens/,
    );
    assert.ok(!existsSync(out));
  });

  test(
    "BPE through the engine's tokenizer",
    { skip: !existsSync(engineCli()) && "kernels not built" },
    async () => {
      // A tiktoken-format vocabulary: every byte, then a few merges.
      const ranks = [
        ...Array.from({ length: 256 }, (_, i) => Buffer.from([i])),
        ...["th", "he", "the", " t", "in"].map((s) => Buffer.from(s)),
      ];
      const vocab = join(tmp.path, "vocab.tiktoken");
      writeFileSync(vocab, ranks.map((b, i) => `${b.toString("base64")} ${i}\n`).join(""));
      const text = join(tmp.path, "bpe.txt");
      writeFileSync(text, "the theory then in the thin thing ".repeat(200));
      const out = join(tmp.path, "bpe-out");
      const corpus = await upload(
        {
          ...ok([
            "--source",
            `file://${out}`,
            "--text",
            text,
            "--shards",
            "2",
            "--tokenizer",
            `bpe:${vocab}`,
          ]),
          minShardTokens: 100,
        },
        () => undefined,
      );
      const tok = corpus.manifest.tokenizer;
      assert.equal(tok.kind, "bpe");
      assert.equal(tok.vocab, ranks.length + 1);
      assert.ok(
        tok.kind === "bpe" && /^[0-9a-f]{16}$/.test(tok.vocabHash) && tok.vocabHash !== "0".repeat(16),
      );
      assert.deepEqual(readFileSync(join(out, "tokenizer.model")), readFileSync(vocab));
      const shard = readShard(shardPath(out, 0));
      assert.equal(shard.vocab, ranks.length + 1);
      // Merges happened: fewer tokens than bytes.
      assert.ok(corpus.tokens < readFileSync(text).length, `${corpus.tokens} tokens`);
    },
  );
});
