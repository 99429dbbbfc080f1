import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { encodeShard } from "../../kernels/binding/engine.ts";
import { tempDir } from "../../e2e/stack/paths.ts";
import { workerMetrics } from "../metrics.ts";
import { readShard, shardPath } from "../shards.ts";
import { ShardCache } from "./cache.ts";
import type { ShardCacheOptions } from "./cache.ts";
import { FileFetcher } from "./fetch-file.ts";
import { MANIFEST_NAME, makeManifest, manifestText, shardEntry } from "./manifest.ts";
import { FetchError } from "./source.ts";
import type { ShardFetcher } from "./source.ts";

const SHARDS = 4;
const TOKENS = 500;
const shardBytes = Array.from({ length: SHARDS }, (_, s) =>
  encodeShard(
    Array.from({ length: TOKENS }, (_, i) => (i * 31 + s * 7) % 257),
    257,
    "bytes",
  ),
);
const manifest = makeManifest(
  { kind: "byte", vocab: 257 },
  shardBytes.map((b, i) => shardEntry(i, b, `corpus/part-${i}.tok`)),
);

/** A source held in memory (the real fetchers have their own tests against real servers). */
class MemorySource implements ShardFetcher {
  readonly url = "mem://corpus";
  readonly objects = new Map<string, Uint8Array>();
  readonly fetched: string[] = [];

  constructor() {
    this.objects.set(MANIFEST_NAME, Buffer.from(manifestText(manifest)));
    shardBytes.forEach((b, i) => this.objects.set(`corpus/part-${i}.tok`, b));
  }

  where(object: string): string {
    return `mem://${object}`;
  }

  async read(object: string): Promise<Uint8Array | undefined> {
    return this.objects.get(object);
  }

  async fetch(object: string, _bytes: number, partial: string): Promise<void> {
    this.fetched.push(object);
    const b = this.objects.get(object);
    if (!b) throw new FetchError("missing", `${object} does not exist`);
    await writeFile(partial, b);
  }
}

function setup(dir: string, extra: Partial<ShardCacheOptions> = {}) {
  const source = new MemorySource();
  const metrics = workerMetrics({ run: "default/data", role: "miner" });
  const cache = new ShardCache({
    fetcher: source,
    dir,
    expect: { shards: SHARDS, modelVocab: 512, sequenceLength: 32 },
    attempts: 2,
    backoffBaseMs: 10,
    backoffMaxMs: 20,
    fetches: metrics.shardFetches,
    cacheBytes: metrics.shardCacheBytes,
    ...extra,
  });
  const count = async (result: string, reason: string) =>
    (await metrics.shardFetches.get()).values.find(
      (v) => v.labels.result === result && v.labels.reason === reason,
    )?.value ?? 0;
  return { source, cache, metrics, count };
}

