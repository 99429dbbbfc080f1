// Data reaches every peer: the organiser uploads text with worker/data/upload.ts into an
// Object Store bucket of the run's account on a real nats-server (and into a directory
// served over HTTPS); a peer fetches its assigned shards through the shard cache over
// nats:// and over https://, checks them against the manifest, and trains on them with the
// engine. A corrupted shard object is refused, counted and fetched again once fixed; a
// missing one gives the clear error the worker reports as its readiness reason.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { BusClient } from "../../protocol/bus/client.ts";
import { assignShards } from "../../protocol/rendezvous.ts";
import { openEngine } from "../../worker/engine-native.ts";
import { workerMetrics } from "../../worker/metrics.ts";
import { readShard, shardPath } from "../../worker/shards.ts";
import { MANIFEST_NAME, parseManifest } from "../../worker/data/manifest.ts";
import { upload } from "../../worker/data/upload.ts";
import { openWorkerData } from "../../worker/data/worker-data.ts";
import type { WorkerData, WorkerDataOptions } from "../../worker/data/worker-data.ts";
import { startBus } from "../bus/fixture.ts";
import type { BusFixture } from "../bus/fixture.ts";
import { nodeTs, repoRoot, tempDir } from "../stack/paths.ts";
import { runConfig } from "../worker/harness.ts";
import { expectedShards, writeCorpus } from "./corpus.ts";
import { startFileServer } from "./https-server.ts";
import type { FileServer } from "./https-server.ts";

const RUN = "datae2e";
const SHARDS = 4;
const SEQ = 32;
const SOURCE = "nats://covdata/tiny";

