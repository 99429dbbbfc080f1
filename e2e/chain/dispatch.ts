/**
 * The calls the local chain executes, with the production runtime's checks and error
 * names. Each function checks everything first and changes the state only when it
 * succeeds, so a failed dispatch leaves the world as it was (the caller still bumps the
 * sender's nonce and keeps the fee, as the real chain does).
 */
import { compactToU8a, hexToU8a, u8aConcat, u8aToHex } from "@polkadot/util";
import { blake2AsU8a } from "@polkadot/util-crypto";
import {
  account,
  commitmentKey,
  newNeuron,
  uidOf,
  weightCommitKey,
  type AccountHex,
  type ChainState,
  type Neuron,
  type Subnet,
  type WeightCommit,
} from "./state.ts";

export interface EventSpec {
  pallet: string;
  name: string;
  data: unknown[];
}

/**
 * Why a dispatch failed: a pallet's module error by name, a `Token` error of the fungible
 * traits (e.g. `FundsUnavailable`), or, with pallet "", a plain DispatchError variant
 * (`Other`, `CannotLookup`).
 */
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
/** Subnets per mechanism in a storage index (GLOBAL_MAX_SUBNET_COUNT). */
const GLOBAL_MAX_SUBNET_COUNT = 4096;
/** Unrevealed commits a hotkey may hold per subnet. */
export const MAX_UNREVEALED_COMMITS = 10;

function subnetOf(state: ChainState, netuid: number): Subnet | undefined {
  return state.subnets.get(netuid);
}

/** CommitRevealWeightsEnabled of a subnet; the storage default (true) for one that does not exist. */
function commitRevealEnabled(state: ChainState, netuid: number): boolean {
  return subnetOf(state, netuid)?.commitRevealWeightsEnabled ?? true;
}

/** The storage index of a subnet's mechanism (weights, commits and LastUpdate are kept under it). */
export function netuidIndex(netuid: number, mecid: number): number {
  return mecid * GLOBAL_MAX_SUBNET_COUNT + netuid;
}

/**
 * The weights rate limit: a neuron whose LastUpdate is 0 has never set weights and passes;
 * otherwise at least `weightsSetRateLimit` blocks must have passed.
 */
export function passesRateLimit(subnet: Subnet, neuron: Neuron, block: bigint): boolean {
  if (neuron.lastUpdate === 0n) return true;
  return block - neuron.lastUpdate >= subnet.weightsSetRateLimit;
}

/** Epoch of a block on a subnet: (block + netuid + 1) / (tempo + 1). */
export function epochIndex(subnet: Subnet, block: bigint): bigint {
  return (block + BigInt(subnet.netuid) + 1n) / (BigInt(subnet.tempo) + 1n);
}

/** First and last block of the epoch in which a commit made at `commitBlock` must be revealed. */
export function revealBlocks(subnet: Subnet, commitBlock: bigint): [bigint, bigint] {
  const tempoPlusOne = BigInt(subnet.tempo) + 1n;
  const revealEpoch = epochIndex(subnet, commitBlock) + BigInt(subnet.revealPeriodEpochs);
  const first = revealEpoch * tempoPlusOne - (BigInt(subnet.netuid) + 1n);
  return [first < 0n ? 0n : first, (first < 0n ? 0n : first) + BigInt(subnet.tempo)];
}

/** A reveal is accepted only in the epoch exactly `revealPeriodEpochs` after the commit's. */
export function isRevealBlockRange(subnet: Subnet, commitBlock: bigint, block: bigint): boolean {
  return epochIndex(subnet, block) === epochIndex(subnet, commitBlock) + BigInt(subnet.revealPeriodEpochs);
}

export function isCommitExpired(subnet: Subnet, commitBlock: bigint, block: bigint): boolean {
  return epochIndex(subnet, block) > epochIndex(subnet, commitBlock) + BigInt(subnet.revealPeriodEpochs);
}

const u16le = (n: number) => new Uint8Array([n & 255, (n >> 8) & 255]);
const u16vec = (xs: readonly number[]) => u8aConcat(compactToU8a(xs.length), ...xs.map(u16le));
function u64le(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((n >> BigInt(8 * i)) & 255n);
  return out;
}

/**
 * The hash a validator commits: blake2_256 of the SCALE encoding of
 * (hotkey, netuid index, uids, values, salt, version key), the runtime's get_commit_hash.
 */
