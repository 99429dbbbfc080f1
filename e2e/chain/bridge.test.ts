/**
 * The operator's chain bridge against the local chain over real WebSocket: registration and
 * replacement seen in the planned status and Events, the chain going away (ChainSynced False
 * with growing backoff) and coming back on the same port (recovers without a new bridge).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { ChainBridge, type BridgeSink } from "../../operator/chain/bridge.ts";
import { readMetagraph, readMetagraphByStorage } from "../../operator/chain/metagraph.ts";
import { createChainMetrics } from "../../operator/chain/metrics.ts";
import type { PeerChainInput, PeerChainPlan } from "../../operator/chain/peers.ts";
import type { ConditionSpec, SyncSnapshot } from "../../operator/chain/sync.ts";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";

const NETUID = 3;

/** A sink that keeps what the bridge would write and plays the peers' stored status back. */
class MemorySink implements BridgeSink {
  peersIn: PeerChainInput[] = [];
  plans: PeerChainPlan[] = [];
  syncs: { condition: ConditionSpec; snapshot: SyncSnapshot; at: number }[] = [];
  async peers() {
    return this.peersIn.map((p) => ({ ...p }));
  }
  async applyPeers(plan: PeerChainPlan) {
    this.plans.push(plan);
    for (const p of plan.peers) {
      const mine = this.peersIn.find((x) => x.name === p.name)!;
      mine.previousUid = p.status.uid ?? mine.previousUid;
      mine.previouslyRegistered = p.status.registered.status === "True";
    }
  }
  async applySync(condition: ConditionSpec, snapshot: SyncSnapshot) {
    this.syncs.push({ condition, snapshot, at: Date.now() });
  }
  get lastSync() {
    return this.syncs[this.syncs.length - 1];
  }
  events() {
    return this.plans.flatMap((p) => p.events);
  }
}

async function until(what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("chain bridge against the local chain", () => {
  let lc: LocalChain;
  let bridge: ChainBridge;
  let control: RawRpc;
  const sink = new MemorySink();
  const registry = new Registry();
  const keyring = devKeyring();
  const p2 = seededKeys(keyring, 2).hot.address;

  before(async () => {
    lc = await startLocalChain({ netuid: NETUID, neurons: 8, validators: 2, blockTimeMs: 150 });
    control = await RawRpc.connect(lc.url);
    sink.peersIn = [
      {
        namespace: "ns",
        name: "peer-2",
        role: "miner",
        hotkey: p2,
        previousUid: undefined,
        previouslyRegistered: false,
      },
    ];
    bridge = new ChainBridge({
      run: "ns/run",
      endpoint: lc.url,
      netuid: NETUID,
      sink,
      metrics: createChainMetrics(registry),
      backoff: { baseMs: 200, maxMs: 800 },
      connectTimeoutMs: 5_000,
      tickMs: 200,
    });
    bridge.start();
  });
  after(async () => {
    control?.close();
    await bridge?.stop();
    await lc?.stop();
  });

  it("syncs and marks a registered peer with its uid", async () => {
    await until("ChainSynced True", () => sink.lastSync?.condition.status === "True");
    await until("a plan", () => sink.plans.length > 0);
    const st = sink.plans[sink.plans.length - 1]!.peers[0]!.status;
    assert.equal(st.uid, 2);
    assert.equal(st.registered.status, "True");
    assert.equal(st.stake, String(1002n * 1_000_000_000n));
    assert.deepEqual(
      sink.events().map((e) => e.reason),
      ["PeerRegistered"],
    );
    const text = await registry.metrics();
    assert.match(text, /covenant_chain_block_height\{run="ns\/run"\} [1-9]/);
    assert.match(text, /covenant_chain_connected\{run="ns\/run"\} 1/);
  });

  it("reads the same metagraph by runtime call and by storage", async () => {
    const api = bridge.connection.api!;
    const head = bridge.connection.snapshot.best!;
    const byCall = await readMetagraph(api, NETUID, head.hash, head.number);
    const byStorage = await readMetagraphByStorage(api, NETUID, head.hash, head.number);
    assert.equal(byCall.neurons.length, 8);
    assert.deepEqual(byStorage, byCall);
    assert.equal(byCall.neurons.filter((n) => n.validatorPermit).length, 2);
  });

  it("sees a replaced neuron as deregistration", async () => {
    const newcomer = keyring.addFromUri("//covenant/replacement/hot");
    await control.result("covenantTest_replaceNeuron", [NETUID, 2, newcomer.address, newcomer.address]);
    await until("PeerDeregistered", () => sink.events().some((e) => e.reason === "PeerDeregistered"));
    const last = sink.plans[sink.plans.length - 1]!.peers[0]!.status;
    assert.equal(last.registered.status, "False");
    assert.equal(last.registered.reason, "Deregistered");
    assert.equal(last.uid, undefined);
    assert.match(last.registered.message, new RegExp(`uid 2 is now held by hotkey ${newcomer.address}`));
  });

  it("reports the chain unreachable with backoff and recovers when it returns", async () => {
    const connection = bridge.connection;
    await lc.pause();
    await until("ChainSynced False", () => sink.lastSync?.condition.reason === "ChainUnreachable");
    await until("three failed attempts", () => (sink.lastSync?.snapshot.failures ?? 0) >= 3);
    const failing = sink.syncs.filter((s) => s.snapshot.phase === "Unreachable");
    assert.ok(failing.length >= 3);
    assert.ok(failing.every((s) => s.condition.status === "False"));
    // The counted failures grow one by one, each with a scheduled retry.
    assert.deepEqual(
      failing.slice(0, 3).map((s) => s.snapshot.failures),
      [1, 2, 3],
    );
    // Each retry is scheduled within the policy: at most maxMs (800) after the failure.
    for (const f of failing) {
      assert.ok(
        f.snapshot.retryAt !== undefined && f.snapshot.retryAt - f.at <= 800,
        `retry in ${f.snapshot.retryAt! - f.at} ms`,
      );
    }
    assert.match(failing[0]!.condition.message, /cannot reach ws:\/\/127\.0\.0\.1:\d+/);
    const errors = await registry.getSingleMetric("covenant_chain_rpc_errors_total")!.get();
    assert.ok(errors.values.reduce((a, v) => a + v.value, 0) >= 3);

    await lc.restart();
    const syncsBefore = sink.syncs.length;
    await until(
      "ChainSynced True again",
      () => sink.lastSync?.condition.status === "True" && sink.syncs.length > syncsBefore,
    );
    assert.equal(bridge.connection, connection, "the same bridge recovered");
    const height = lc.chain.best.number;
    await until("heads after recovery", () => (bridge.connection.snapshot.best?.number ?? 0) > height);
    assert.equal(bridge.connection.snapshot.failures, 0);
  });
});