describe("data reaches every peer", { timeout: 60_000 }, () => {
  const tmp = tempDir("data-e2e");
  const texts = join(tmp.path, "texts");
  let bus: BusFixture;
  let op: BusClient;
  let peer: BusClient;
  let web: FileServer;
  let uploadOutput = "";
  let expected: number[][];
  let mine: number[];
  const opened: WorkerData[] = [];
  let dirs = 0;
  const metrics = workerMetrics({ run: `default/${RUN}`, role: "miner" });

  /** A peer's data, as the worker opens it (fresh cache directory, short backoff). */
  const peerData = (o: Partial<WorkerDataOptions> = {}) => {
    const d = openWorkerData({
      source: SOURCE,
      dataDir: join(tmp.path, `cache-${dirs++}`),
      run: RUN,
      hotkey: bus.peers[0]!.hotkey,
      expect: { shards: SHARDS, modelVocab: 512, sequenceLength: SEQ },
      bus: peer,
      metrics,
      tuning: { attempts: 2, backoffBaseMs: 50, backoffMaxMs: 100 },
      ...o,
    });
    opened.push(d);
    return d;
  };
  const count = async (result: string, reason: string) =>
    (await metrics.shardFetches.get()).values.find(
      (v) => v.labels.result === result && v.labels.reason === reason,
    )?.value ?? 0;

  before(async () => {
    bus = await startBus({
      run: RUN,
      peers: [
        { name: "m1", role: "miner" },
        { name: "m2", role: "miner" },
        { name: "v", role: "validator" },
      ],
    });
    op = await bus.connect("operator");
    peer = await bus.connect(bus.peers[0]!);
    const docs = writeCorpus(texts, 4, 3000);
    expected = expectedShards(
      docs.map((f) => readFileSync(f)),
      SHARDS,
    );
    const members = bus.peers.filter((p) => p.role === "miner").map((p) => p.hotkey);
    mine = assignShards(RUN, SHARDS, members).get(bus.peers[0]!.hotkey)!;
    assert.ok(mine.length > 0 && mine.length < SHARDS, `m1 holds shards [${mine}]`);
    // The organiser's upload, as a person runs it.
    const creds = join(tmp.path, "operator.seed");
    writeFileSync(creds, bus.operatorSeed, { mode: 0o600 });
    const [cmd, ...pre] = nodeTs(join(repoRoot, "worker/data/upload.ts"));
    const args = [...pre, "--source", SOURCE, "--run", RUN, "--nats-url", bus.nats.url, "--creds", creds];
    const { stdout } = await promisify(execFile)(cmd!, [
      ...args,
      "--text",
      texts,
      "--shards",
      String(SHARDS),
    ]);
    uploadOutput = stdout;
    // The same text into a directory, served over HTTPS.
    await upload(
      {
        source: { kind: "file", url: "file://www", dir: join(tmp.path, "www", "corpus") },
        texts: [texts],
        shards: SHARDS,
        tokenizer: { kind: "byte" },
        minShardTokens: 1024,
        replicas: 1,
      },
      () => undefined,
    );
    web = await startFileServer(join(tmp.path, "www"), tmp.path);
  });

  after(async () => {
    for (const d of opened) await d.close();
    await web?.close();
    await peer?.close();
    await op?.close();
    await bus?.stop();
    tmp.remove();
  });

  test("upload publishes every shard, then the manifest, in the run's account", async () => {
    const lines = uploadOutput.trim().split("\n");
    assert.match(lines[0]!, /^tokenized 4 documents: \d+ tokens \(byte, vocabulary 257\)$/);
    for (let s = 0; s < SHARDS; s++)
      assert.match(
        lines[1 + s]!,
        new RegExp(
          `^shard ${s}: \\d+ tokens, \\d+ bytes, sha256 [0-9a-f]{16}\\.\\. -> ${SOURCE}/shard-0000${s}.tok$`,
        ),
      );
    assert.match(lines[1 + SHARDS]!, new RegExp(`^manifest.json: \\d+ bytes -> ${SOURCE}/manifest.json$`));
    const text = await op.getObject("covdata", `tiny/${MANIFEST_NAME}`, { maxBytes: 1 << 20 });
    const m = parseManifest(new TextDecoder().decode(text), {
      shards: SHARDS,
      modelVocab: 512,
      sequenceLength: SEQ,
    });
    assert.ok(m.ok);
    assert.deepEqual(
      m.manifest.shards.map((s) => s.tokens),
      expected.map((t) => t.length),
    );
  });

  test("a peer fetches its assigned shards over nats:// and trains on them", async () => {
    const data = peerData();
    // Fetch ahead: the next assignment is wanted before any round needs it.
    data.want("next", mine);
    // The engine reads the corpus's sequence count from shard 0 when it opens.
    assert.equal(await data.ready([...new Set([0, ...mine])], 20_000), undefined);
    for (const s of mine) assert.deepEqual([...readShard(shardPath(data.dir, s)).tokens], expected[s]);
    for (const s of [0, 1, 2, 3].filter((s) => s !== 0 && !mine.includes(s)))
      assert.ok(!existsSync(shardPath(data.dir, s)), `shard ${s} is not this peer's`);
    assert.ok((await count("ok", "verified")) >= mine.length);

    const cfg = runConfig(
      {
        run: RUN,
        miners: ["m1"],
        validator: "v",
        rounds: 1,
        innerSteps: 2,
        shards: SHARDS,
        tokensPerShard: 0,
        sequenceLength: SEQ,
        roundDeadlineSeconds: 10,
        checkpointEvery: 1,
        spec: { data: { source: SOURCE, shards: SHARDS, sequenceLength: SEQ } },
      },
      bus.nats.url,
      data.dir,
    );
    const engine = await openEngine(cfg, data.dir, bus.peers[0]!.hotkey);
    try {
      engine.setShards(mine);
      const r = await engine.train(2);
      assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
      assert.equal(r.tokens, 2 * cfg.innerOptimizer.batchSize * SEQ);
    } finally {
      engine.close();
    }
  });

  test("over https:// the same shards arrive, the server verified against the data CA", async () => {
    const data = peerData({ source: `${web.url}corpus/`, caFile: web.caFile });
    assert.equal(await data.ready(mine, 20_000), undefined);
    for (const s of mine) assert.deepEqual([...readShard(shardPath(data.dir, s)).tokens], expected[s]);
    // Without the CA the server is not trusted, and the worker says so.
    const untrusted = peerData({ source: `${web.url}corpus/` });
    assert.match((await untrusted.ready(mine, 20_000)) ?? "", /cannot read the data manifest .*certificate/);
    assert.match(untrusted.problem() ?? "", /^data: cannot read the data manifest/);
  });

  test("a corrupted shard object is refused, counted, never used, and fetched again once fixed", async () => {
    const s = mine[0]!;
    const name = `tiny/shard-${String(s).padStart(5, "0")}.tok`;
    const good = (await op.getObject("covdata", name, { maxBytes: 1 << 20 }))!;
    const bad = Buffer.from(good);
    bad.fill(0x41, 100, 200);
    await op.putObject("covdata", name, bad);
    const refusedBefore = await count("refused", "digest_mismatch");
    const data = peerData();
    const why = await data.ready([s], 20_000);
    assert.match(
      why ?? "",
      new RegExp(
        `^shard ${s} \\(${SOURCE}/shard-0000${s}.tok\\) digest mismatch: .*gave up after 2 attempts`,
      ),
    );
    assert.equal((await count("refused", "digest_mismatch")) - refusedBefore, 2);
    assert.ok(!existsSync(shardPath(data.dir, s)), "the engine's directory never holds it");
    assert.match(data.problem() ?? "", new RegExp(`^data: shard ${s} .* digest mismatch`));

    await op.putObject("covdata", name, good);
    assert.equal(await data.ready([s], 20_000), undefined);
    assert.deepEqual([...readShard(shardPath(data.dir, s)).tokens], expected[s]);
    assert.equal(data.problem(), undefined);
  });

  test("a missing shard gives a clear error", async () => {
    const s = mine.at(-1)!;
    const store = await new Objm(jetstream(op.nc)).open("covdata");
    await store.delete(`tiny/shard-${String(s).padStart(5, "0")}.tok`);
    const data = peerData();
    data.want("attached", [s]);
    const why = await data.ready([s], 20_000);
    assert.match(
      why ?? "",
      new RegExp(`^shard ${s} \\(${SOURCE}/shard-0000${s}.tok\\) missing: .* does not exist; gave up`),
    );
    assert.match(data.problem() ?? "", new RegExp(`^data: shard ${s} .* missing`));
    assert.ok((await count("failed", "missing")) >= 2);
  });
});
