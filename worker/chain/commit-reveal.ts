/**
 * Pure parts of commit-reveal of weights, computed as subtensor computes them:
 *
 * - the commit hash (`get_commit_hash`): blake2-256 of the SCALE encoding of
 *   (hotkey AccountId, netuid index u16, uids Vec<u16>, values Vec<u16>, salt Vec<u16>,
 *   version_key u64); the netuid index of mechanism 0 is the netuid;
 * - the epoch of a block (`get_epoch_index`): (block + netuid + 1) / (tempo + 1), rounded down;
 * - the reveal window: a commit made in epoch e is revealed in epoch e + RevealPeriodEpochs
 *   and expires after it. The chain evaluates this with the tempo and reveal period in force
 *   at the reveal, so callers pass the values they read just before revealing.
 */
import { webcrypto } from "node:crypto";
import { compactToU8a, u8aConcat, u8aToHex } from "@polkadot/util";
import { blake2AsU8a } from "@polkadot/util-crypto";

/** u16 words of salt per commit (the SDK's length): 128 random bits. */
export const SALT_WORDS = 8;
const U16_MAX = 65535;
const U64_MAX = (1n << 64n) - 1n;

function u16(n: number, what: string): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > U16_MAX) throw new Error(`${what} must be a u16`);
  return new Uint8Array([n & 255, (n >> 8) & 255]);
}

function u16Vec(xs: readonly number[], what: string): Uint8Array {
  return u8aConcat(compactToU8a(xs.length), ...xs.map((x) => u16(x, what)));
}

function u64(n: bigint): Uint8Array {
  if (n < 0n || n > U64_MAX) throw new Error("the version key must be a u64");
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((n >> BigInt(8 * i)) & 255n);
  return out;
}

/**
 * The hash committed by commit_weights and checked by reveal_weights, 0x-prefixed lowercase
 * hex. Error messages name the field, never the values (the salt is secret until revealed).
 */
export function commitHash(
  hotkey: Uint8Array,
  netuidIndex: number,
  uids: readonly number[],
  values: readonly number[],
  salt: readonly number[],
  versionKey: bigint,
): string {
  if (hotkey.length !== 32) throw new Error("the hotkey must be a 32-byte public key");
  if (uids.length !== values.length) throw new Error("uids and values must have the same length");
  const bytes = u8aConcat(
    hotkey,
    u16(netuidIndex, "the netuid index"),
    u16Vec(uids, "a uid"),
    u16Vec(values, "a weight value"),
    u16Vec(salt, "a salt word"),
    u64(versionKey),
  );
  return u8aToHex(blake2AsU8a(bytes, 256));
}

/** A fresh salt from the CSPRNG. */
export function newSalt(words = SALT_WORDS): number[] {
  return [...webcrypto.getRandomValues(new Uint16Array(words))];
}

export interface EpochParams {
  netuid: number;
  tempo: number;
  revealPeriodEpochs: number;
}

/** The epoch of a block on a subnet: (block + netuid + 1) / (tempo + 1). */
export function epochIndex(block: number, netuid: number, tempo: number): number {
  return Math.floor((block + netuid + 1) / (tempo + 1));
}

/** The epoch in which a commit made at `commitBlock` is revealed, and its first and last block. */
export function revealWindow(
  commitBlock: number,
  p: EpochParams,
): { epoch: number; firstBlock: number; lastBlock: number } {
  const epoch = epochIndex(commitBlock, p.netuid, p.tempo) + p.revealPeriodEpochs;
  const firstBlock = Math.max(0, epoch * (p.tempo + 1) - (p.netuid + 1));
  return { epoch, firstBlock, lastBlock: firstBlock + p.tempo };
}

export type RevealTiming = "early" | "due" | "expired";

/** Whether a commit made at `commitBlock` may be revealed in `block`, is not yet due, or expired. */
export function revealTiming(commitBlock: number, block: number, p: EpochParams): RevealTiming {
  const now = epochIndex(block, p.netuid, p.tempo);
  const due = epochIndex(commitBlock, p.netuid, p.tempo) + p.revealPeriodEpochs;
  return now < due ? "early" : now === due ? "due" : "expired";
}
