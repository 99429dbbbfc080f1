// The gradient bus runs on a real nats-server: JetStream streams, the Object Store
// with multi-chunk objects, and durability across a server restart.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startNats, type NatsServer } from "./nats.ts";
import { waitFor } from "./wait.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("local nats-server with JetStream", { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test("publishes to a stream and consumes in order", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ROUNDS", subjects: ["stack.round.>"] });
    const js = jetstream(nc);
    for (let i = 0; i < 5; i++) {
      const ack = await js.publish(`stack.round.${i}.submit`, new TextEncoder().encode(`payload ${i}`));
      assert.equal(ack.stream, "ROUNDS");
      assert.equal(ack.seq, i + 1);
    }
    const consumer = await js.consumers.get("ROUNDS");
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const msg = await consumer.next({ expires: 5_000 });
      assert.ok(msg, `message ${i} arrived`);
      seen.push(`${msg.subject}=${msg.string()}`);
    }
    assert.deepEqual(
      seen,
      [0, 1, 2, 3, 4].map((i) => `stack.round.${i}.submit=payload ${i}`),
    );
  });

  test("stores and reads back a 64 MiB object, intact", async () => {
    const objm = new Objm(nc);
    const bucket = await objm.create("payloads", { storage: "file" as never });
    const data = randomBytes(64 * 1024 * 1024);
    const info = await bucket.putBlob({ name: "round-1/peer-a" }, data);
    assert.equal(info.size, data.length);
    assert.ok(info.chunks > 1, "stored in several chunks");
    const back = await bucket.getBlob("round-1/peer-a");
    assert.ok(back);
    assert.equal(back.length, data.length);
    assert.equal(sha256(back), sha256(data));
  });

  test("keeps stored messages and objects across a server restart", async () => {
    await nats.restart();
    // The client reconnects on its own; wait for it rather than for a fixed time.
    const jsm = await waitFor(
      "client reconnected to JetStream",
      () => jetstreamManager(nc, { timeout: 2_000 }),
      {
        timeoutMs: 30_000,
      },
    );
    const js = jetstream(nc);
    const stream = await jsm.streams.info("ROUNDS");
    assert.equal(stream.state.messages, 5);
    const ack = await js.publish("stack.round.5.submit", new TextEncoder().encode("after restart"));
    assert.equal(ack.seq, 6);
    const bucket = await new Objm(nc).open("payloads");
    const info = await bucket.info("round-1/peer-a");
    assert.equal(info?.size, 64 * 1024 * 1024);
  });
});
