/**
 * The JSON-RPC methods the local chain serves, pinned against what a real subtensor node
 * (spec 393) registers, group by group, with the public source each group comes from.
 * Every name here is served by the real node under the same name; what the real node has
 * and the local chain does not serve is listed in docs/chain.md ("JSON-RPC methods").
 * No server is started: the list is the server's handler table.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Chain } from "./chain.ts";
import { buildGenesis } from "./genesis.ts";
import { loadRuntime } from "./runtime.ts";
import { ALIASES, ChainServer } from "./server.ts";

/**
 * paritytech/polkadot-sdk substrate/client/rpc-api/src/chain/mod.rs (ChainApi): methods and
 * the `aliases` / `unsubscribe_aliases` of each.
 */
const CHAIN = [
  "chain_getHeader",
  "chain_getBlock",
  "chain_getBlockHash",
  "chain_getHead",
  "chain_getFinalizedHead",
  "chain_getFinalisedHead",
  "chain_subscribeAllHeads",
  "chain_unsubscribeAllHeads",
  "chain_subscribeNewHeads",
  "subscribe_newHead",
  "chain_subscribeNewHead",
  "chain_unsubscribeNewHeads",
  "unsubscribe_newHead",
  "chain_unsubscribeNewHead",
  "chain_subscribeFinalizedHeads",
  "chain_subscribeFinalisedHeads",
  "chain_unsubscribeFinalizedHeads",
  "chain_unsubscribeFinalisedHeads",
];

/**
 * paritytech/polkadot-sdk substrate/client/rpc-api/src/state/mod.rs (StateApi), with its
 * aliases (the chain_*RuntimeVersion names are aliases of the state_ ones). Not served:
 * state_getPairs, state_queryStorage, state_getReadProof, state_traceBlock.
 */
const STATE = [
  "state_call",
  "state_callAt",
  "state_getKeys",
  "state_getKeysPaged",
  "state_getKeysPagedAt",
  "state_getStorage",
  "state_getStorageAt",
  "state_getStorageHash",
  "state_getStorageHashAt",
  "state_getStorageSize",
  "state_getStorageSizeAt",
  "state_getMetadata",
  "state_getRuntimeVersion",
  "chain_getRuntimeVersion",
  "state_queryStorageAt",
  "state_subscribeRuntimeVersion",
  "chain_subscribeRuntimeVersion",
  "state_unsubscribeRuntimeVersion",
  "chain_unsubscribeRuntimeVersion",
  "state_subscribeStorage",
  "state_unsubscribeStorage",
];

/**
 * paritytech/polkadot-sdk substrate/client/rpc-api/src/author/mod.rs (AuthorApi). Not served:
 * author_insertKey, author_rotateKeys, author_hasSessionKeys, author_hasKey,
 * author_removeExtrinsic.
 */
const AUTHOR = [
  "author_submitExtrinsic",
  "author_pendingExtrinsics",
  "author_submitAndWatchExtrinsic",
  "author_unwatchExtrinsic",
];

/**
 * paritytech/polkadot-sdk substrate/client/rpc-api/src/system/mod.rs (SystemApi). Not served:
 * the peer and networking ones (system_localPeerId, system_localListenAddresses,
 * system_unstable_networkState, system_addReservedPeer, system_removeReservedPeer,
 * system_reservedPeers) and the log filters (system_addLogFilter, system_resetLogFilter).
 */
const SYSTEM = [
  "system_name",
  "system_version",
  "system_chain",
  "system_chainType",
  "system_properties",
  "system_health",
  "system_peers",
  "system_nodeRoles",
  "system_syncState",
];

/** paritytech/polkadot-sdk substrate/client/rpc-servers/src/utils.rs (build_rpc_api). */
const SERVER = ["rpc_methods"];

/**
 * paritytech/polkadot-sdk substrate/utils/frame/rpc/system/src/lib.rs (frame SystemApi), merged
 * by opentensor/subtensor node/src/rpc.rs. Not served: system_dryRun (alias system_dryRunAt).
 */
const FRAME_SYSTEM = ["system_accountNextIndex", "account_nextIndex"];

/** paritytech/polkadot-sdk substrate/frame/transaction-payment/rpc/src/lib.rs, merged by node/src/rpc.rs. */
const PAYMENT = ["payment_queryInfo", "payment_queryFeeDetails"];

/**
 * opentensor/subtensor pallets/subtensor/rpc/src/lib.rs (SubtensorCustomApi): the methods whose
 * runtime API the local chain answers. Not served: delegateInfo_getDelegates,
 * delegateInfo_getDelegate, delegateInfo_getDelegated, subnetInfo_getAllMechagraphs,
 * subnetInfo_getMechagraph, subnetInfo_getSubnetState, subnetInfo_getColdkeyAutoStakeHotkey,
 * subnetInfo_getSubnetToPrune.
 */
const SUBTENSOR = [
  "neuronInfo_getNeuronsLite",
  "neuronInfo_getNeuronLite",
  "neuronInfo_getNeurons",
  "neuronInfo_getNeuron",
  "subnetInfo_getSubnetInfo",
  "subnetInfo_getSubnetsInfo",
  "subnetInfo_getSubnetInfo_v2",
  "subnetInfo_getSubnetsInfo_v2",
  "subnetInfo_getSubnetHyperparams",
  "subnetInfo_getSubnetHyperparamsV2",
  "subnetInfo_getAllDynamicInfo",
  "subnetInfo_getDynamicInfo",
  "subnetInfo_getAllMetagraphs",
  "subnetInfo_getMetagraph",
  "subnetInfo_getSelectiveMetagraph",
  "subnetInfo_getSelectiveMechagraph",
  "subnetInfo_getLockCost",
];

const EXPECTED = [
  ...CHAIN,
  ...STATE,
  ...AUTHOR,
  ...SYSTEM,
  ...SERVER,
  ...FRAME_SYSTEM,
  ...PAYMENT,
  ...SUBTENSOR,
];

describe("rpc_methods", () => {
  it("serves exactly the pinned subset of a subtensor node's methods, sorted", async () => {
    const chain = new Chain(loadRuntime(), { blockTimeMs: 0, genesis: await buildGenesis({ netuid: 3 }) });
    const served = new ChainServer(chain).methods();
    assert.equal(new Set(EXPECTED).size, EXPECTED.length, "no name is listed twice");
    assert.deepEqual(served, [...EXPECTED].sort());
    assert.deepEqual(served, [...served].sort(), "sorted as the node sorts them");
  });

  it("registers each alias for a served method", () => {
    for (const [alias, target] of Object.entries(ALIASES)) {
      assert.ok(EXPECTED.includes(alias), alias);
      assert.ok(EXPECTED.includes(target), target);
    }
  });
});
