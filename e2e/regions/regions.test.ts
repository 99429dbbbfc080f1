// Two regions joined by a gateway: a payload written in region A crosses to region B once,
// into a mirror of A's Object Store bucket placed in B, however many peers in B read it.
// The bytes are the servers' own gateway counters (/gatewayz), not the client's.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { waitFor } from "../stack/wait.ts";
import { gatewayBytes, startSupercluster, type Supercluster } from "./regions.ts";

const PAYLOAD = 4 * 1024 * 1024;
const READERS = 3;

let sc: Supercluster;
const conns: NatsConnection[] = [];

before(async () => {
  sc = await startSupercluster({ A: 1, B: 1 });
});

after(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => {})));
  await sc?.stop();
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of stream as unknown as AsyncIterable<Uint8Array>) parts.push(p);
  return Buffer.concat(parts);
}

/** Gateway bytes sent by region A's servers (to B) so far. */
async function sentByA(): Promise<number> {
  let n = 0;
  for (const s of sc.servers.filter((s) => s.region === "A")) n += (await gatewayBytes(s)).out;
  return n;
}

test(
  "a payload crosses to the other region once, read there by several peers",
  { timeout: 60_000 },
  async (t) => {
    const writer = await connect({ servers: sc.urls.A!, name: "writer-A" });
    conns.push(writer);
    const bucket = await new Objm(jetstream(writer)).create("pay", {
      storage: StorageType.File,
      replicas: 1,
      placement: { cluster: "A", tags: [] },
    });
    // Region B's copy: a mirror of the bucket's stream placed in B, with the subjects renamed so
    // it reads as its own bucket ("pay-b") to the Object Store client.
    const jsm = await jetstreamManager(writer);
    await jsm.streams.add({
      name: "OBJ_pay-b",
      subjects: [],
      storage: StorageType.File,
      num_replicas: 1,
      placement: { cluster: "B", tags: [] },
      allow_rollup_hdrs: true,
      allow_direct: true,
      mirror_direct: true,
      mirror: { name: "OBJ_pay", subject_transforms: [{ src: "$O.pay.>", dest: "$O.pay-b.>" }] },
    });

    const data = randomBytes(PAYLOAD);
    const before = await sentByA();
    await bucket.putBlob({ name: "round-1" }, data);
    const readers = await Promise.all(
      Array.from({ length: READERS }, (_, i) => connect({ servers: sc.urls.B!, name: `reader-B-${i}` })),
    );
    conns.push(...readers);
    const mirror = await new Objm(jetstream(readers[0]!)).open("pay-b");
    await waitFor(
      "the mirror in B to hold the payload",
      async () => (await mirror.info("round-1"))?.size === PAYLOAD,
      {
        timeoutMs: 20_000,
        intervalMs: 100,
      },
    );
    for (const r of readers) {
      const got = await (await new Objm(jetstream(r)).open("pay-b")).get("round-1");
      assert.ok(got);
      assert.ok((await readAll(got.data)).equals(data));
    }
    const crossed = (await sentByA()) - before;
    // One copy plus protocol overhead (headers, acks, flow control), far below one per reader.
    assert.ok(crossed >= PAYLOAD, `crossed ${crossed}`);
    assert.ok(crossed < 1.3 * PAYLOAD, `crossed ${crossed} bytes for ${READERS} readers of ${PAYLOAD}`);

    // Reading A's bucket itself from B instead crosses the ocean once per reader.
    const before2 = await sentByA();
    for (const r of readers) {
      const got = await (await new Objm(jetstream(r)).open("pay")).get("round-1");
      assert.ok((await readAll(got!.data)).equals(data));
    }
    const direct = (await sentByA()) - before2;
    assert.ok(direct >= READERS * PAYLOAD, `direct reads crossed ${direct}`);
    t.diagnostic(
      `payload ${PAYLOAD} B; via the mirror: ${crossed} B crossed for ${READERS} readers; direct: ${direct} B`,
    );
  },
);
