import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../../protocol/chain/backoff.ts";
import { redactEndpoint, validateEndpoint } from "../../protocol/chain/endpoint.ts";
import { hotkeyAddress, hotkeyFromSecret } from "../../protocol/chain/hotkey.ts";
import { neuronsFromLite, type MetagraphSnapshot, type NeuronView } from "./metagraph.ts";
import { planPeerChainStatus, type PeerChainInput } from "./peers.ts";
import { chainSyncedCondition, windowOf, type SyncSnapshot } from "./sync.ts";

const neuron = (uid: number, hotkey: string, over: Partial<NeuronView> = {}): NeuronView => ({
  uid,
  hotkey,
  coldkey: `cold-${hotkey}`,
  active: true,
  stake: 5n * 10n ** 18n,
  incentive: 0.25,
  validatorPermit: false,
  lastUpdate: 10n,
  ...over,
});
const snap = (block: number, neurons: NeuronView[]): MetagraphSnapshot => ({
  netuid: 3,
  block,
  blockHash: "0x01",
  neurons,
});
const peer = (
  name: string,
  hotkey: string | undefined,
  over: Partial<PeerChainInput> = {},
): PeerChainInput => ({
  namespace: "ns",
  name,
  role: "miner",
  hotkey,
  previousUid: undefined,
  previouslyRegistered: false,
  ...over,
});

describe("planPeerChainStatus", () => {
  it("marks a peer whose hotkey holds a uid Registered and emits PeerRegistered once", () => {
    const s = snap(100, [neuron(0, "A"), neuron(1, "B", { validatorPermit: true, incentive: 0.5 })]);
    const plan = planPeerChainStatus(s, [peer("b", "B")]);
    const st = plan.peers[0]!.status;
    assert.equal(st.uid, 1);
    assert.equal(st.stake, "5000000000000000000");
    assert.equal(st.incentive, 0.5);
    assert.equal(st.validatorPermit, true);
    assert.equal(st.registered.status, "True");
    assert.deepEqual(
      plan.events.map((e) => e.reason),
      ["PeerRegistered"],
    );
    const again = planPeerChainStatus(s, [peer("b", "B", { previousUid: 1, previouslyRegistered: true })]);
    assert.deepEqual(again.events, []);
  });

  it("treats a uid taken over by another hotkey as deregistration", () => {
    const s = snap(200, [neuron(0, "A"), neuron(1, "C")]);
    const plan = planPeerChainStatus(s, [peer("b", "B", { previousUid: 1, previouslyRegistered: true })]);
    const st = plan.peers[0]!.status;
    assert.equal(st.registered.status, "False");
    assert.equal(st.registered.reason, "Deregistered");
    assert.match(st.registered.message, /uid 1 is now held by hotkey C/);
    assert.equal(st.uid, undefined);
    assert.deepEqual(
      plan.events.map((e) => [e.type, e.reason]),
      [["Warning", "PeerDeregistered"]],
    );
    // The next block sees the status just written (uid released): it stays Deregistered, once.
    const next = planPeerChainStatus(snap(201, [neuron(0, "A"), neuron(1, "C")]), [
      peer("b", "B", { previouslyRegistered: false, deregistered: st.registered.message }),
    ]);
    assert.deepEqual(next.peers[0]!.status.registered, st.registered);
    assert.deepEqual(next.events, []);
    // Registering again clears it.
    const back = planPeerChainStatus(snap(202, [neuron(0, "A"), neuron(1, "C"), neuron(2, "B")]), [
      peer("b", "B", { previouslyRegistered: false, deregistered: st.registered.message }),
    ]);
    assert.equal(back.peers[0]!.status.registered.reason, "Registered");
  });

  it("says NotRegistered for a hotkey never seen and Unknown without a hotkey", () => {
    const s = snap(5, [neuron(0, "A")]);
    const plan = planPeerChainStatus(s, [peer("x", "X"), peer("y", undefined)]);
    assert.equal(plan.peers[0]!.status.registered.reason, "NotRegistered");
    assert.equal(plan.peers[1]!.status.registered.status, "Unknown");
    assert.deepEqual(plan.events, []);
  });

  it("emits WeightsSet when a validator's last update moves on the same uid", () => {
    const before = snap(100, [neuron(0, "V", { validatorPermit: true, lastUpdate: 90n })]);
    const after = snap(110, [neuron(0, "V", { validatorPermit: true, lastUpdate: 105n })]);
    const v = peer("v", "V", { role: "validator", previousUid: 0, previouslyRegistered: true });
    assert.deepEqual(
      planPeerChainStatus(after, [v], before).events.map((e) => e.reason),
      ["WeightsSet"],
    );
    assert.deepEqual(planPeerChainStatus(before, [v], before).events, []);
    assert.deepEqual(planPeerChainStatus(after, [{ ...v, role: "miner" }], before).events, []);
  });
});

