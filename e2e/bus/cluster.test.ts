// The run's hub as it is meant to run: a 3-server JetStream cluster, TLS on the client
// port and the routes, every stream and bucket replicated R3. Losing one server
// (SIGKILL, in the middle of a transfer) loses nothing the cluster acknowledged, the two
// servers left keep serving writes and reads, and the killed server catches up when it
// returns. The client port refuses clients that cannot verify it or do not speak TLS.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { after, before, describe, test } from "node:test";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { runStreams } from "../../protocol/bus/auth.ts";
import type { BusClient } from "../../protocol/bus/client.ts";
import { applyBus, planBus } from "../../operator/bus/provision.ts";
import { encodeAnnouncement, signEnvelope } from "../../protocol/envelope.ts";
import { objectStream } from "../../protocol/names.ts";
import type { LocalStreamState, NatsCluster } from "../stack/nats.ts";
import { waitFor } from "../stack/wait.ts";
import { startBus } from "./fixture.ts";
import type { BusFixture, Identity } from "./fixture.ts";

const RUN = "cluster-test";
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const sameState = (a?: LocalStreamState, b?: LocalStreamState) =>
  a !== undefined && b !== undefined && a.last_seq === b.last_seq && a.messages === b.messages;

/**
 * Stream info answered by the stream's leader. While a stream has no leader (an election
 * after a server returns), a member answers with its own copy, which may be behind.
 */
function leaderInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo> {
  return waitFor(`a leader's info of ${name}`, async () => {
    const info = await jsm.streams.info(name);
    return info.cluster?.leader ? info : undefined;
  });
}

/**
 * A client that speaks NATS in plain text: reads the server's INFO, sends CONNECT and
 * PING, and returns what came back until the server closed the socket (or 10 s passed).
 */
async function plainTextSession(port: number): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    let text = "";
    let sent = false;
    const sock = tcpConnect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text, closedByServer: false });
    }, 10_000);
    sock.on("data", (b: Buffer) => {
      text += b.toString("latin1");
      if (!sent && text.includes("\r\n")) {
        sent = true;
        sock.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":false}\r\nPING\r\n');
      }
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closedByServer: true });
    });
    sock.on("error", (err) => {
      if (!text) reject(err);
    });
  });
}