describe("shard cache", { timeout: 30_000 }, () => {
  const tmp = tempDir("data-cache");
  let n = 0;
  const fresh = () => join(tmp.path, `c${n++}`);
  after(() => tmp.remove());

  test("fetches wanted shards, checks them, and puts them where the engine reads", async () => {
    const dir = fresh();
    const { cache, source, count, metrics } = setup(dir);
    try {
      cache.want("next", [2, 0]);
      assert.equal(await cache.ready([0, 2], 10_000), undefined);
      assert.deepEqual(source.fetched.sort(), ["corpus/part-0.tok", "corpus/part-2.tok"]);
      assert.equal(cache.dir, dir);
      assert.deepEqual(readShard(shardPath(dir, 2)).tokens, readShard(shardPath(dir, 2)).tokens);
      assert.equal(readShard(shardPath(dir, 2)).tokens.length, TOKENS);
      assert.deepEqual(
        readdirSync(dir).sort(),
        ["shard-00000.tok", "shard-00002.tok"],
        "no partial files left",
      );
      assert.equal(await count("ok", "verified"), 2);
      assert.equal((await metrics.shardCacheBytes.get()).values[0]?.value, 2 * shardBytes[0]!.length);
      assert.equal(cache.problem(), undefined);
    } finally {
      await cache.close();
    }
  });

  test("a corrupt shard is refused, counted, never put in place, and fetched again once fixed", async () => {
    const dir = fresh();
    const { cache, source, count } = setup(dir);
    try {
      const good = source.objects.get("corpus/part-1.tok")!;
      const bad = Buffer.from(good);
      bad.fill(0x41, 100, 120);
      source.objects.set("corpus/part-1.tok", bad);
      const why = await cache.ready([1], 10_000);
      assert.match(
        why ?? "",
        /^shard 1 \(mem:\/\/corpus\/part-1.tok\) digest mismatch: SHA-256 .*gave up after 2 attempts/,
      );
      assert.equal(await count("refused", "digest_mismatch"), 2);
      assert.ok(!existsSync(shardPath(dir, 1)), "a refused shard never reaches the engine's directory");
      assert.deepEqual(readdirSync(dir), [], "nor stays as a partial file");
      assert.match(cache.problem() ?? "", /shard 1 .* digest mismatch/);

      // A longer object is refused by its size.
      source.objects.set("corpus/part-1.tok", Buffer.concat([good, Buffer.from([1, 2, 3])]));
      assert.match((await cache.ready([1], 10_000)) ?? "", /size mismatch/);
      assert.equal(await count("refused", "size_mismatch"), 2);

      source.objects.set("corpus/part-1.tok", good);
      assert.equal(await cache.ready([1], 10_000), undefined, "asking again re-arms the attempts");
      assert.equal(cache.problem(), undefined);
      assert.equal(readShard(shardPath(dir, 1)).tokens.length, TOKENS);
    } finally {
      await cache.close();
    }
  });

  test("a missing shard is a clear error; a shard outside the run is refused", async () => {
    const { cache, source, count } = setup(fresh());
    try {
      source.objects.delete("corpus/part-3.tok");
      assert.match(
        (await cache.ready([3], 10_000)) ?? "",
        /^shard 3 \(mem:\/\/corpus\/part-3.tok\) missing: /,
      );
      assert.equal(await count("failed", "missing"), 2);
      assert.equal(await cache.ready([9], 1_000), "shard 9 is not one of the run's 4 shards");
    } finally {
      await cache.close();
    }
  });

  test("evicts unwanted shards beyond the bound, least recently used first", async () => {
    const dir = fresh();
    const size = shardBytes[0]!.length;
    const { cache } = setup(dir, { maxBytes: 2 * size });
    try {
      cache.want("attached", [0, 1]);
      assert.equal(await cache.ready([0, 1], 10_000), undefined);
      cache.want("attached", [2, 3]);
      assert.equal(await cache.ready([2, 3], 10_000), undefined);
      assert.deepEqual(readdirSync(dir).sort(), ["shard-00002.tok", "shard-00003.tok"]);
      // Wanted shards stay even beyond the bound.
      cache.want("next", [0]);
      assert.equal(await cache.ready([0, 2, 3], 10_000), undefined);
      assert.equal(readdirSync(dir).length, 3);
    } finally {
      await cache.close();
    }
  });

  test("after a restart, shards on disk are checked instead of fetched; a damaged one is fetched again", async () => {
    const dir = fresh();
    const first = setup(dir);
    assert.equal(await first.cache.ready([0, 1], 10_000), undefined);
    await first.cache.close();
    const damaged = Buffer.from(shardBytes[1]!);
    damaged.fill(0x42, 70, 72);
    writeFileSync(shardPath(dir, 1), damaged);
    writeFileSync(join(dir, ".shard-00002.0000000000000000.partial"), "of another corpus");
    const second = setup(dir);
    try {
      assert.equal(await second.cache.ready([0, 1], 10_000), undefined);
      assert.deepEqual(second.source.fetched, ["corpus/part-1.tok"]);
      assert.equal(await second.count("ok", "cached"), 1);
      assert.equal(await second.count("ok", "verified"), 1);
      assert.deepEqual(readdirSync(dir).sort(), ["shard-00000.tok", "shard-00001.tok"]);
    } finally {
      await second.cache.close();
    }
  });

  test("manifests that do not fit the run, or no manifest, stop the data with the reason", async () => {
    const { cache, source } = setup(fresh(), { expect: { shards: 5 } });
    try {
      assert.match(
        (await cache.ready([0], 1_000)) ?? "",
        /data manifest mem:\/\/manifest.json is not usable: the manifest lists 4 shards, the run's spec.data.shards is 5/,
      );
      source.objects.delete(MANIFEST_NAME);
      assert.match(
        (await cache.ready([0], 1_000)) ?? "",
        /the data source has no manifest \(mem:\/\/manifest.json\)/,
      );
      assert.match(cache.problem() ?? "", /no manifest/);
    } finally {
      await cache.close();
    }
  });
});

