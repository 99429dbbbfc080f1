/**
 * Runtime APIs beyond the lite neuron calls, answered from the chain state the same way the
 * storage is: the SDK's metagraph, full neurons, stake info, subnet info, hyperparameters,
 * dynamic info and fee estimation (the same fee the chain then charges). Inputs are decoded and outputs encoded with the types the
 * metadata declares for each method, so a wrong layout cannot be written down here; a struct
 * field this chain has no notion of (alpha pools, liquid alpha, identities) is left to the
 * type's zero value, which is what a fresh production subnet reports too.
 */
import type { GenericExtrinsic } from "@polkadot/types";
import type { Codec } from "@polkadot/types-codec/types";
import { decodableSignature, extrinsicFee, RpcError } from "./extrinsics.ts";
import { feeConstants, type DispatchInfo, type Fee } from "./fees.ts";
import { EMPTY_AXON, lite } from "./neurons.ts";
import type { Runtime } from "./runtime.ts";
import type { ChainState, Neuron, Subnet } from "./state.ts";

type Value = Record<string, unknown>;
type Handler = (rt: Runtime, state: ChainState, args: Codec[], block: bigint) => unknown;

function neuronInfo(netuid: number, uid: number, n: Neuron): Value {
  return { ...lite(netuid, uid, n), weights: n.weights, bonds: [] };
}

/** Fields shared by the metagraph, subnet info and hyperparameters, from the subnet's parameters. */
function params(s: Subnet): Value {
  return {
    netuid: s.netuid,
    tempo: s.tempo,
    immunityPeriod: s.immunityPeriod,
    activityCutoff: s.activityCutoff,
    weightsVersion: s.weightsVersionKey,
    weightsRateLimit: s.weightsSetRateLimit,
    commitRevealWeightsEnabled: s.commitRevealWeightsEnabled,
    commitRevealPeriod: s.revealPeriodEpochs,
    maxRegsPerBlock: s.maxRegistrationsPerBlock,
    maxUids: s.maxAllowedUids,
    maxAllowedUids: s.maxAllowedUids,
    maxWeightsLimit: 65535,
    maxValidators: s.maxAllowedUids,
    maxAllowedValidators: s.maxAllowedUids,
    burn: s.burn,
    minBurn: s.burn,
    maxBurn: s.burn,
    registrationAllowed: true,
    subnetIsActive: true,
    transfersEnabled: true,
    subnetworkN: s.neurons.length,
    numUids: s.neurons.length,
    owner: s.owner,
    ownerHotkey: s.owner,
    ownerColdkey: s.owner,
  };
}

function metagraph(s: Subnet, block: bigint): Value {
  const ns = s.neurons;
  return {
    ...params(s),
    block,
    hotkeys: ns.map((n) => n.hotkey),
    coldkeys: ns.map((n) => n.coldkey),
    identities: ns.map(() => null),
    axons: ns.map((n) => n.axon ?? EMPTY_AXON),
    active: ns.map((n) => n.active),
    validatorPermit: ns.map((n) => n.validatorPermit),
    pruningScore: ns.map((n) => n.pruningScore),
    lastUpdate: ns.map((n) => n.lastUpdate),
    emission: ns.map((n) => n.emission),
    dividends: ns.map((n) => n.dividends),
    incentives: ns.map((n) => n.incentive),
    consensus: ns.map((n) => n.consensus),
    trust: ns.map((n) => n.trust),
    rank: ns.map((n) => n.rank),
    blockAtRegistration: ns.map((n) => n.blockAtRegistration),
    alphaStake: ns.map((n) => n.stake),
    taoStake: ns.map(() => 0n),
    totalStake: ns.map((n) => n.stake),
    taoDividendsPerHotkey: [],
    alphaDividendsPerHotkey: [],
    validators: ns.flatMap((n, uid) => (n.validatorPermit ? [uid] : [])),
    commitments: [],
  };
}

function stakeInfo(netuid: number, n: Neuron): Value {
  return { hotkey: n.hotkey, coldkey: n.coldkey, netuid, stake: n.stake, isRegistered: true };
}

function stakesOf(state: ChainState, coldkey: string): Value[] {
  const out: Value[] = [];
  for (const s of state.subnets.values())
    for (const n of s.neurons) if (n.coldkey === coldkey && n.stake > 0n) out.push(stakeInfo(s.netuid, n));
  return out;
}

const num = (c: Codec | undefined) => Number(c!.toString());
const acct = (c: Codec | undefined) => c!.toHex();
const subnet = (state: ChainState, c: Codec | undefined) => state.subnets.get(num(c));

