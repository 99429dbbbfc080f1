// NATS itself enforces who writes where: a peer publishes only under its own hotkey,
// whatever client it runs. Every refusal here comes from the real nats-server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { encodeAnnouncement, signEnvelope } from "../../protocol/envelope.ts";
import type { BusClient } from "../../protocol/bus/client.ts";
import { startBus } from "./fixture.ts";
import type { BusFixture, Identity } from "./fixture.ts";

const RUN = "perm-test";

describe("bus permissions on a real nats-server", { timeout: 120_000 }, () => {
  let bus: BusFixture;
  let alice: Identity, bob: Identity, val: Identity;
  let a: BusClient, b: BusClient, v: BusClient;
  before(async () => {
    bus = await startBus({
      run: RUN,
      peers: [
        { name: "Alice", role: "miner" },
        { name: "Bob", role: "miner" },
        { name: "Val", role: "validator" },
      ],
    });
    [alice, bob, val] = bus.peers as [Identity, Identity, Identity];
    [a, b, v] = await Promise.all([bus.connect(alice), bus.connect(bob), bus.connect(val)]);
  });
  after(async () => {
    await Promise.all([a, b, v].map((c) => c?.close()));
    await bus?.stop();
  });

  test("a peer writes and everyone reads its payload", async () => {
    const data = randomBytes(3 * 128 * 1024 + 17);
    await a.putPayload(alice.hotkey, 1, data);
    const got = await b.getPayload(alice.hotkey, 1, { maxBytes: 1 << 20 });
    assert.deepEqual(Buffer.from(got!), data);
    const byVal = await v.getPayload(alice.hotkey, 1, { maxBytes: 1 << 20 });
    assert.deepEqual(Buffer.from(byVal!), data);
  });

  test("a peer cannot overwrite another peer's payload", async () => {
    const original = randomBytes(4096);
    await a.putPayload(alice.hotkey, 2, original);
    await assert.rejects(() => b.putPayload(alice.hotkey, 2, randomBytes(4096)), /permission/i);
    // Through the raw client library as well, bypassing the wrapper.
    const store = await new Objm(jetstream(b.nc)).open(a.names.payloadBucket(alice.hotkey));
    await assert.rejects(
      () => store.putBlob({ name: "round-2" }, randomBytes(64), { timeout: 2_000 }),
      /permission/i,
    );
    await assert.rejects(() => store.delete("round-2"), /permission/i);
    const got = await v.getPayload(alice.hotkey, 2, { maxBytes: 1 << 20 });
    assert.deepEqual(Buffer.from(got!), original, "Alice's payload is untouched");
  });

  test("a peer cannot announce, heartbeat or select under another hotkey", async () => {
    const env = encodeAnnouncement(signEnvelope({ run: RUN, round: 3, format: 1 }, randomBytes(8), bob.pair));
    await assert.rejects(() => b.publish(b.names.submit(3, alice.hotkey), env, "x1"), /permission/i);
    await assert.rejects(() => b.publish(b.names.heartbeat(alice.hotkey), env, "x2"), /permission/i);
    // A miner cannot publish a selection at all, neither as itself nor as the validator.
    await assert.rejects(() => b.publish(b.names.selection(3, bob.hotkey), env, "x3"), /permission/i);
    await assert.rejects(() => b.publish(b.names.selection(3, val.hotkey), env, "x4"), /permission/i);
    // Its own subjects work.
    const ack = await b.publish(b.names.submit(3, bob.hotkey), env, "ok1");
    assert.equal(ack.stream, b.names.stream);
    const sel = await v.publish(v.names.selection(3, val.hotkey), new TextEncoder().encode("{}"), "ok2");
    assert.equal(sel.stream, v.names.stream);
    const last = await a.lastMessage(a.names.selection(3, val.hotkey));
    assert.equal(new TextDecoder().decode(last!.data), "{}");
  });

  test("a miner cannot write membership or checkpoint pointers; the validator writes only its own", async () => {
    const kvB = await b.state();
    await assert.rejects(() => kvB.put("membership", "{}"), /permission/i);
    await assert.rejects(() => kvB.put(`checkpoint.${val.hotkey}`, "{}"), /permission/i);
    const kvV = await v.state();
    await kvV.put(`checkpoint.${val.hotkey}`, "7");
    await assert.rejects(() => kvV.put("membership", "{}"), /permission/i);
    const op = await bus.connect("operator");
    try {
      const kvO = await op.state();
      await kvO.put("membership", '{"epoch":1}');
      const seen = await kvB.get("membership");
      assert.equal(seen?.string(), '{"epoch":1}');
      assert.equal((await kvB.get(`checkpoint.${val.hotkey}`))?.string(), "7");
    } finally {
      await op.close();
    }
  });

  test("a peer cannot delete or purge the run's stream or another bucket", async () => {
    const jsm = await jetstream(b.nc).jetstreamManager();
    await assert.rejects(() => jsm.streams.purge(b.names.stream), /permission/i);
    await assert.rejects(
      () => jsm.streams.delete(`OBJ_${b.names.payloadBucket(alice.hotkey)}`),
      /permission/i,
    );
    await assert.rejects(() => jsm.streams.add({ name: "rogue", subjects: ["rogue.>"] }), /permission/i);
    const info = await jsm.streams.info(b.names.stream);
    assert.ok(info.state.messages > 0, "the stream still holds its messages");
  });

  test("an oversized object is refused before any byte is fetched", async () => {
    await a.putPayload(alice.hotkey, 5, randomBytes(200_000));
    await assert.rejects(() => b.getPayload(alice.hotkey, 5, { maxBytes: 100_000 }), /larger than 100000/);
  });
});
