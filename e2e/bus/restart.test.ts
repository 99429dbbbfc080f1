// nats-server restarted mid-run: every payload and announcement the server
// acknowledged is still there afterwards (JetStream file storage), and clients
// reconnect by themselves and carry on.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { BusClient } from "../../protocol/bus/client.ts";
import { encodeAnnouncement, signEnvelope } from "../../protocol/envelope.ts";
import { startBus } from "./fixture.ts";
import type { BusFixture, Identity } from "./fixture.ts";

const RUN = "restart-test";
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("bus across a nats-server restart", { timeout: 180_000 }, () => {
  let bus: BusFixture;
  let miner: Identity, reader: Identity;
  let m: BusClient, r: BusClient;
  const statuses: string[] = [];
  before(async () => {
    bus = await startBus({
      run: RUN,
      peers: [
        { name: "Miner", role: "miner" },
        { name: "Reader", role: "validator" },
      ],
    });
    [miner, reader] = bus.peers as [Identity, Identity];
    m = await bus.connect(miner);
    r = await bus.connect(reader);
    void (async () => {
      for await (const s of m.nc.status()) statuses.push(s.type);
    })();
  });
  after(async () => {
    await Promise.all([m, r].map((c) => c?.close()));
    await bus?.stop();
  });

  test("accepted payloads and announcements survive; a put in flight completes after reconnect", async () => {
    const accepted = new Map<number, string>();
    // Rounds 0..3 are acknowledged before the restart; payloads span many chunks.
    for (let round = 0; round < 4; round++) {
      const data = randomBytes(1_500_000 + round);
      await m.putPayload(miner.hotkey, round, data);
      const env = signEnvelope({ run: RUN, round, format: 1 }, data, miner.pair);
      await m.publish(m.names.submit(round, miner.hotkey), encodeAnnouncement(env), `${round}`);
      accepted.set(round, sha(data));
    }
    // Round 4 is put while the server goes away and comes back.
    const late = randomBytes(6_000_000);
    const inFlight = m.putPayload(miner.hotkey, 4, late);
    const restart = bus.nats.restart();
    await Promise.all([inFlight, restart]);
    accepted.set(4, sha(late));
    assert.ok(statuses.includes("disconnect"), `client saw the disconnect (${statuses.join(",")})`);
    assert.ok(statuses.includes("reconnect"), `client reconnected (${statuses.join(",")})`);

    for (const [round, digest] of accepted) {
      const got = await r.getPayload(miner.hotkey, round, { maxBytes: 16 << 20 });
      assert.ok(got, `payload of round ${round} is there`);
      assert.equal(sha(got), digest, `payload of round ${round} is intact`);
    }
    for (let round = 0; round < 4; round++) {
      const ann = await r.lastMessage(r.names.submit(round, miner.hotkey));
      assert.ok(ann, `announcement of round ${round} is there`);
    }
    // The run continues: new writes after the restart.
    const next = randomBytes(1000);
    await m.putPayload(miner.hotkey, 5, next);
    assert.equal(sha((await r.getPayload(miner.hotkey, 5, { maxBytes: 1 << 20 }))!), sha(next));
  });

  test("a retried announcement lands once (server-side de-duplication)", async () => {
    const env = encodeAnnouncement(
      signEnvelope({ run: RUN, round: 6, format: 1 }, randomBytes(8), miner.pair),
    );
    const first = await m.publish(m.names.submit(6, miner.hotkey), env, "6");
    const again = await m.publish(m.names.submit(6, miner.hotkey), env, "6");
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq);
  });
});