describe("shard cache on an unusable volume", { timeout: 10_000 }, () => {
  const tmp = tempDir("data-cache-bad");
  after(() => tmp.remove());

  test("a cache directory that cannot be made is the reason, not a crash", async () => {
    const file = join(tmp.path, "a-file");
    writeFileSync(file, "");
    const { cache } = setup(join(file, "cache"));
    try {
      cache.want("next", [0]);
      assert.match(
        (await cache.ready([0], 1_000)) ?? "",
        /^cannot use the shard cache .*a-file\/cache: ENOTDIR/,
      );
    } finally {
      await cache.close();
    }
  });
});

describe("file:// sources (checked in place)", { timeout: 30_000 }, () => {
  const tmp = tempDir("data-file");
  after(() => tmp.remove());
  const metrics = workerMetrics({ run: "default/data", role: "miner" });
  const open = (dir: string) =>
    new ShardCache({
      fetcher: new FileFetcher(`file://${dir}`, dir),
      dir: "/nonexistent/not-used",
      expect: { shards: SHARDS },
      attempts: 1,
      backoffBaseMs: 10,
      fetches: metrics.shardFetches,
    });

  test("with a manifest: checked where they are, a corrupt one refused", async () => {
    const dir = join(tmp.path, "with");
    mkdirSync(dir);
    const m = makeManifest(
      { kind: "byte", vocab: 257 },
      shardBytes.map((b, i) => shardEntry(i, b)),
    );
    writeFileSync(join(dir, MANIFEST_NAME), manifestText(m));
    shardBytes.forEach((b, i) =>
      writeFileSync(shardPath(dir, i), i === 3 ? Buffer.from(b).fill(7, 64, 80) : b),
    );
    const cache = open(dir);
    try {
      assert.equal(cache.dir, dir);
      assert.equal(await cache.ready([0, 1, 2], 10_000), undefined);
      assert.match(
        (await cache.ready([3], 10_000)) ?? "",
        /shard 3 \(file:\/\/.*shard-00003.tok\) digest mismatch/,
      );
      assert.deepEqual(readdirSync(dir).sort(), [
        MANIFEST_NAME,
        ...[0, 1, 2, 3].map((i) => `shard-0000${i}.tok`),
      ]);
    } finally {
      await cache.close();
    }
  });

  test("without a manifest: today's behaviour, only a missing file is an error", async () => {
    const dir = join(tmp.path, "without");
    mkdirSync(dir);
    writeFileSync(shardPath(dir, 0), shardBytes[0]!);
    const cache = open(dir);
    try {
      assert.equal(await cache.ready([0], 10_000), undefined);
      assert.match(
        (await cache.ready([1], 10_000)) ?? "",
        /shard 1 .* missing: .*shard-00001.tok does not exist/,
      );
    } finally {
      await cache.close();
    }
  });

  test("a manifest naming files the engine would not read is refused", async () => {
    const dir = join(tmp.path, "renamed");
    mkdirSync(dir);
    writeFileSync(join(dir, MANIFEST_NAME), manifestText(manifest));
    const cache = open(dir);
    try {
      assert.match(
        (await cache.ready([0], 1_000)) ?? "",
        /file:\/\/ sources name shard 0 shard-00000.tok, not corpus\/part-0.tok/,
      );
    } finally {
      await cache.close();
    }
  });
});