export function commitHash(
  hotkey: AccountHex,
  netuidIdx: number,
  uids: readonly number[],
  values: readonly number[],
  salt: readonly number[],
  versionKey: bigint,
): string {
  const bytes = u8aConcat(
    hexToU8a(hotkey),
    u16le(netuidIdx),
    u16vec(uids),
    u16vec(values),
    u16vec(salt),
    u64le(versionKey),
  );
  return u8aToHex(blake2AsU8a(bytes, 256));
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

/**
 * Weights of a validator (internal_set_weights): the checks in the runtime's order. With
 * commit-reveal on, the rate limit was applied at commit time and LastUpdate is not moved.
 */
function applyWeights(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  mecid: number,
  dests: number[],
  weights: number[],
  versionKey: bigint,
): DispatchOutcome {
  if (dests.length !== weights.length) return st("WeightVecNotEqualSize");
  const subnet = subnetOf(state, netuid);
  if (!subnet || mecid !== 0) return st("MechanismDoesNotExist");
  if (dests.length > subnet.neurons.length) return st("UidsLengthExceedUidsInSubNet");
  const uid = uidOf(subnet, hotkey);
  if (uid === undefined) return st("HotKeyNotRegisteredInSubNet");
  if (subnet.weightsVersionKey !== 0n && versionKey < subnet.weightsVersionKey)
    return st("IncorrectWeightVersionKey");
  const me = subnet.neurons[uid]!;
  if (!subnet.commitRevealWeightsEnabled && !passesRateLimit(subnet, me, ctx.block))
    return st("SettingWeightsTooFast");
  // A neuron may always put a single weight on itself.
  const selfWeight = weights.length === 1 && dests[0] === uid;
  if (!selfWeight && !me.validatorPermit) return st("NeuronNoValidatorPermit");
  if (new Set(dests).size !== dests.length) return st("DuplicateUids");
  if (dests.some((d) => d >= subnet.neurons.length)) return st("UidVecContainInvalidOne");
  const scaled = maxUpscale(weights);
  me.weights = dests
    .map((d, i) => [d, scaled[i]!] as [number, number])
    .filter(([, w]) => w > 0)
    .sort((a, b) => a[0] - b[0]);
  if (!subnet.commitRevealWeightsEnabled) me.lastUpdate = ctx.block;
  return {
    ok: true,
    events: [{ pallet: "SubtensorModule", name: "WeightsSet", data: [netuidIndex(netuid, mecid), uid] }],
  };
}

/** set_weights / set_mechanism_weights: refused while the subnet uses commit-reveal. */
export function setWeights(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  dests: number[],
  weights: number[],
  versionKey: bigint,
  mecid = 0,
): DispatchOutcome {
  if (commitRevealEnabled(state, netuid)) return st("CommitRevealEnabled");
  return applyWeights(state, ctx, hotkey, netuid, mecid, dests, weights, versionKey);
}

/** Commits that are still revealable, and the hashes of those that expired, oldest first. */
function liveCommits(subnet: Subnet, commits: readonly WeightCommit[], block: bigint) {
  let i = 0;
  while (i < commits.length && isCommitExpired(subnet, commits[i]!.commitBlock, block)) i++;
  return { live: commits.slice(i), expired: commits.slice(0, i).map((c) => c.hash) };
}

/** commit_weights / commit_mechanism_weights: stores the hash to be revealed one reveal period later. */
export function commitWeights(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  mecid: number,
  hash: string,
): DispatchOutcome {
  const subnet = subnetOf(state, netuid);
  if (!subnet || mecid !== 0) return st("MechanismDoesNotExist");
  if (!subnet.commitRevealWeightsEnabled) return st("CommitRevealDisabled");
  const uid = uidOf(subnet, hotkey);
  if (uid === undefined) return st("HotKeyNotRegisteredInSubNet");
  const me = subnet.neurons[uid]!;
  if (!passesRateLimit(subnet, me, ctx.block)) return st("CommittingWeightsTooFast");
  const idx = netuidIndex(netuid, mecid);
  const key = weightCommitKey(idx, hotkey);
  const { live } = liveCommits(subnet, state.weightCommits.get(key) ?? [], ctx.block);
  if (live.length >= MAX_UNREVEALED_COMMITS) return st("TooManyUnrevealedCommits");
  const [firstRevealBlock, lastRevealBlock] = revealBlocks(subnet, ctx.block);
  state.weightCommits.set(key, [
    ...live,
    { hash, commitBlock: ctx.block, firstRevealBlock, lastRevealBlock },
  ]);
  me.lastUpdate = ctx.block;
  return {
    ok: true,
    events: [{ pallet: "SubtensorModule", name: "WeightsCommitted", data: [hotkey, idx, hash] }],
  };
}

/**
 * reveal_weights / reveal_mechanism_weights: the revealed values must hash to a live commit,
 * and the reveal must fall in the commit's reveal epoch; then the weights are set. The
 * commit queue is changed only when the whole reveal succeeds.
 */
export function revealWeights(
  state: ChainState,
  ctx: DispatchContext,
  hotkey: AccountHex,
  netuid: number,
  mecid: number,
  uids: number[],
  values: number[],
  salt: number[],
  versionKey: bigint,
): DispatchOutcome {
  const idx = netuidIndex(netuid, mecid);
  if (!commitRevealEnabled(state, netuid)) return st("CommitRevealDisabled");
  const key = weightCommitKey(idx, hotkey);
  const stored = state.weightCommits.get(key);
  const subnet = subnetOf(state, netuid);
  if (!stored || !subnet) return st("NoWeightsCommitFound");
  const { live, expired } = liveCommits(subnet, stored, ctx.block);
  const hash = commitHash(hotkey, idx, uids, values, salt, versionKey);
  const position = live.findIndex((c) => c.hash === hash);
  if (position < 0) {
    if (expired.includes(hash)) return st("ExpiredWeightCommit");
    return st(live.length === 0 ? "NoWeightsCommitFound" : "InvalidRevealCommitHashNotMatch");
  }
  if (!isRevealBlockRange(subnet, live[position]!.commitBlock, ctx.block)) return st("RevealTooEarly");
  const set = applyWeights(state, ctx, hotkey, netuid, mecid, uids, values, versionKey);
  if (!set.ok) return set;
  const rest = live.slice(position + 1);
  if (rest.length) state.weightCommits.set(key, rest);
  else state.weightCommits.delete(key);
  return {
    ok: true,
    events: [
      ...set.events,
      { pallet: "SubtensorModule", name: "WeightsRevealed", data: [hotkey, idx, hash] },
    ],
  };
}

/** The block of the commit, on any subnet and hotkey, whose hash is `hash` (find_commit_block_via_hash). */
export function findCommitBlock(state: ChainState, hash: string): bigint | undefined {
  for (const commits of state.weightCommits.values())
    for (const c of commits) if (c.hash === hash) return c.commitBlock;
  return undefined;
}

/** Codes of subtensor's CustomTransactionError the pool answers with ("Custom error: N"). */
export const CUSTOM_TX_ERROR = { CommitNotFound: 16, CommitBlockNotInRevealRange: 17 } as const;

/**
 * The pool check SubtensorTransactionExtension makes of reveal_weights (the mechanism
 * variant is not checked there): the revealed values must hash to a stored commit whose
 * reveal epoch is the block being built. Answers the custom error code, or undefined.
 */
export function revealPoolCheck(
  state: ChainState,
  nextBlock: bigint,
  hotkey: AccountHex,
  netuid: number,
  uids: number[],
  values: number[],
  salt: number[],
  versionKey: bigint,
): number | undefined {
  const hash = commitHash(hotkey, netuidIndex(netuid, 0), uids, values, salt, versionKey);
  const commitBlock = findCommitBlock(state, hash);
  if (commitBlock === undefined) return CUSTOM_TX_ERROR.CommitNotFound;
  const subnet = subnetOf(state, netuid);
  if (!subnet || !isRevealBlockRange(subnet, commitBlock, nextBlock))
    return CUSTOM_TX_ERROR.CommitBlockNotInRevealRange;
  return undefined;
}

/**
 * Balances.transfer_keep_alive: the sender must keep at least the existential deposit, a new
 * destination account must receive at least it. Errors are the fungible Token errors.
 */
export function transferKeepAlive(
  state: ChainState,
  from: AccountHex,
  dest: AccountHex | undefined,
  value: bigint,
  existentialDeposit: bigint,
): DispatchOutcome {
  if (dest === undefined) return fail("", "CannotLookup");
  const sender = account(state, from);
  const reducible = sender.free > existentialDeposit ? sender.free - existentialDeposit : 0n;
  if (value > reducible) return fail("Token", "FundsUnavailable");
  const before = state.accounts.get(dest)?.free ?? 0n;
  if (from !== dest && before === 0n && value < existentialDeposit) return fail("Token", "BelowMinimum");
  const events: EventSpec[] = [];
  if (from !== dest) {
    sender.free -= value;
    account(state, dest).free = before + value;
    if (before === 0n && value > 0n) {
      events.push({ pallet: "System", name: "NewAccount", data: [dest] });
      events.push({ pallet: "Balances", name: "Endowed", data: [dest, value] });
    }
  }
  events.push({ pallet: "Balances", name: "Transfer", data: [from, dest, value] });
  return { ok: true, events };
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
