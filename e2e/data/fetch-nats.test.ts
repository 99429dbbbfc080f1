// The nats:// fetcher against a real nats-server configured as the operator configures a
// run: the organiser (operator user) writes a data bucket in the run's account, a peer reads
// it and cannot write it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstream, StorageType } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { BusClient } from "../../protocol/bus/client.ts";
import { NatsFetcher } from "../../worker/data/fetch-nats.ts";
import { FetchError } from "../../worker/data/source.ts";
import { startBus } from "../bus/fixture.ts";
import type { BusFixture } from "../bus/fixture.ts";
import { tempDir } from "../stack/paths.ts";

const reason = (p: Promise<unknown>, want: string) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FetchError, String(err));
    assert.equal(err.reason, want, err.message);
    return true;
  });

describe("nats:// fetcher", { timeout: 30_000 }, () => {
  const tmp = tempDir("data-nats");
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  let bus: BusFixture;
  let op: BusClient;
  let peer: BusClient;

  before(async () => {
    bus = await startBus({ run: "datanats", peers: [{ name: "m1", role: "miner" }] });
    op = await bus.connect("operator");
    peer = await bus.connect(bus.peers[0]!);
    await new Objm(jetstream(op.nc)).create("covdata", { storage: StorageType.File, replicas: 1 });
    await op.putObject("covdata", "tiny/shard-00000.tok", blob);
    await op.putObject("covdata", "tiny/manifest.json", new TextEncoder().encode("{}"));
  });
  after(async () => {
    await peer?.close();
    await op?.close();
    await bus?.stop();
    tmp.remove();
  });

  test("a peer reads the organiser's objects under the prefix", async () => {
    const f = new NatsFetcher("nats://covdata/tiny", peer, "covdata", "tiny");
    assert.equal(f.where("shard-00000.tok"), "nats://covdata/tiny/shard-00000.tok");
    assert.equal(new TextDecoder().decode(await f.read("manifest.json", 1024)), "{}");
    const file = join(tmp.path, "s0.partial");
    await f.fetch("shard-00000.tok", blob.length, file);
    assert.deepEqual(readFileSync(file), blob);
  });

  test("missing objects and buckets are 'missing'; a larger object is refused before transfer", async () => {
    const f = new NatsFetcher("nats://covdata/tiny", peer, "covdata", "tiny");
    assert.equal(await f.read("nothing.json", 1024), undefined);
    await reason(f.fetch("shard-00001.tok", 100, join(tmp.path, "s1")), "missing");
    await reason(f.fetch("shard-00000.tok", blob.length - 1, join(tmp.path, "s2")), "size_mismatch");
    const nobucket = new NatsFetcher("nats://nobucket", peer, "nobucket", "");
    await reason(nobucket.fetch("shard-00000.tok", 100, join(tmp.path, "s3")), "missing");
  });

  test("the data bucket is read-only for peers", async () => {
    await assert.rejects(
      peer.putObject("covdata", "tiny/shard-00000.tok", new Uint8Array(10), 3_000),
      /permission/i,
    );
    assert.ok(
      blob.equals((await op.getObject("covdata", "tiny/shard-00000.tok", { maxBytes: blob.length }))!),
    );
  });
});