/**
 * The selective metagraph: field i (in declaration order) is Some when i is requested; netuid
 * always. Values come from the full metagraph encoded first, so fields this chain leaves at
 * zero are Some(0) rather than missing.
 */
function selective(rt: Runtime, outType: string, full: Value, indexes: number[]): Value {
  const inner = rt.registry.createTypeUnsafe(outType, []) as unknown as {
    unwrapOrDefault(): { defKeys: string[] };
  };
  const keys = inner.unwrapOrDefault().defKeys;
  const encoded = rt.registry.createTypeUnsafe(outputType(rt, "SubnetInfoRuntimeApi_get_metagraph"), [
    full,
  ]) as unknown as {
    unwrap(): { get(k: string): Codec | undefined };
  };
  const struct = encoded.unwrap();
  const want = new Set(indexes);
  return Object.fromEntries(
    keys.map((k, i) => [k, i === 0 || want.has(i) ? (struct.get(k) ?? full[k]) : null]),
  );
}

const handlers: Record<string, Handler> = {
  NeuronInfoRuntimeApi_get_neurons: (_rt, st, [netuid]) =>
    subnet(st, netuid)?.neurons.map((n, uid) => neuronInfo(num(netuid), uid, n)) ?? [],
  NeuronInfoRuntimeApi_get_neuron: (_rt, st, [netuid, uid]) => {
    const n = subnet(st, netuid)?.neurons[num(uid)];
    return n ? neuronInfo(num(netuid), num(uid), n) : null;
  },
  SubnetInfoRuntimeApi_get_metagraph: (_rt, st, [netuid], block) => {
    const s = subnet(st, netuid);
    return s ? metagraph(s, block) : null;
  },
  SubnetInfoRuntimeApi_get_all_metagraphs: (_rt, st, _a, block) =>
    [...st.subnets.values()].map((s) => metagraph(s, block)),
  SubnetInfoRuntimeApi_get_selective_metagraph: (rt, st, [netuid, idx], block) => {
    const s = subnet(st, netuid);
    const t = outputType(rt, "SubnetInfoRuntimeApi_get_selective_metagraph");
    return s ? selective(rt, t, metagraph(s, block), (idx!.toJSON() as number[]) ?? []) : null;
  },
  // Only the main mechanism (0) exists on the local chain.
  SubnetInfoRuntimeApi_get_selective_mechagraph: (rt, st, [netuid, mech, idx], block) => {
    const s = subnet(st, netuid);
    const t = outputType(rt, "SubnetInfoRuntimeApi_get_selective_mechagraph");
    if (!s || num(mech) !== 0) return null;
    return selective(rt, t, metagraph(s, block), (idx!.toJSON() as number[]) ?? []);
  },
  SubnetInfoRuntimeApi_get_subnet_info_v2: (_rt, st, [netuid]) => {
    const s = subnet(st, netuid);
    return s ? params(s) : null;
  },
  SubnetInfoRuntimeApi_get_subnets_info_v2: (_rt, st) => [...st.subnets.values()].map(params),
  SubnetInfoRuntimeApi_get_subnet_info: (_rt, st, [netuid]) => {
    const s = subnet(st, netuid);
    return s ? params(s) : null;
  },
  SubnetInfoRuntimeApi_get_subnets_info: (_rt, st) => [...st.subnets.values()].map(params),
  SubnetInfoRuntimeApi_get_subnet_hyperparams: (_rt, st, [netuid]) => {
    const s = subnet(st, netuid);
    return s ? params(s) : null;
  },
  SubnetInfoRuntimeApi_get_subnet_hyperparams_v2: (_rt, st, [netuid]) => {
    const s = subnet(st, netuid);
    return s ? params(s) : null;
  },
  SubnetInfoRuntimeApi_get_dynamic_info: (_rt, st, [netuid]) => {
    const s = subnet(st, netuid);
    return s ? params(s) : null;
  },
  SubnetInfoRuntimeApi_get_all_dynamic_info: (_rt, st) => [...st.subnets.values()].map(params),
  StakeInfoRuntimeApi_get_stake_info_for_coldkey: (_rt, st, [ck]) => stakesOf(st, acct(ck)),
  StakeInfoRuntimeApi_get_stake_info_for_coldkeys: (_rt, st, [cks]) =>
    (cks as unknown as Codec[]).map((c) => [c.toHex(), stakesOf(st, c.toHex())]),
  StakeInfoRuntimeApi_get_stake_info_for_hotkey_coldkey_netuid: (_rt, st, [hk, ck, netuid]) => {
    const n = subnet(st, netuid)?.neurons.find((x) => x.hotkey === acct(hk) && x.coldkey === acct(ck));
    return n ? stakeInfo(num(netuid), n) : null;
  },
  SubnetRegistrationRuntimeApi_get_network_registration_cost: () => 0n,
};

