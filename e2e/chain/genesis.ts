/**
 * Genesis of a local chain: one subnet (the run's netuid), optionally seeded with neurons
 * whose hotkeys and coldkeys are derived from a dev seed (`//covenant/<i>/hot`), and funded
 * accounts. Deterministic: the same options give the same genesis.
 */
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { emptyState, newNeuron, newSubnet, account, type ChainState, type SubnetParams } from "./state.ts";
import { accountHex } from "./storage.ts";

export interface GenesisOptions {
  netuid: number;
  /** Neurons registered at genesis. */
  neurons?: number;
  /** Give neuron i a validator permit when i < validators. */
  validators?: number;
  subnet?: Partial<SubnetParams>;
  /** Accounts (SS58 or hex) to fund with `balance` RAO. */
  funded?: string[];
  balance?: bigint;
  /**
   * Hotkeys (SS58) registered at genesis after the seeded neurons, each its own coldkey: a peer
   * that registered and staked before the run began (a validator needs stake and a permit).
   */
  registered?: { hotkey: string; stake?: bigint; validatorPermit?: boolean }[];
  /**
   * More subnets, each with the same seeded and registered neurons (same keys, stake and
   * permits) and its own parameters, e.g. a subnet with commit-reveal on.
   */
  extraSubnets?: { netuid: number; subnet?: Partial<SubnetParams> }[];
}

export const DEV_BALANCE = 1_000_000_000_000n;

export function devKeyring(): Keyring {
  return new Keyring({ type: "sr25519", ss58Format: 42 });
}

/** Hot and cold dev keys of seeded neuron i. */
export function seededKeys(keyring: Keyring, i: number) {
  return {
    hot: keyring.addFromUri(`//covenant/${i}/hot`),
    cold: keyring.addFromUri(`//covenant/${i}/cold`),
  };
}

export async function buildGenesis(o: GenesisOptions): Promise<ChainState> {
  await cryptoWaitReady();
  const keyring = devKeyring();
  const state = emptyState();
  const owner = keyring.addFromUri("//Alice");
  const subnet = newSubnet(o.netuid, accountHex(owner.publicKey), o.subnet);
  state.subnets.set(o.netuid, subnet);
  for (const who of [owner.address, ...(o.funded ?? [])])
    account(state, accountHex(who)).free = o.balance ?? DEV_BALANCE;
  const n = o.neurons ?? 0;
  for (let i = 0; i < n; i++) {
    const { hot, cold } = seededKeys(keyring, i);
    const neuron = newNeuron(accountHex(hot.publicKey), accountHex(cold.publicKey), 0n);
    neuron.stake = BigInt(1000 + i) * 1_000_000_000n;
    neuron.validatorPermit = i < (o.validators ?? 0);
    neuron.incentive = (i * 1021) % 65536;
    neuron.consensus = (i * 517) % 65536;
    neuron.trust = (i * 301) % 65536;
    neuron.rank = (i * 97) % 65536;
    neuron.dividends = neuron.validatorPermit ? 1000 + i : 0;
    neuron.validatorTrust = neuron.validatorPermit ? 2000 + i : 0;
    neuron.emission = BigInt(i) * 12_345n;
    neuron.pruningScore = 1000 + i;
    subnet.neurons.push(neuron);
    state.owners.set(neuron.hotkey, neuron.coldkey);
    account(state, neuron.coldkey).free = o.balance ?? DEV_BALANCE;
  }
  for (const r of o.registered ?? []) {
    const key = accountHex(r.hotkey);
    const neuron = newNeuron(key, key, 0n);
    neuron.stake = r.stake ?? 0n;
    neuron.validatorPermit = r.validatorPermit ?? false;
    subnet.neurons.push(neuron);
    state.owners.set(key, key);
    account(state, key).free = o.balance ?? DEV_BALANCE;
  }
  for (const extra of o.extraSubnets ?? []) {
    if (state.subnets.has(extra.netuid)) throw new Error(`subnet ${extra.netuid} is defined twice`);
    const copy = newSubnet(extra.netuid, subnet.owner, { ...o.subnet, ...extra.subnet });
    copy.neurons = subnet.neurons.map((n) => ({ ...n, weights: [] }));
    state.subnets.set(extra.netuid, copy);
  }
  return state;
}
