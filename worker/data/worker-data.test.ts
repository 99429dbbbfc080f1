import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { encodeShard } from "../../kernels/binding/engine.ts";
import { tempDir } from "../../e2e/stack/paths.ts";
import { assignShards } from "../../protocol/rendezvous.ts";
import { parseArgs } from "../config.ts";
import { shardPath } from "../shards.ts";
import { HttpsFetcher } from "./fetch-https.ts";
import { NatsFetcher } from "./fetch-nats.ts";
import { FileFetcher } from "./fetch-file.ts";
import { MANIFEST_NAME, makeManifest, manifestText, shardEntry } from "./manifest.ts";
import { parseDataSource } from "./source.ts";
import { defaultCacheDir, fetcherFor, openWorkerData } from "./worker-data.ts";

const noBus = { getObject: () => Promise.reject(new Error("no bus in this test")) };

describe("worker data", { timeout: 30_000 }, () => {
  const tmp = tempDir("worker-data");
  after(() => tmp.remove());

  test("spec.data.source picks the fetcher", () => {
    assert.ok(fetcherFor(parseDataSource("nats://covdata/tiny/v1"), { bus: noBus }) instanceof NatsFetcher);
    assert.ok(fetcherFor(parseDataSource("https://data.example/c/"), { bus: noBus }) instanceof HttpsFetcher);
    assert.ok(fetcherFor(parseDataSource("file:///srv/data"), { bus: noBus }) instanceof FileFetcher);
    assert.deepEqual(parseDataSource("nats://covdata/tiny/v1/"), {
      kind: "nats",
      url: "nats://covdata/tiny/v1/",
      bucket: "covdata",
      prefix: "tiny/v1",
    });
    assert.equal(parseDataSource("nats://covdata").kind, "nats");
    assert.equal(
      (parseDataSource("https://data.example/c") as { base: URL }).base.href,
      "https://data.example/c/",
    );
    assert.throws(
      () => parseDataSource("s3://bucket/x"),
      /nats:\/\/, https:\/\/ or file:\/\/ \(got s3:\/\/\)/,
    );
    assert.throws(() => parseDataSource("nats://bad.bucket/x"), /Object Store bucket name/);
    assert.throws(() => parseDataSource("nats://b/../x"), /not a plain object path/);
    assert.ok(defaultCacheDir("tiny", "5Grw").endsWith("/covenant-data/tiny/5Grw"));
  });

  test("fetch ahead: a new membership makes this peer's next shards wanted at once", async () => {
    const dir = join(tmp.path, "src");
    mkdirSync(dir);
    const shards = 6;
    const bytes = Array.from({ length: shards }, (_, s) => encodeShard(new Array(100).fill(s), 257, "bytes"));
    bytes.forEach((b, i) => writeFileSync(shardPath(dir, i), b));
    writeFileSync(
      join(dir, MANIFEST_NAME),
      manifestText(
        makeManifest(
          { kind: "byte", vocab: 257 },
          bytes.map((b, i) => shardEntry(i, b)),
        ),
      ),
    );
    const data = openWorkerData({
      source: `file://${dir}`,
      run: "tiny",
      hotkey: "b",
      expect: { shards },
      bus: noBus,
    });
    try {
      let members = ["a", "b"];
      let epoch = 1;
      data.followAssignment({
        readMembership: async () => ({ epoch, members }),
        run: "tiny",
        shards,
        hotkey: "b",
        intervalMs: 20,
      });
      const mine = () => assignShards("tiny", shards, members).get("b")!;
      const until = async (cond: () => boolean) => {
        for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(cond());
      };
      await until(() => JSON.stringify(data.cache.wanted) === JSON.stringify(mine()));
      members = ["b"];
      epoch = 2;
      await until(() => data.cache.wanted.length === shards);
      await until(() => mine().every((s) => data.cache.isReady(s)));
      assert.equal(data.problem(), undefined);
      let told = "";
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      assert.equal(await data.awaitShards([0, 5], ac.signal, (w) => (told = w), 50), true);
      assert.equal(told, "");
    } finally {
      await data.close();
    }
  });
});

test("the worker's data flags", () => {
  const r = parseArgs(["--role", "miner", "--data-ca", "/ca.pem", "--data-cache-bytes", "1000"], {
    COVENANT_DATA_DIR: "/var/cache/covenant",
  });
  assert.ok(r.ok === true);
  assert.equal(r.options.dataCa, "/ca.pem");
  assert.equal(r.options.dataCacheBytes, 1000);
  assert.equal(r.options.dataDir, "/var/cache/covenant");
  const env = parseArgs(["--role", "miner"], { COVENANT_DATA_CA: "/c", COVENANT_DATA_CACHE_BYTES: "5" });
  assert.ok(env.ok === true && env.options.dataCa === "/c" && env.options.dataCacheBytes === 5);
  const bad = parseArgs(["--role", "miner", "--data-cache-bytes", "lots"], {});
  assert.ok(bad.ok === false && /--data-cache-bytes "lots" is not a byte count/.test(bad.error));
});
