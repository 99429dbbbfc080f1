// covenant-worker processes on a nats:// data source: a miner whose shard is missing says
// so on /readyz (its pod's readiness probe), goes on once the organiser restores it, and
// then a miner and the validator train and close rounds on shards fetched from the bus.
import assert from "node:assert/strict";
import { rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { Corpus } from "../../worker/data/upload.ts";
import { upload } from "../../worker/data/upload.ts";
import { get } from "../stack/http.ts";
import { waitFor } from "../stack/wait.ts";
import { startLocalRun } from "../worker/harness.ts";
import type { LocalRun } from "../worker/harness.ts";
import { writeCorpus } from "./corpus.ts";

const RUN = "datawork";
const SOURCE = "nats://covdata/tiny";

describe("covenant-worker on a nats:// data source", { timeout: 120_000 }, () => {
  let run: LocalRun;
  let corpus: Corpus;

  before(async () => {
    run = await startLocalRun({
      run: RUN,
      miners: ["m1"],
      validator: "v",
      rounds: 2,
      innerSteps: 2,
      shards: 4,
      tokensPerShard: 64,
      sequenceLength: 32,
      roundDeadlineSeconds: 20,
      checkpointEvery: 100,
      spec: { data: { source: SOURCE, shards: 4, sequenceLength: 32 } },
    });
    writeCorpus(join(run.dir, "texts"), 4, 3000);
    corpus = await upload(
      {
        source: { kind: "nats", url: SOURCE, bucket: "covdata", prefix: "tiny" },
        texts: [join(run.dir, "texts")],
        shards: 4,
        tokenizer: { kind: "byte" },
        minShardTokens: 1024,
        run: RUN,
        natsUrl: run.bus.nats.url,
        nkeySeed: run.bus.operatorSeed,
        replicas: 1,
      },
      () => undefined,
    );
  });

  after(async () => {
    await run?.stop();
    // The workers' default shard caches (no --data-dir given).
    rmSync(join(tmpdir(), "covenant-data", RUN), { recursive: true, force: true });
    try {
      rmdirSync(join(tmpdir(), "covenant-data"));
    } catch {
      // another run's cache is still there
    }
  });

  test("a missing shard is the readiness reason until restored; then the run trains on fetched shards", async () => {
    const op = await run.bus.connect("operator", "organiser");
    try {
      const store = await new Objm(jetstream(op.nc)).open("covdata");
      await store.delete("tiny/shard-00000.tok");
      const miner = await run.start("m1");
      const ready = await miner.proc.untilReady(
        waitFor(
          "the miner to report the missing shard",
          async () => {
            const r = await get(`http://127.0.0.1:${miner.metricsPort}/readyz`);
            return r.body.includes("missing") && r;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        ),
      );
      assert.equal(ready.status, 503);
      assert.match(
        ready.body,
        /^not ready: data: shard 0 \(nats:\/\/covdata\/tiny\/shard-00000.tok\) missing: /,
      );
      const shard0 = corpus.objects.find((o) => o.object === "shard-00000.tok")!;
      await op.putObject("covdata", "tiny/shard-00000.tok", shard0.bytes);

      const val = await run.start("v");
      const [m, v] = await Promise.all([miner.proc.exited, val.proc.exited]);
      assert.deepEqual(m, { code: 0, signal: null }, miner.proc.logTail());
      assert.deepEqual(v, { code: 0, signal: null }, val.proc.logTail());
      const log = miner.proc.logTail(200);
      assert.match(log, /shard 0 failed \(missing\)/);
      assert.match(log, /fetched shard 0 \(\d+ bytes\) from nats:\/\/covdata\/tiny\/shard-00000.tok/);
      assert.match(log, /round 1: trained 2 steps, loss \d/);
      assert.match(val.proc.logTail(200), /round 1: 1 submissions, selected 1/);
    } finally {
      await op.close();
    }
  });
});
