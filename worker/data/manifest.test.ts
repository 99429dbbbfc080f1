import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeShard } from "../../kernels/binding/engine.ts";
import {
  makeManifest,
  manifestText,
  parseManifest,
  shardEntry,
  shardObjectName,
  validateManifest,
} from "./manifest.ts";
import type { Manifest } from "./manifest.ts";
import { joinShards, shardHeader, splitShard } from "./shard-bytes.ts";

const tokens = (n: number, vocab: number, salt = 0) =>
  Array.from({ length: n }, (_, i) => (i * 7 + salt) % vocab);

function corpus(shards = 3, perShard = 100): Manifest {
  return makeManifest(
    { kind: "byte", vocab: 257 },
    Array.from({ length: shards }, (_, i) =>
      shardEntry(i, encodeShard(tokens(perShard, 257, i), 257, "bytes")),
    ),
  );
}

/** A manifest as JSON with one change applied. */
function edited(
  change: (m: Record<string, unknown> & { shards: Record<string, unknown>[] }) => void,
): string {
  const m = JSON.parse(manifestText(corpus())) as Record<string, unknown> & {
    shards: Record<string, unknown>[];
  };
  change(m);
  return JSON.stringify(m);
}

const problems = (text: string, expect?: Parameters<typeof parseManifest>[1]) => {
  const r = parseManifest(text, expect);
  assert.equal(r.ok, false, "expected the manifest to be refused");
  return (r as { problems: string[] }).problems.join("\n");
};

describe("manifest", () => {
  test("what a writer makes, a reader takes back unchanged", () => {
    const m = corpus();
    const r = parseManifest(manifestText(m), { shards: 3, modelVocab: 512, sequenceLength: 32 });
    assert.ok(r.ok);
    assert.deepEqual(r.manifest, m);
    assert.equal(m.shards[1]!.object, "shard-00001.tok");
    assert.equal(m.shards[1]!.bytes, 64 + 100 * 2);
    assert.match(m.shards[1]!.sha256, /^[0-9a-f]{64}$/);
    // One line per shard: two corpora diff line by line.
    assert.equal(
      manifestText(m)
        .split("\n")
        .filter((l) => l.includes('"sha256"')).length,
      3,
    );
  });

  test("every field is checked, with the field named", () => {
    assert.match(problems("{"), /not JSON/);
    assert.match(problems("[]"), /not a JSON object/);
    assert.match(problems(edited((m) => (m.version = 2))), /version 2 is not supported/);
    assert.match(problems(edited((m) => (m.format = "x"))), /format must be/);
    assert.match(problems(edited((m) => (m.tokenizer = { kind: "sentencepiece" }))), /tokenizer.kind/);
    assert.match(problems(edited((m) => (m.tokenizer = { kind: "byte", vocab: 300 }))), /must be 257/);
    assert.match(problems(edited((m) => (m.shards = []))), /non-empty list/);
    assert.match(problems(edited((m) => (m.shards[1]!.index = 5))), /shards\[1\]\.index must be 1/);
    assert.match(
      problems(edited((m) => (m.shards[0]!.sha256 = "ABC"))),
      /shards\[0\]\.sha256 must be 64 lowercase hex/,
    );
    assert.match(
      problems(edited((m) => (m.shards[0]!.sha256 = String(m.shards[0]!.sha256).toUpperCase()))),
      /sha256 must be 64 lowercase hex/,
    );
    assert.match(
      problems(edited((m) => (m.shards[2]!.bytes = 999))),
      /shards\[2\]\.bytes 999 is not the size of 100 tokens/,
    );
    assert.match(problems(edited((m) => (m.shards[2]!.bytes = -1))), /shards\[2\]\.bytes must be an integer/);
    assert.match(problems(edited((m) => (m.shards[2]!.tokens = 0))), /tokens must be a positive integer/);
    assert.match(
      problems(edited((m) => (m.shards[0]!.vocab = 512))),
      /vocab 512 differs from the tokenizer's 257/,
    );
    assert.match(problems(edited((m) => (m.shards[1]!.object = m.shards[0]!.object))), /listed twice/);
  });

  test("object names stay relative: no absolute paths, no .., no URLs", () => {
    for (const bad of [
      "/etc/passwd",
      "../x.tok",
      "a/../../x",
      "a//b",
      "https://evil/x",
      "a b",
      "",
      ".hidden",
    ]) {
      assert.match(
        problems(edited((m) => (m.shards[0]!.object = bad))),
        /is not a relative object name/,
        bad,
      );
    }
    const ok = parseManifest(edited((m) => (m.shards[0]!.object = "v2/en/shard-0.tok")));
    assert.ok(ok.ok);
  });

  test("BPE tokenizers carry the vocabulary hash of the shards' headers", () => {
    const entry = shardEntry(0, encodeShard(tokens(100, 1000), 1000, "bpe"));
    const m = makeManifest({ kind: "bpe", vocab: 1000, vocabHash: "0123456789abcdef" }, [entry]);
    assert.ok(validateManifest(JSON.parse(manifestText(m))).ok);
    assert.throws(
      () => makeManifest({ kind: "bpe", vocab: 1000, vocabHash: "xyz" }, [entry]),
      /refusing to write an invalid manifest: tokenizer.vocabHash/,
    );
  });

  test("the run's expectations: shard count, model vocabulary, one sequence per shard", () => {
    const text = manifestText(corpus(3, 100));
    assert.match(problems(text, { shards: 4 }), /lists 3 shards, the run's spec.data.shards is 4/);
    assert.match(
      problems(text, { shards: 3, modelVocab: 256 }),
      /vocabulary \(257\) is larger than the model's \(256\)/,
    );
    assert.match(
      problems(text, { shards: 3, sequenceLength: 100 }),
      /shard 0 holds 100 tokens, fewer than one sequence of 100 \+ 1/,
    );
    assert.ok(parseManifest(text, { shards: 3, modelVocab: 257, sequenceLength: 99 }).ok);
  });

  test("shard names follow the engine's local naming", () => {
    assert.equal(shardObjectName(7), "shard-00007.tok");
    assert.equal(shardObjectName(123456), "shard-123456.tok");
  });
});

describe("shard bytes", () => {
  test("split cuts the tokens into nearly equal shards, join puts them back", () => {
    const whole = encodeShard(tokens(1001, 257), 257, "bytes");
    const parts = splitShard(whole, 4);
    assert.deepEqual(
      parts.map((p) => shardHeader(p).tokens),
      [250, 250, 250, 251],
    );
    for (const p of parts) assert.equal(shardHeader(p).tokenizer, 1);
    assert.deepEqual(joinShards(parts), whole);
    assert.throws(() => splitShard(whole, 2000), /1001 tokens cannot fill 2000 shards/);
  });

  test("a header that does not match the bytes is refused", () => {
    const whole = encodeShard(tokens(10, 257), 257, "bytes");
    assert.throws(() => shardHeader(whole.subarray(0, whole.length - 1)), /header says 10 tokens of 2 bytes/);
    assert.throws(
      () => shardHeader(Buffer.from("not a shard at all, really not, not at all, not at all, no")),
      /no CVTOKENS/,
    );
    const wide = encodeShard(tokens(10, 70000), 70000, "bpe");
    assert.equal(shardHeader(wide).tokenBytes, 4);
    assert.throws(() => joinShards([whole, wide]), /another tokenizer/);
  });
});