describe("bus on a 3-server JetStream cluster with TLS, R3", { timeout: 240_000 }, () => {
  let bus: BusFixture<NatsCluster>;
  let miner: Identity, reader: Identity;
  let admin: BusClient;
  let jsm: JetStreamManager;
  const clients: BusClient[] = [];
  before(async () => {
    bus = await startBus({
      run: RUN,
      peers: [
        { name: "Miner", role: "miner" },
        { name: "Reader", role: "validator" },
      ],
      cluster: { servers: 3 },
    });
    [miner, reader] = bus.peers as [Identity, Identity];
    admin = await bus.connect("operator");
    clients.push(admin);
    jsm = await jetstreamManager(admin.nc, { timeout: 5_000 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await bus?.stop();
  });

  test("every stream and bucket of the run has three copies on three servers", async () => {
    assert.equal(admin.nc.info?.tls_required, true);
    for (const name of runStreams(RUN, [miner.hotkey, reader.hotkey], [reader.hotkey])) {
      const info = await jsm.streams.info(name);
      assert.equal(info.config.num_replicas, 3, name);
      const holders = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((p) => p.name)];
      assert.deepEqual(holders.sort(), ["covenant-0", "covenant-1", "covenant-2"], `${name} holders`);
    }
  });

  test("a client without the run's CA is refused by TLS verification", async () => {
    const url = bus.nats.servers[0]!.url;
    const authenticator = nkeyAuthenticator(new TextEncoder().encode(bus.operatorSeed));
    await assert.rejects(
      connect({ servers: url, authenticator, reconnect: false, timeout: 5_000 }),
      (err: Error) => {
        const why = `${err.message} ${String((err as { cause?: unknown }).cause)}`;
        assert.match(why, /self[- ]signed|unable to verify|certificate/i);
        return true;
      },
    );
    // The same client with the CA is accepted: the refusal was the verification.
    const nc = await connect({
      servers: url,
      authenticator,
      tls: { caFile: bus.tls!.caFile },
      reconnect: false,
    });
    await nc.close();
  });

  test("a plain-text nats:// client gets no service on the TLS port", async () => {
    const { text, closedByServer } = await plainTextSession(Number(new URL(bus.nats.servers[1]!.url).port));
    assert.match(text, /^INFO \{.*"tls_required":true/);
    assert.doesNotMatch(text, /PONG/, "no reply to a plain-text PING");
    assert.ok(closedByServer, `the server closed the connection (got ${JSON.stringify(text.slice(-80))})`);
  });

  test("more replicas than servers are refused before anything is created", async () => {
    const plan = planBus({ ...bus.spec, run: "cluster-wide", replicas: 5 });
    await assert.rejects(
      applyBus(admin.nc, plan),
      /creating stream covenant-cluster-wide with 5 replicas: .*(no suitable peers|insufficient resources)/,
    );
    await assert.rejects(jsm.streams.info(plan.stream.name), /not found/i);
  });

  test("SIGKILL of a server mid-transfer loses nothing acknowledged; it catches up on return", async () => {
    const bucketStream = objectStream(admin.names.payloadBucket(miner.hotkey));
    const leader = (await leaderInfo(jsm, bucketStream)).cluster?.leader;
    const victim = bus.nats.servers.find((s) => s.name === leader);
    assert.ok(victim, `leader ${leader} of ${bucketStream} is one of ours`);
    // The miner is given only the victim's URL: it fails over with the URLs the cluster gossips.
    const m = await bus.connect(miner, "miner", { servers: victim.url });
    const r = await bus.connect(reader, "reader");
    clients.push(m, r);
    const statuses: string[] = [];
    void (async () => {
      for await (const s of m.nc.status()) statuses.push(s.type);
    })();

    const accepted = new Map<number, string>();
    const submit = async (round: number, bytes: number) => {
      const data = randomBytes(bytes);
      await m.putPayload(miner.hotkey, round, data);
      const env = signEnvelope({ run: RUN, round, format: 1 }, data, miner.pair);
      await m.publish(m.names.submit(round, miner.hotkey), encodeAnnouncement(env), `${round}`);
      accepted.set(round, sha(data));
    };
    const readBack = async (round: number) => {
      const got = await r.getPayload(miner.hotkey, round, { maxBytes: 16 << 20 });
      assert.ok(got, `payload of round ${round} is there`);
      assert.equal(sha(got), accepted.get(round), `payload of round ${round} is intact`);
      assert.ok(await r.lastMessage(r.names.submit(round, miner.hotkey)), `announcement of round ${round}`);
    };

    for (let round = 0; round < 3; round++) await submit(round, 1_500_000 + round);
    // Round 3 (6 MB, many chunks) is being sent to the victim when it dies.
    const sentBefore = m.nc.stats().outBytes;
    const inFlight = submit(3, 6_000_000);
    await waitFor("round 3 partly sent", () => m.nc.stats().outBytes - sentBefore > 1_000_000, {
      intervalMs: 2,
    });
    await victim.kill();
    assert.equal(victim.running, false);
    await inFlight;
    // Writes and reads go on with two servers of three.
    for (let round = 4; round < 8; round++) {
      await submit(round, 1_000_000 + round);
      await readBack(round - 4);
    }
    for (const round of accepted.keys()) await readBack(round);
    assert.ok(statuses.includes("reconnect"), `the miner failed over (${statuses.join(",")})`);
    const stream = await leaderInfo(jsm, admin.names.stream);
    assert.equal(stream.state.messages, accepted.size, "each announcement stored once");
    assert.notEqual(stream.cluster?.leader, victim.name);
    // What the two servers left hold, once both have applied everything.
    const names = [admin.names.stream, bucketStream];
    const survivors = bus.nats.servers.filter((s) => s !== victim);
    const want = await waitFor("the two servers left agree", async () => {
      const [a, b] = await Promise.all(survivors.map((s) => s.localStreams(admin.names.account)));
      return names.every((n) => sameState(a!.get(n), b!.get(n))) ? a : undefined;
    });
    assert.equal(want.get(admin.names.stream)?.messages, accepted.size);

    // The victim returns on its old storage and catches up with what it missed. Its
    // /healthz can say 200 before it has heard it is behind, so compare its copies.
    await victim.restart();
    await bus.nats.waitHealthy();
    await waitFor(
      "the restarted server's copies equal the others'",
      async () => {
        const have = await victim.localStreams(admin.names.account);
        return names.every((n) => sameState(have.get(n), want.get(n)));
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  });
});

describe("replicas on a standalone server", { timeout: 60_000 }, () => {
  test("more than one copy is refused before anything is created", async () => {
    const bus = await startBus({ run: "standalone", peers: [{ name: "Miner", role: "miner" }] });
    const admin = await bus.connect("operator");
    try {
      const plan = planBus({ ...bus.spec, run: "standalone-r3", replicas: 3 });
      await assert.rejects(applyBus(admin.nc, plan), /replicas 3 needs a JetStream cluster/);
      const jsm = await jetstreamManager(admin.nc);
      await assert.rejects(jsm.streams.info(plan.stream.name), /not found/i);
    } finally {
      await admin.close();
      await bus.stop();
    }
  });
});
