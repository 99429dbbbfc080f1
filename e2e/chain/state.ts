/**
 * The local chain's world: accounts, subnets with their neurons, commitments. Plain data,
 * changed only by the dispatch functions in dispatch.ts and the test controls in
 * testing.ts; storage.ts turns it into the real chain's storage keys and values.
 * Accounts are 0x-prefixed hex of the 32-byte public key.
 */

export type AccountHex = string;

export interface AxonInfo {
  block: bigint;
  version: number;
  ip: bigint;
  port: number;
  ipType: number;
  protocol: number;
  placeholder1: number;
  placeholder2: number;
}

export interface Neuron {
  hotkey: AccountHex;
  coldkey: AccountHex;
  active: boolean;
  /** Alpha staked on the hotkey in this subnet (RAO). */
  stake: bigint;
  rank: number;
  trust: number;
  consensus: number;
  incentive: number;
  dividends: number;
  validatorTrust: number;
  emission: bigint;
  validatorPermit: boolean;
  lastUpdate: bigint;
  blockAtRegistration: bigint;
  pruningScore: number;
  axon: AxonInfo | undefined;
  /** (uid, weight) pairs as last set by this neuron, weights scaled so the largest is 65535. */
  weights: [number, number][];
}

export interface SubnetParams {
  tempo: number;
  maxAllowedUids: number;
  immunityPeriod: number;
  activityCutoff: number;
  weightsVersionKey: bigint;
  weightsSetRateLimit: bigint;
  commitRevealWeightsEnabled: boolean;
  /** Epochs between a weights commit and its reveal (RevealPeriodEpochs, production default 1). */
  revealPeriodEpochs: number;
  maxRegistrationsPerBlock: number;
  /** Registration cost in RAO, burned from the coldkey. */
  burn: bigint;
}

export interface Subnet extends SubnetParams {
  netuid: number;
  owner: AccountHex;
  neurons: Neuron[];
  registrationsThisBlock: number;
}

export interface Account {
  nonce: number;
  free: bigint;
}

export interface Commitment {
  deposit: bigint;
  block: number;
  /** SCALE bytes of the CommitmentInfo as submitted. */
  info: Uint8Array;
}

/** A weights commit waiting for its reveal (an entry of WeightCommits). */
export interface WeightCommit {
  /** blake2_256 of the SCALE-encoded (hotkey, netuid index, uids, values, salt, version key). */
  hash: string;
  commitBlock: bigint;
  firstRevealBlock: bigint;
  lastRevealBlock: bigint;
}

export interface ChainState {
  accounts: Map<AccountHex, Account>;
  subnets: Map<number, Subnet>;
  /** Coldkey owning each hotkey. */
  owners: Map<AccountHex, AccountHex>;
  /** Keyed by `${netuid}/${hotkey}`. */
  commitments: Map<string, Commitment>;
  /** Unrevealed weight commits, oldest first, keyed by `${netuidIndex}/${hotkey}`. */
  weightCommits: Map<string, WeightCommit[]>;
}

export const ZERO_ACCOUNT: AccountHex = "0x" + "00".repeat(32);

/** Defaults of a local subnet: the production values except where noted. */
export const LOCAL_SUBNET_DEFAULTS: SubnetParams = {
  tempo: 360,
  maxAllowedUids: 256,
  immunityPeriod: 4096,
  activityCutoff: 5000,
  weightsVersionKey: 0n,
  // Production uses 100 blocks; a local chain makes blocks fast, so keep the same limit.
  weightsSetRateLimit: 100n,
  // Production subnets default to commit-reveal; the local subnet takes set_weights directly.
  commitRevealWeightsEnabled: false,
  revealPeriodEpochs: 1,
  maxRegistrationsPerBlock: 256,
  burn: 1_000_000_000n,
};

export function emptyState(): ChainState {
  return {
    accounts: new Map(),
    subnets: new Map(),
    owners: new Map(),
    commitments: new Map(),
    weightCommits: new Map(),
  };
}

export function newSubnet(netuid: number, owner: AccountHex, params: Partial<SubnetParams> = {}): Subnet {
  return { netuid, owner, neurons: [], registrationsThisBlock: 0, ...LOCAL_SUBNET_DEFAULTS, ...params };
}

export function newNeuron(hotkey: AccountHex, coldkey: AccountHex, block: bigint): Neuron {
  return {
    hotkey,
    coldkey,
    active: true,
    stake: 0n,
    rank: 0,
    trust: 0,
    consensus: 0,
    incentive: 0,
    dividends: 0,
    validatorTrust: 0,
    emission: 0n,
    validatorPermit: false,
    lastUpdate: block,
    blockAtRegistration: block,
    pruningScore: 65535,
    axon: undefined,
    weights: [],
  };
}

export function account(state: ChainState, who: AccountHex): Account {
  let a = state.accounts.get(who);
  if (!a) {
    a = { nonce: 0, free: 0n };
    state.accounts.set(who, a);
  }
  return a;
}

export function uidOf(subnet: Subnet, hotkey: AccountHex): number | undefined {
  const i = subnet.neurons.findIndex((n) => n.hotkey === hotkey);
  return i < 0 ? undefined : i;
}

export function commitmentKey(netuid: number, hotkey: AccountHex): string {
  return `${netuid}/${hotkey}`;
}

/** Key of a hotkey's weight commits on a subnet's storage index (netuid for mechanism 0). */
export function weightCommitKey(netuidIndex: number, hotkey: AccountHex): string {
  return `${netuidIndex}/${hotkey}`;
}

/** Deep copy, so a block's state can be kept while the next one is built. */
export function cloneState(s: ChainState): ChainState {
  return {
    accounts: new Map([...s.accounts].map(([k, v]) => [k, { ...v }])),
    subnets: new Map(
      [...s.subnets].map(([k, v]) => [
        k,
        {
          ...v,
          neurons: v.neurons.map((n) => ({
            ...n,
            axon: n.axon ? { ...n.axon } : undefined,
            weights: n.weights.map(([u, w]) => [u, w] as [number, number]),
          })),
        },
      ]),
    ),
    owners: new Map(s.owners),
    commitments: new Map([...s.commitments].map(([k, v]) => [k, { ...v }])),
    weightCommits: new Map([...s.weightCommits].map(([k, v]) => [k, v.map((c) => ({ ...c }))])),
  };
}
