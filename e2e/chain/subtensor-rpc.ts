/**
 * subtensor's own JSON-RPC methods (the node's `subtensor_custom_rpc`): each runs one runtime
 * API at an optional block hash and answers its SCALE output as a JSON array of bytes, the
 * way the node serializes a Vec<u8>; subnetInfo_getLockCost answers the balance as a number.
 * Only the methods whose runtime API the local chain answers are here (see docs/chain.md for
 * the rest). Parameters are JSON numbers (NetUid, u16 uid, u8 mechanism id) and arrays of
 * them, as the node's serde takes them.
 */
import { compactToU8a, u8aConcat, u8aToBn } from "@polkadot/util";
import { RpcError } from "./extrinsics.ts";
import { invalidParams, numParam } from "./params.ts";

type Arg = "netuid" | "uid" | "mecid" | "indexes";

interface Method {
  api: string;
  args: Arg[];
  /** Answer the output decoded as a balance instead of its bytes. */
  balance?: boolean;
}

/** Method name to runtime API and parameters, from opentensor/subtensor pallets/subtensor/rpc/src/lib.rs. */
export const SUBTENSOR_RPC: Record<string, Method> = {
  neuronInfo_getNeuronsLite: { api: "NeuronInfoRuntimeApi_get_neurons_lite", args: ["netuid"] },
  neuronInfo_getNeuronLite: {
    api: "NeuronInfoRuntimeApi_get_neuron_lite",
    args: ["netuid", "uid"],
  },
  neuronInfo_getNeurons: { api: "NeuronInfoRuntimeApi_get_neurons", args: ["netuid"] },
  neuronInfo_getNeuron: { api: "NeuronInfoRuntimeApi_get_neuron", args: ["netuid", "uid"] },
  subnetInfo_getSubnetInfo: { api: "SubnetInfoRuntimeApi_get_subnet_info", args: ["netuid"] },
  subnetInfo_getSubnetsInfo: { api: "SubnetInfoRuntimeApi_get_subnets_info", args: [] },
  subnetInfo_getSubnetInfo_v2: {
    api: "SubnetInfoRuntimeApi_get_subnet_info_v2",
    args: ["netuid"],
  },
  subnetInfo_getSubnetsInfo_v2: { api: "SubnetInfoRuntimeApi_get_subnets_info_v2", args: [] },
  subnetInfo_getSubnetHyperparams: {
    api: "SubnetInfoRuntimeApi_get_subnet_hyperparams",
    args: ["netuid"],
  },
  subnetInfo_getSubnetHyperparamsV2: {
    api: "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2",
    args: ["netuid"],
  },
  subnetInfo_getAllDynamicInfo: {
    api: "SubnetInfoRuntimeApi_get_all_dynamic_info",
    args: [],
  },
  subnetInfo_getDynamicInfo: {
    api: "SubnetInfoRuntimeApi_get_dynamic_info",
    args: ["netuid"],
  },
  subnetInfo_getAllMetagraphs: { api: "SubnetInfoRuntimeApi_get_all_metagraphs", args: [] },
  subnetInfo_getMetagraph: {
    api: "SubnetInfoRuntimeApi_get_metagraph",
    args: ["netuid"],
  },
  subnetInfo_getSelectiveMetagraph: {
    api: "SubnetInfoRuntimeApi_get_selective_metagraph",
    args: ["netuid", "indexes"],
  },
  subnetInfo_getSelectiveMechagraph: {
    api: "SubnetInfoRuntimeApi_get_selective_mechagraph",
    args: ["netuid", "mecid", "indexes"],
  },
  subnetInfo_getLockCost: {
    api: "SubnetRegistrationRuntimeApi_get_network_registration_cost",
    args: [],
    balance: true,
  },
};

const u16le = (n: number) => new Uint8Array([n & 255, n >> 8]);

function encodeArg(kind: Arg, v: unknown): Uint8Array {
  switch (kind) {
    case "netuid":
      return u16le(numParam(v, "netuid", 0, 65535));
    case "uid":
      return u16le(numParam(v, "uid", 0, 65535));
    case "mecid":
      return new Uint8Array([numParam(v, "mecid", 0, 255)]);
    case "indexes": {
      if (!Array.isArray(v)) throw invalidParams("metagraph_index must be an array of integers");
      return u8aConcat(
        compactToU8a(v.length),
        ...v.map((x, i) => u16le(numParam(x, `metagraph_index[${i}]`, 0, 65535))),
      );
    }
  }
}

/**
 * Answers a subtensor RPC: `params` are the method's arguments then the optional block hash;
 * `call` runs a runtime API at that hash. A failure of the call is the node's error code 1.
 */
export function subtensorRpc(
  m: Method,
  params: unknown[],
  call: (api: string, input: Uint8Array, hash: unknown) => Uint8Array,
): unknown {
  const input = u8aConcat(...m.args.map((kind, i) => encodeArg(kind, params[i])));
  const hash = params[m.args.length];
  let out: Uint8Array;
  try {
    out = call(m.api, input, hash);
  } catch (e) {
    if (e instanceof RpcError && e.code === -32602) throw e;
    const why = e instanceof RpcError ? (e.data ?? e.message) : (e as Error).message;
    throw new RpcError(1, `Unable to run ${m.api}: ${why}`);
  }
  return m.balance ? Number(u8aToBn(out, { isLe: true })) : Array.from(out);
}
