/**
 * The calls the local chain executes, with the production runtime's checks and error
 * names. Each function checks everything first and changes the state only when it
 * succeeds, so a failed dispatch leaves the world as it was (the caller still bumps the
 * sender's nonce, as the real chain does).
 */
import {
  account,
  commitmentKey,
  newNeuron,
  uidOf,
  type AccountHex,
  type ChainState,
  type Neuron,
  type Subnet,
} from "./state.ts";

export interface EventSpec {
  pallet: string;
  name: string;
  data: unknown[];
}

export interface DispatchFailure {
  pallet: string;
  error: string;
}

export type DispatchOutcome = { ok: true; events: EventSpec[] } | { ok: false; failure: DispatchFailure };

export interface DispatchContext {
  block: bigint;
}

const fail = (pallet: string, error: string): DispatchOutcome => ({ ok: false, failure: { pallet, error } });
const st = (error: string) => fail("SubtensorModule", error);

/** Most commitment fields a CommitmentInfo may carry (Commitments::MaxFields). */
export const MAX_COMMITMENT_FIELDS = 3;
const U16_MAX = 65535;

function subnetOf(state: ChainState, netuid: number): Subnet | undefined {
  return state.subnets.get(netuid);
}

/** Index of the neuron a new registration replaces: lowest pruning score among non-immune ones. */
export function pruneCandidate(subnet: Subnet, block: bigint): number | undefined {
  let best: number | undefined;
  subnet.neurons.forEach((n, uid) => {
    const immune = block - n.blockAtRegistration < BigInt(subnet.immunityPeriod);
    if (immune) return;
    if (best === undefined || n.pruningScore < subnet.neurons[best]!.pruningScore) best = uid;
  });
  return best;
}

/** Puts a new neuron on `uid` (append when uid equals the count), clearing what the old hotkey had. */
export function placeNeuron(state: ChainState, subnet: Subnet, uid: number, neuron: Neuron): void {
  const old = subnet.neurons[uid];
  if (old) {
    state.commitments.delete(commitmentKey(subnet.netuid, old.hotkey));
    for (const n of subnet.neurons) n.weights = n.weights.filter(([u]) => u !== uid);
  }
  subnet.neurons[uid] = neuron;
}

export function burnedRegister(
  state: ChainState,
  ctx: DispatchContext,
  coldkey: AccountHex,
  netuid: number,
  hotkey: AccountHex,
): DispatchOutcome {
  const subnet = subnetOf(state, netuid);
  if (!subnet) return st("SubnetNotExists");
  if (uidOf(subnet, hotkey) !== undefined) return st("HotKeyAlreadyRegisteredInSubNet");
  const owner = state.owners.get(hotkey);
  if (owner !== undefined && owner !== coldkey) return st("NonAssociatedColdKey");
  if (subnet.registrationsThisBlock >= subnet.maxRegistrationsPerBlock)
    return st("TooManyRegistrationsThisBlock");
  const payer = account(state, coldkey);
  if (payer.free < subnet.burn) return st("NotEnoughBalanceToStake");
  let uid = subnet.neurons.length;
  if (uid >= subnet.maxAllowedUids) {
    const candidate = pruneCandidate(subnet, ctx.block);
    if (candidate === undefined) return st("NoNeuronIdAvailable");
    uid = candidate;
  }
  payer.free -= subnet.burn;
  state.owners.set(hotkey, coldkey);
  placeNeuron(state, subnet, uid, newNeuron(hotkey, coldkey, ctx.block));
  subnet.registrationsThisBlock += 1;
  return {
    ok: true,
    events: [{ pallet: "SubtensorModule", name: "NeuronRegistered", data: [netuid, uid, hotkey] }],
  };
}

/** Scales weights so the largest becomes 65535 (the runtime's max-upscale). */
export function maxUpscale(weights: readonly number[]): number[] {
  const max = Math.max(0, ...weights);
  if (max === 0) return weights.map(() => 0);
  return weights.map((w) => Number((BigInt(w) * BigInt(U16_MAX)) / BigInt(max)));
}

export function setWeights(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  dests: number[],
  weights: number[],
  versionKey: bigint,
): DispatchOutcome {
  const subnet = subnetOf(state, netuid);
  if (!subnet) return st("SubnetNotExists");
  if (subnet.commitRevealWeightsEnabled) return st("CommitRevealEnabled");
  if (dests.length !== weights.length) return st("WeightVecNotEqualSize");
  const uid = uidOf(subnet, hotkey);
  if (uid === undefined) return st("HotKeyNotRegisteredInSubNet");
  if (versionKey < subnet.weightsVersionKey) return st("IncorrectWeightVersionKey");
  const me = subnet.neurons[uid]!;
  if (!me.validatorPermit) return st("NeuronNoValidatorPermit");
  if (ctx.block - me.lastUpdate < subnet.weightsSetRateLimit) return st("SettingWeightsTooFast");
  if (new Set(dests).size !== dests.length) return st("DuplicateUids");
  if (dests.some((d) => d >= subnet.neurons.length)) return st("UidVecContainInvalidOne");
  const scaled = maxUpscale(weights);
  me.weights = dests
    .map((d, i) => [d, scaled[i]!] as [number, number])
    .filter(([, w]) => w > 0)
    .sort((a, b) => a[0] - b[0]);
  me.lastUpdate = ctx.block;
  return { ok: true, events: [{ pallet: "SubtensorModule", name: "WeightsSet", data: [netuid, uid] }] };
}

export interface ServeAxonArgs {
  netuid: number;
  version: number;
  ip: bigint;
  port: number;
  ipType: number;
  protocol: number;
  placeholder1: number;
  placeholder2: number;
}

export function serveAxon(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  a: ServeAxonArgs,
): DispatchOutcome {
  const subnet = subnetOf(state, a.netuid);
  if (!subnet) return st("SubnetNotExists");
  const uid = uidOf(subnet, hotkey);
  if (uid === undefined) return st("HotKeyNotRegisteredInNetwork");
  if (a.ipType !== 4 && a.ipType !== 6) return st("InvalidIpType");
  const maxIp = a.ipType === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
  if (a.ip === 0n || a.ip > maxIp) return st("InvalidIpAddress");
  if (a.port === 0) return st("InvalidPort");
  subnet.neurons[uid]!.axon = {
    block: ctx.block,
    version: a.version,
    ip: a.ip,
    port: a.port,
    ipType: a.ipType,
    protocol: a.protocol,
    placeholder1: a.placeholder1,
    placeholder2: a.placeholder2,
  };
  return { ok: true, events: [{ pallet: "SubtensorModule", name: "AxonServed", data: [a.netuid, hotkey] }] };
}

export function setCommitment(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  fieldCount: number,
  info: Uint8Array,
): DispatchOutcome {
  const subnet = subnetOf(state, netuid);
  if (!subnet || uidOf(subnet, hotkey) === undefined) return fail("Commitments", "AccountNotAllowedCommit");
  if (fieldCount > MAX_COMMITMENT_FIELDS) return fail("Commitments", "TooManyFieldsInCommitmentInfo");
  state.commitments.set(commitmentKey(netuid, hotkey), { deposit: 0n, block: Number(ctx.block), info });
  return { ok: true, events: [{ pallet: "Commitments", name: "Commitment", data: [netuid, hotkey] }] };
}
