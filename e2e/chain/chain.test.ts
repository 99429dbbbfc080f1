/**
 * Acceptance of the local chain against an unmodified ApiPromise over a real WebSocket:
 * metadata, a 64-neuron metagraph read by storage and by runtime call, heads, the four
 * extrinsics and their events, and bad input that changes nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ApiPromise, WsProvider } from "@polkadot/api";
import type { SubmittableExtrinsic } from "@polkadot/api/types";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { Codec } from "@polkadot/types/types";
import { compactFromU8a, u8aToHex, u8aConcat, hexToU8a } from "@polkadot/util";
import { xxhashAsU8a, blake2AsU8a } from "@polkadot/util-crypto";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";
import { materializeState } from "./storage.ts";

const NETUID = 3;
const NEURONS = 64;
const VALIDATORS = 4;

interface Sent {
  events: { section: string; method: string; data: Codec[] }[];
  dispatchError: string | undefined;
  blockHash: string;
}

function send(api: ApiPromise, tx: SubmittableExtrinsic<"promise">, signer: KeyringPair): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let unsub: (() => void) | undefined;
    tx.signAndSend(signer, (r) => {
      if (!r.status.isInBlock && !r.status.isFinalized) return;
      unsub?.();
      const dispatchError = r.dispatchError
        ? r.dispatchError.isModule
          ? (() => {
              const m = api.registry.findMetaError(r.dispatchError!.asModule);
              return `${m.section}.${m.name}`;
            })()
          : r.dispatchError.toString()
        : undefined;
      resolve({
        events: r.events.map((e) => ({
          section: e.event.section,
          method: e.event.method,
          data: [...e.event.data],
        })),
        dispatchError,
        blockHash: (r.status.isInBlock ? r.status.asInBlock : r.status.asFinalized).toHex(),
      });
    })
      .then((u) => (unsub = u))
      .catch(reject);
  });
}

describe("local subtensor chain", () => {
  let lc: LocalChain;
  let api: ApiPromise;
  const keyring = devKeyring();
  // Typed accessors: the decorated API is keyed by strings.
  const q = (item: string) => api.query.subtensorModule![item]!;
  const tx = (pallet: string, call: string) => api.tx[pallet]![call]!;

  before(async () => {
    lc = await startLocalChain({
      netuid: NETUID,
      neurons: NEURONS,
      validators: VALIDATORS,
      blockTimeMs: 100,
      maxPayload: 1 << 20,
    });
    api = await ApiPromise.create({
      provider: new WsProvider(lc.url),
      noInitWarn: true,
      throwOnConnect: true,
    });
  });
  after(async () => {
    await api?.disconnect();
    await lc?.stop();
  });

  it("serves the production metadata with the standard signed extensions", () => {
    assert.equal(api.runtimeVersion.specName.toString(), "node-subtensor");
    assert.equal(api.runtimeVersion.specVersion.toNumber(), 393);
    assert.equal(api.runtimeMetadata.version, 16);
    const pallets = Object.fromEntries(
      api.runtimeMetadata.asLatest.pallets.map((p) => [p.name.toString(), p.index.toNumber()]),
    );
    assert.equal(pallets.SubtensorModule, 7);
    assert.equal(pallets.Commitments, 18);
    assert.deepEqual(api.registry.signedExtensions, [
      "CheckNonZeroSender",
      "CheckSpecVersion",
      "CheckTxVersion",
      "CheckGenesis",
      "CheckMortality",
      "CheckNonce",
      "CheckWeight",
      "ChargeTransactionPayment",
      "CheckMetadataHash",
    ]);
    assert.equal(api.registry.chainSS58, 42);
  });

  it("uses the real chain's storage keys", () => {
    const twox128 = (s: string) => xxhashAsU8a(s, 128);
    const le16 = (n: number) => new Uint8Array([n & 255, n >> 8]);
    const hot = seededKeys(keyring, 5).hot.publicKey;
    const expectedKeys = u8aConcat(twox128("SubtensorModule"), twox128("Keys"), le16(NETUID), le16(5));
    assert.equal(q("keys").key(NETUID, 5), u8aToHex(expectedKeys));
    assert.equal(u8aToHex(twox128("SubtensorModule")), "0x658faa385070e074c85bf6b568cf0555");
    const expectedUids = u8aConcat(
      twox128("SubtensorModule"),
      twox128("Uids"),
      le16(NETUID),
      blake2AsU8a(hot, 128),
      hot,
    );
    assert.equal(q("uids").key(NETUID, hot), u8aToHex(expectedUids));
    assert.equal(
      api.query.system!.events!.key(),
      "0x26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7",
    );
  });

  it("reads the same 64-neuron metagraph by storage and by runtime call", async () => {
    const n = Number((await q("subnetworkN")(NETUID)).toString());
    assert.equal(n, NEURONS);
    const uids = [...Array(n).keys()];
    const [
      hotkeys,
      active,
      incentive,
      consensus,
      trust,
      rank,
      dividends,
      vtrust,
      permit,
      emission,
      lastUpdate,
      pruning,
    ] = await Promise.all([
      api.queryMulti(uids.map((u) => [q("keys"), [NETUID, u]])),
      q("active")(NETUID),
      q("incentive")(NETUID),
      q("consensus")(NETUID),
      q("trust")(NETUID),
      q("rank")(NETUID),
      q("dividends")(NETUID),
      q("validatorTrust")(NETUID),
      q("validatorPermit")(NETUID),
      q("emission")(NETUID),
      q("lastUpdate")(NETUID),
      q("pruningScores")(NETUID),
    ]);
    const hk = (hotkeys as Codec[]).map((h) => h.toString());
    const owners = await q("owner").multi(hk);
    const stakes = await q("totalHotkeyAlpha").multi(hk.map((h) => [h, NETUID]));
    const uidsBack = await q("uids").multi(hk.map((h) => [NETUID, h]));
    const vec = (c: Codec) => (c.toJSON() as unknown[]).map((x) => String(x));
    const byStorage = uids.map((u) => ({
      uid: u,
      hotkey: hk[u],
      coldkey: owners[u]!.toString(),
      active: vec(active)[u],
      incentive: vec(incentive)[u],
      consensus: vec(consensus)[u],
      trust: vec(trust)[u],
      rank: vec(rank)[u],
      dividends: vec(dividends)[u],
      validatorTrust: vec(vtrust)[u],
      validatorPermit: vec(permit)[u],
      emission: vec(emission)[u],
      lastUpdate: vec(lastUpdate)[u],
      pruningScore: vec(pruning)[u],
      stake: stakes[u]!.toString(),
    }));
    uidsBack.forEach((x, u) => assert.equal(x.toString(), String(u)));

    const lite = (await api.call.neuronInfoRuntimeApi!.getNeuronsLite!(NETUID)) as unknown as Codec[];
    assert.equal(lite.length, NEURONS);
    const byCall = lite.map((c) => {
      const j = c.toJSON() as Record<string, unknown>;
      const stake = j.stake as [string, number | string][];
      return {
        uid: Number(j.uid),
        hotkey: String(j.hotkey),
        coldkey: String(j.coldkey),
        active: String(j.active),
        incentive: String(j.incentive),
        consensus: String(j.consensus),
        trust: String(j.trust),
        rank: String(j.rank),
        dividends: String(j.dividends),
        validatorTrust: String(j.validatorTrust),
        validatorPermit: String(j.validatorPermit),
        emission: String(j.emission),
        lastUpdate: String(j.lastUpdate),
        pruningScore: String(j.pruningScore),
        stake: BigInt(stake[0]![1]).toString(),
      };
    });
    assert.deepEqual(byCall, byStorage);
    // The genesis gave distinct values, so a swapped field would show.
    assert.equal(new Set(byStorage.map((x) => x.incentive)).size > 32, true);
    assert.equal(byStorage.filter((x) => x.validatorPermit === "true").length, VALIDATORS);
  });

  it("follows new heads", async () => {
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      const unsub = api.rpc.chain.subscribeNewHeads((h) => {
        seen.push(h.number.toNumber());
        if (seen.length === 3) {
          void unsub.then((f) => f());
          resolve();
        }
      });
    });
    assert.ok(seen[1]! > seen[0]! && seen[2]! > seen[1]!, `heads ${seen.join(",")}`);
    const best = await api.rpc.chain.getHeader();
    const parent = await api.rpc.chain.getHeader(best.parentHash);
    assert.equal(parent.number.toNumber(), best.number.toNumber() - 1);
  });

  it("registers, serves an axon, commits and sets weights with signed extrinsics", async () => {
    const alice = keyring.addFromUri("//Alice");
    const hot = keyring.addFromUri("//covenant/new/hot");
    const reg = await send(api, tx("subtensorModule", "burnedRegister")(NETUID, hot.address), alice);
    assert.equal(reg.dispatchError, undefined);
    const registered = reg.events.find((e) => e.method === "NeuronRegistered");
    assert.ok(registered, "NeuronRegistered event");
    assert.deepEqual(
      registered.data.map((d) => d.toString()),
      [String(NETUID), String(NEURONS), hot.address],
    );
    assert.equal((await q("uids")(NETUID, hot.address)).toString(), String(NEURONS));
    assert.equal((await q("subnetworkN")(NETUID)).toString(), String(NEURONS + 1));
    assert.equal((await q("owner")(hot.address)).toString(), alice.address);

    const axon = await send(
      api,
      tx("subtensorModule", "serveAxon")(NETUID, 1, 0x7f000001, 8091, 4, 0, 0, 0),
      hot,
    );
    assert.ok(axon.events.some((e) => e.method === "AxonServed"));
    const info = (await q("axons")(NETUID, hot.address)).toJSON() as Record<string, unknown>;
    assert.equal(info.port, 8091);
    assert.equal(info.ip, 0x7f000001);

    const location = "nats://bucket/covenant-run/peer-64";
    const commit = await send(
      api,
      tx("commitments", "setCommitment")(NETUID, { fields: [{ [`Raw${location.length}`]: location }] }),
      hot,
    );
    assert.ok(commit.events.some((e) => e.section === "commitments" && e.method === "Commitment"));
    const stored = (await api.query.commitments!.commitmentOf!(NETUID, hot.address)).toJSON() as {
      info: { fields: Record<string, string>[] };
    };
    const field = Object.values(stored.info.fields[0]!)[0]!;
    assert.equal(Buffer.from(hexToU8a(field)).toString(), location);

    // A validator sets weights once its rate limit has passed.
    const validator = seededKeys(keyring, 0).hot;
    const control = await RawRpc.connect(lc.url);
    await control.result("covenantTest_advanceBlocks", [100]);
    control.close();
    const ws = await send(
      api,
      tx("subtensorModule", "setWeights")(NETUID, [1, 2, 3], [10, 20, 40], 0),
      validator,
    );
    assert.equal(ws.dispatchError, undefined);
    const set = ws.events.find((e) => e.method === "WeightsSet");
    assert.ok(set);
    assert.deepEqual(
      set.data.map((d) => d.toString()),
      [String(NETUID), "0"],
    );
    const weights = (await q("weights")(NETUID, 0)).toJSON();
    assert.deepEqual(weights, [
      [1, 16383],
      [2, 32767],
      [3, 65535],
    ]);
  });

  it("fails a dispatch with the runtime's module error and keeps the weights as they were", async () => {
    const miner = seededKeys(keyring, 10).hot;
    const before = (await q("weights")(NETUID, 10)).toJSON();
    const r = await send(api, tx("subtensorModule", "setWeights")(NETUID, [1], [1], 0), miner);
    assert.equal(r.dispatchError, "subtensorModule.NeuronNoValidatorPermit");
    assert.ok(r.events.some((e) => e.method === "ExtrinsicFailed"));
    assert.deepEqual((await q("weights")(NETUID, 10)).toJSON(), before);
    const dup = await send(
      api,
      tx("subtensorModule", "burnedRegister")(NETUID, miner.address),
      seededKeys(keyring, 10).cold,
    );
    assert.equal(dup.dispatchError, "subtensorModule.HotKeyAlreadyRegisteredInSubNet");
  });

  describe("bad input", () => {
    let raw: RawRpc;
    before(async () => {
      raw = await RawRpc.connect(lc.url);
    });
    after(() => raw?.close());

    async function unchanged(fn: () => Promise<void>): Promise<void> {
      lc.chain.stop();
      try {
        const before = materializeState(lc.chain.rt, lc.chain.best.state!);
        const pool = lc.chain.pending().length;
        await fn();
        assert.equal(lc.chain.pending().length, pool, "nothing pooled");
        await raw.result("covenantTest_advanceBlocks", [1]);
        const afterState = materializeState(lc.chain.rt, lc.chain.best.state!);
        assert.deepEqual([...afterState].sort(), [...before].sort());
      } finally {
        lc.chain.start();
      }
    }

    it("answers malformed JSON-RPC with the standard errors", async () => {
      await unchanged(async () => {
        const parse = (await raw.sendText("{not json")) as { error?: { code: number } };
        assert.equal(parse.error?.code, -32700);
        const invalid = (await raw.sendText(
          JSON.stringify({ jsonrpc: "1.0", id: 1, method: "system_chain" }),
        )) as {
          error?: { code: number };
        };
        assert.equal(invalid.error?.code, -32600);
        assert.equal((await raw.call("no_suchMethod")).error?.code, -32601);
        assert.equal((await raw.call("chain_getBlockHash", ["seven"])).error?.code, -32602);
        assert.equal((await raw.call("state_getStorage", [42])).error?.code, -32602);
        assert.equal((await raw.call("covenantTest_setStake", [NETUID, "nobody", "1"])).error?.code, -32602);
        const batch = (await raw.sendText(
          JSON.stringify([{ jsonrpc: "2.0", id: 7, method: "system_chain" }, { id: 8 }]),
        )) as { id: unknown; error?: { code: number } }[];
        assert.equal(batch.length, 2);
        assert.equal(batch[1]!.error?.code, -32600);
        assert.equal(await raw.result("system_chain"), "Covenant Local Subtensor");
      });
    });

    it("closes a connection that sends an oversized message and keeps serving others", async () => {
      const big = await RawRpc.connect(lc.url);
      const closed = new Promise<number>((resolve) => big.onClose(resolve));
      big.sendRaw(
        JSON.stringify({ jsonrpc: "2.0", id: 1, method: "system_chain", params: ["x".repeat(2 << 20)] }),
      );
      const code = await closed;
      assert.equal(code, 1009);
      assert.equal(await raw.result("system_chain"), "Covenant Local Subtensor");
      assert.equal(lc.chain.producerErrors, 0);
    });

    it("rejects bad SCALE, a wrong signature and a stale nonce without changing state", async () => {
      // Validator 0 has sent set_weights above, so nonce 0 is spent.
      const validator = seededKeys(keyring, 0).hot;
      const nonce = Number(await raw.result("system_accountNextIndex", [validator.address]));
      assert.equal(nonce, 1);
      const good = await tx("subtensorModule", "setWeights")(NETUID, [0], [1], 0).signAsync(validator, {
        nonce,
      });
      const hex = good.toHex();
      await unchanged(async () => {
        const bad = await raw.call("author_submitExtrinsic", [hex.slice(0, hex.length - 6)]);
        assert.equal(bad.error?.code, 1001);
        const garbage = await raw.call("author_submitExtrinsic", ["0xdeadbeef"]);
        assert.equal(garbage.error?.code, 1001);
        // Flip one bit inside the signature: after the length prefix, the version byte,
        // the address (type byte + 32) and the signature's type byte.
        const bytes = hexToU8a(hex);
        const [prefix] = compactFromU8a(bytes);
        const forged = new Uint8Array(bytes);
        forged[prefix + 1 + 33 + 1 + 10]! ^= 1;
        const wrong = await raw.call("author_submitExtrinsic", [u8aToHex(forged)]);
        assert.equal(wrong.error?.code, 1010);
        assert.equal(wrong.error?.data, "Transaction has a bad signature");
        const stale = await tx("subtensorModule", "setWeights")(NETUID, [0], [1], 0).signAsync(validator, {
          nonce: nonce - 1,
        });
        const r = await raw.call("author_submitExtrinsic", [stale.toHex()]);
        assert.equal(r.error?.code, 1010);
        assert.equal(r.error?.data, "Transaction is outdated");
        const future = await tx("subtensorModule", "setWeights")(NETUID, [0], [1], 0).signAsync(validator, {
          nonce: nonce + 5,
        });
        const f = await raw.call("author_submitExtrinsic", [future.toHex()]);
        assert.equal(f.error?.code, 1010);
        const unsigned = api.tx.subtensorModule!.setWeights!(NETUID, [0], [1], 0).toHex();
        assert.equal((await raw.call("author_submitExtrinsic", [unsigned])).error?.code, 1011);
      });
      assert.equal(lc.server.errorCounts.get(1001), 2);
    });
  });
});