function method(rt: Runtime, name: string) {
  for (const a of rt.metadata.asLatest.apis)
    for (const m of a.methods) if (`${a.name.toString()}_${m.name.toString()}` === name) return m;
  return undefined;
}

function outputType(rt: Runtime, name: string): string {
  return rt.registry.createLookupType(method(rt, name)!.output);
}

const undecodable = (name: string) =>
  new RpcError(4003, "Client error", `Execution failed: Could not decode input of ${name}`);

/** Decodes the SCALE arguments of `name` by the input types in the metadata; all bytes must be used. */
function decodeInputs(rt: Runtime, name: string, input: Uint8Array): Codec[] {
  const m = method(rt, name)!;
  const out: Codec[] = [];
  let at = 0;
  try {
    for (const p of m.inputs) {
      const c = rt.registry.createTypeUnsafe(rt.registry.createLookupType(p.type), [input.subarray(at)]);
      at += c.encodedLength;
      out.push(c);
    }
  } catch {
    throw undecodable(name);
  }
  if (at !== input.length) throw undecodable(name);
  return out;
}

/**
 * The extrinsic and length a fee query is about: TransactionPaymentApi takes the extrinsic
 * (SCALE, with its length prefix) and the u32 length to charge for. The signature is not
 * checked (wallets estimate with a dummy one), as on a node.
 */
export function priceExtrinsic(
  rt: Runtime,
  ext: GenericExtrinsic,
  len: number,
  what: string,
): { info: DispatchInfo; fee: Fee } {
  const priced = extrinsicFee(feeConstants(rt), ext, len);
  if (!priced)
    throw new RpcError(
      4003,
      "Client error",
      `Execution failed: ${what}: the local chain has no weight for ${ext.method.section}.${ext.method.method}`,
    );
  return priced;
}

function feeQuery(rt: Runtime, name: string, input: Uint8Array): { info: DispatchInfo; fee: Fee } {
  let ext: GenericExtrinsic;
  try {
    ext = rt.registry.createType("Extrinsic", decodableSignature(rt, input)) as GenericExtrinsic;
  } catch {
    throw undecodable(name);
  }
  const rest = input.subarray(ext.encodedLength);
  if (rest.length !== 4) throw undecodable(name);
  const len = rest[0]! | (rest[1]! << 8) | (rest[2]! << 16) | (rest[3]! * 2 ** 24);
  return priceExtrinsic(rt, ext, len, name);
}

/** RuntimeDispatchInfo of an extrinsic: total weight, class and the partial fee that is then charged. */
export function dispatchInfoValue(info: DispatchInfo, fee: Fee): Record<string, unknown> {
  return {
    weight: { refTime: info.totalWeight.refTime, proofSize: info.totalWeight.proofSize },
    class: info.class,
    partialFee: fee.partialFee,
  };
}

/** FeeDetails: the inclusion fee's parts (none for a call that does not pay), tip 0 as queried. */
export function feeDetailsValue(fee: Fee): Record<string, unknown> {
  return { inclusionFee: fee.inclusionFee ?? null, tip: 0n };
}

function queryInfo(rt: Runtime, input: Uint8Array): Uint8Array {
  const name = "TransactionPaymentApi_query_info";
  const { info, fee } = feeQuery(rt, name, input);
  return rt.registry.createTypeUnsafe(outputType(rt, name), [dispatchInfoValue(info, fee)]).toU8a();
}

function queryFeeDetails(rt: Runtime, input: Uint8Array): Uint8Array {
  const name = "TransactionPaymentApi_query_fee_details";
  const { fee } = feeQuery(rt, name, input);
  return rt.registry.createTypeUnsafe(outputType(rt, name), [feeDetailsValue(fee)]).toU8a();
}

/** The answer of runtime API `name`, or undefined when this chain does not implement it. */
export function runtimeApiCall(
  rt: Runtime,
  state: ChainState,
  name: string,
  input: Uint8Array,
  block: bigint,
): Uint8Array | undefined {
  if (name === "TransactionPaymentApi_query_info") return queryInfo(rt, input);
  if (name === "TransactionPaymentApi_query_fee_details") return queryFeeDetails(rt, input);
  const h = handlers[name];
  if (!h || !method(rt, name)) return undefined;
  const args = decodeInputs(rt, name, input);
  const value = h(rt, state, args, block);
  return rt.registry.createTypeUnsafe(outputType(rt, name), [value]).toU8a();
}