describe("chainSyncedCondition", () => {
  const base: SyncSnapshot = {
    phase: "Connected",
    endpoint: "ws://chain:9944",
    failures: 0,
    best: { number: 7, hash: "0x", seenAt: 1_000 },
  };
  it("is True while heads arrive, False when stalled or unreachable, Unknown while connecting", () => {
    assert.equal(chainSyncedCondition(base, 2_000).status, "True");
    const stalled = chainSyncedCondition(base, 1_000 + 61_000);
    assert.deepEqual([stalled.status, stalled.reason], ["False", "ChainStalled"]);
    const down = chainSyncedCondition(
      { ...base, phase: "Unreachable", failures: 3, lastError: "ECONNREFUSED", retryAt: 9_000 },
      5_000,
    );
    assert.deepEqual([down.status, down.reason], ["False", "ChainUnreachable"]);
    assert.match(down.message, /ECONNREFUSED; retry 3 in 4s/);
    assert.equal(
      chainSyncedCondition({ phase: "Connecting", endpoint: "ws://x", failures: 0 }, 0).status,
      "Unknown",
    );
  });
  it("maps blocks to windows", () => {
    assert.equal(windowOf(0, 120), 0);
    assert.equal(windowOf(239, 120), 1);
    assert.equal(windowOf(240, 120), 2);
    assert.throws(() => windowOf(1, 0), /positive integer/);
  });
});

describe("backoff and endpoints", () => {
  it("grows exponentially to the cap with bounded jitter", () => {
    const p = { baseMs: 100, maxMs: 1_000 };
    assert.equal(
      backoffDelay(1, p, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(1, p, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(3, p, () => 1),
      400,
    );
    assert.equal(
      backoffDelay(50, p, () => 1),
      1_000,
    );
    assert.equal(
      backoffDelay(5000, p, () => 0),
      500,
    );
    assert.throws(() => backoffDelay(0, p), /attempt/);
    assert.throws(() => backoffDelay(1, { baseMs: 0, maxMs: 1 }), /baseMs/);
  });
  it("redacts credentials and rejects non-WebSocket endpoints", () => {
    assert.equal(
      redactEndpoint("wss://user:secret@entrypoint-finney.opentensor.ai:443/?token=abc"),
      "wss://entrypoint-finney.opentensor.ai",
    );
    assert.throws(() => validateEndpoint("http://x"), /ws:\/\/ or wss:\/\//);
    assert.throws(() => validateEndpoint("nonsense"), /not a URL/);
  });
});

describe("hotkey secrets", () => {
  it("reads a secret URI, a seed and a mnemonic, and never echoes the secret", async () => {
    assert.equal(await hotkeyAddress("//Alice\n"), "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
    const seed = "0x" + "11".repeat(32);
    assert.match(await hotkeyAddress(seed), /^5/);
    const pair = await hotkeyFromSecret(
      "bottom drive obey lake curtain smoke basket hold race lonely fit walk",
    );
    assert.equal(pair.address, "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV");
    for (const bad of ["", "0x1234", "0x" + "zz".repeat(32)]) {
      await assert.rejects(hotkeyFromSecret(bad), (e: Error) => !e.message.includes("zz") || bad === "");
    }
  });
});

describe("neuronsFromLite", () => {
  it("sums stake, scales incentive and keeps uid order", () => {
    const out = neuronsFromLite([
      {
        uid: 0,
        hotkey: "H",
        coldkey: "C",
        active: true,
        stake: [
          ["C", "1000"],
          ["D", 24],
        ],
        incentive: 65535,
        validatorPermit: true,
        lastUpdate: 42,
      },
    ]);
    assert.deepEqual(out[0], {
      uid: 0,
      hotkey: "H",
      coldkey: "C",
      active: true,
      stake: 1024n,
      incentive: 1,
      validatorPermit: true,
      lastUpdate: 42n,
    });
  });
});
