/**
 * The node surface non-polkadot clients rely on (the Python SDK in conformance/): metadata
 * V14 from state_getMetadata and V14/V15/V16 through the Metadata runtime API, substrate's
 * method aliases, hex with or without 0x, and the SDK's runtime APIs decoding and refusing
 * bad SCALE with the runtime's error while changing nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Metadata, TypeRegistry } from "@polkadot/types";
import { hexToU8a } from "@polkadot/util";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";

const NETUID = 3;

describe("node rpc surface", () => {
  let lc: LocalChain;
  let raw: RawRpc;
  before(async () => {
    lc = await startLocalChain({ netuid: NETUID, neurons: 3, validators: 1, blockTimeMs: 100 });
    raw = await RawRpc.connect(lc.url);
  });
  after(async () => {
    raw.close();
    await lc.stop();
  });

  it("serves V14 from state_getMetadata and V14, V15, V16 at version", async () => {
    const v14 = new Metadata(new TypeRegistry(), await raw.result<`0x${string}`>("state_getMetadata"));
    assert.equal(v14.version, 14);
    assert.equal(
      await raw.result("state_call", ["Metadata_metadata_versions", "0x"]),
      "0x0c0e0000000f00000010000000",
    );
    for (const v of [14, 15, 16]) {
      const out = hexToU8a(
        await raw.result<string>("state_call", [
          "Metadata_metadata_at_version",
          `0x${v.toString(16).padStart(2, "0")}000000`,
        ]),
      );
      assert.equal(out[0], 1, `version ${v} is offered`);
      const md = new Metadata(
        new TypeRegistry(),
        new TypeRegistry().createType("Bytes", out.subarray(1)).toU8a(true),
      );
      assert.equal(md.version, v);
    }
    assert.equal(await raw.result("state_call", ["Metadata_metadata_at_version", "0x0d000000"]), "0x00");
  });

  it("answers substrate's aliases and hex without 0x", async () => {
    assert.equal(await raw.result("chain_getHead", [0]), await raw.result("chain_getBlockHash", [0]));
    const key = "0x658faa385070e074c85bf6b568cf0555"; // any key: both must agree
    assert.equal(await raw.result("state_getStorageAt", [key]), await raw.result("state_getStorage", [key]));
    const alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    assert.equal(
      await raw.result("account_nextIndex", [alice]),
      await raw.result("system_accountNextIndex", [alice]),
    );
    assert.equal(
      await raw.result("state_call", ["NeuronInfoRuntimeApi_get_neurons", "0300"]),
      await raw.result("state_call", ["NeuronInfoRuntimeApi_get_neurons", "0x0300"]),
    );
    const methods = (await raw.result<{ methods: string[] }>("rpc_methods")).methods;
    for (const m of ["chain_getHead", "state_getStorageAt", "account_nextIndex", "state_call"])
      assert.ok(methods.includes(m), m);
    assert.ok(!methods.some((m) => m.startsWith("covenantTest_")));
    assert.equal((await raw.call("state_call", ["Core_version", "0xzz"])).error?.code, -32602);
  });

  it("takes the node's parameter forms and answers as the node does", async () => {
    // rpc_methods: { methods } without a version field, itself included.
    const listed = await raw.result<Record<string, unknown>>("rpc_methods");
    assert.deepEqual(Object.keys(listed), ["methods"]);
    assert.ok((listed.methods as string[]).includes("rpc_methods"));
    // chain_getBlockHash: a number, 0x-hex, or a list of them; unknown numbers are null.
    const h0 = await raw.result<string>("chain_getBlockHash", [0]);
    assert.equal(await raw.result("chain_getBlockHash", ["0x0"]), h0);
    assert.deepEqual(await raw.result("chain_getBlockHash", [[0, "0x0", 99_999_999]]), [h0, h0, null]);
    // Hashes with or without 0x; an unknown block is null for chain_getHeader / chain_getBlock.
    const header = await raw.result<{ number: string }>("chain_getHeader", [h0.slice(2)]);
    assert.equal(header.number, "0x0");
    const unknown = "0x" + "ab".repeat(32);
    assert.equal(await raw.result("chain_getHeader", [unknown]), null);
    assert.equal(await raw.result("chain_getBlock", [unknown]), null);
    assert.equal((await raw.call("state_getStorage", ["0x00", unknown])).error?.code, 4003);
    assert.equal((await raw.call("chain_getHeader", ["0x1234"])).error?.code, -32602);
    // AccountId parameters are SS58 only, as the node's serde takes them.
    const aliceHex = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";
    assert.equal((await raw.call("system_accountNextIndex", [aliceHex])).error?.code, -32602);
    // state_getKeysPaged's count is a JSON number.
    assert.equal((await raw.call("state_getKeysPaged", ["0x", "0x10"])).error?.code, -32602);
    // The legacy subscribe_newHead alias notifies as chain_newHead.
    const sub = await raw.result<string>("subscribe_newHead");
    assert.equal(await raw.result("unsubscribe_newHead", [sub]), true);
    // subtensor's own RPCs answer the runtime API's SCALE bytes as a JSON array.
    const viaRpc = await raw.result<number[]>("neuronInfo_getNeuronsLite", [NETUID]);
    const viaCall = await raw.result<string>("state_call", [
      "NeuronInfoRuntimeApi_get_neurons_lite",
      "0x0300",
    ]);
    assert.equal("0x" + Buffer.from(viaRpc).toString("hex"), viaCall);
    const hp = await raw.result<number[]>("subnetInfo_getSubnetHyperparamsV2", [NETUID, h0]);
    assert.ok(hp.length > 10);
    const sel = await raw.result<number[]>("subnetInfo_getSelectiveMechagraph", [NETUID, 0, [0, 1]]);
    assert.equal(
      "0x" + Buffer.from(sel).toString("hex"),
      await raw.result("state_call", ["SubnetInfoRuntimeApi_get_selective_mechagraph", "0x0300000800000100"]),
    );
    assert.equal(await raw.result("subnetInfo_getLockCost"), 0);
    assert.equal((await raw.call("neuronInfo_getNeuronsLite", ["3"])).error?.code, -32602);
    assert.equal((await raw.call("neuronInfo_getNeuronsLite", [NETUID, unknown])).error?.code, 1);
  });

  it("runs the SDK's runtime APIs and refuses bad SCALE without changing state", async () => {
    for (const [m, data] of [
      ["SubnetInfoRuntimeApi_get_metagraph", "0x0300"],
      ["SubnetInfoRuntimeApi_get_selective_mechagraph", "0x0300000800000100"],
      ["SubnetInfoRuntimeApi_get_subnet_hyperparams_v2", "0x0300"],
      ["StakeInfoRuntimeApi_get_stake_info_for_coldkey", "0x" + "00".repeat(32)],
    ] as const) {
      const out = await raw.result<string>("state_call", [m, data]);
      assert.ok(out.length >= 4, `${m} answered ${out}`);
    }
    const at = await raw.result<string>("chain_getFinalizedHead");
    const before = await raw.result<string>("state_call", [
      "SubnetInfoRuntimeApi_get_metagraph",
      "0x0300",
      at,
    ]);
    const bad = await raw.call("state_call", ["SubnetInfoRuntimeApi_get_metagraph", "0x03"]);
    assert.equal(bad.error?.code, 4003);
    const extra = await raw.call("state_call", ["NeuronInfoRuntimeApi_get_neurons", "0x030000"]);
    assert.equal(extra.error?.code, 4003);
    assert.equal(
      await raw.result("state_call", ["SubnetInfoRuntimeApi_get_metagraph", "0x0300", at]),
      before,
    );
  });
});
