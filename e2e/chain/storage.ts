/**
 * The chain state as the real chain's storage: key (hex) to SCALE value (hex), every key and
 * value built from the metadata's own entries and types. Pure: same state, same map.
 */
import { u8aToHex } from "@polkadot/util";
import { decodeAddress } from "@polkadot/util-crypto";
import { entry, storageKey, valueType, encodeAs, type Runtime } from "./runtime.ts";
import type { ChainState } from "./state.ts";

export type StorageMap = Map<string, string>;

class Writer {
  constructor(
    private readonly rt: Runtime,
    readonly out: StorageMap,
  ) {}
  put(pallet: string, item: string, args: unknown[], value: unknown): void {
    const e = entry(this.rt, pallet, item);
    this.out.set(
      storageKey(this.rt, e, ...args),
      u8aToHex(encodeAs(this.rt, valueType(this.rt, e), value).toU8a()),
    );
  }
}

/** Storage of the accounts, subnets, neurons, weight commits and commitments. */
export function materializeState(rt: Runtime, state: ChainState): StorageMap {
  const w = new Writer(rt, new Map());
  for (const [who, a] of state.accounts) {
    w.put("system", "account", [who], {
      nonce: a.nonce,
      consumers: 0,
      providers: 1,
      sufficients: 0,
      data: { free: a.free, reserved: 0n, frozen: 0n, flags: 0n },
    });
  }
  w.put("subtensorModule", "totalNetworks", [], state.subnets.size);
  for (const [hotkey, coldkey] of state.owners) w.put("subtensorModule", "owner", [hotkey], coldkey);
  for (const s of state.subnets.values()) {
    const n = s.netuid;
    const put = (item: string, value: unknown) => w.put("subtensorModule", item, [n], value);
    put("networksAdded", true);
    put("subnetOwner", s.owner);
    put("tempo", s.tempo);
    put("maxAllowedUids", s.maxAllowedUids);
    put("immunityPeriod", s.immunityPeriod);
    put("activityCutoff", s.activityCutoff);
    put("weightsVersionKey", s.weightsVersionKey);
    put("weightsSetRateLimit", s.weightsSetRateLimit);
    put("commitRevealWeightsEnabled", s.commitRevealWeightsEnabled);
    put("revealPeriodEpochs", s.revealPeriodEpochs);
    put("maxRegistrationsPerBlock", s.maxRegistrationsPerBlock);
    put("registrationsThisBlock", s.registrationsThisBlock);
    put("burn", s.burn);
    put("subnetworkN", s.neurons.length);
    const ns = s.neurons;
    put(
      "active",
      ns.map((x) => x.active),
    );
    put(
      "rank",
      ns.map((x) => x.rank),
    );
    put(
      "trust",
      ns.map((x) => x.trust),
    );
    put(
      "consensus",
      ns.map((x) => x.consensus),
    );
    put(
      "incentive",
      ns.map((x) => x.incentive),
    );
    put(
      "dividends",
      ns.map((x) => x.dividends),
    );
    put(
      "emission",
      ns.map((x) => x.emission),
    );
    put(
      "lastUpdate",
      ns.map((x) => x.lastUpdate),
    );
    put(
      "validatorTrust",
      ns.map((x) => x.validatorTrust),
    );
    put(
      "pruningScores",
      ns.map((x) => x.pruningScore),
    );
    put(
      "validatorPermit",
      ns.map((x) => x.validatorPermit),
    );
    ns.forEach((x, uid) => {
      w.put("subtensorModule", "keys", [n, uid], x.hotkey);
      w.put("subtensorModule", "uids", [n, x.hotkey], uid);
      // The SDK lists a hotkey's subnets from this map (get_netuids_for_hotkey).
      w.put("subtensorModule", "isNetworkMember", [x.hotkey, n], true);
      w.put("subtensorModule", "blockAtRegistration", [n, uid], x.blockAtRegistration);
      w.put("subtensorModule", "totalHotkeyAlpha", [x.hotkey, n], x.stake);
      if (x.weights.length) w.put("subtensorModule", "weights", [n, uid], x.weights);
      if (x.axon) w.put("subtensorModule", "axons", [n, x.hotkey], x.axon);
    });
  }
  for (const [key, commits] of state.weightCommits) {
    const [netuidIndex, hotkey] = key.split("/") as [string, string];
    w.put(
      "subtensorModule",
      "weightCommits",
      [Number(netuidIndex), hotkey],
      commits.map((c) => [c.hash, c.commitBlock, c.firstRevealBlock, c.lastRevealBlock]),
    );
  }
  for (const [key, c] of state.commitments) {
    const [netuid, hotkey] = key.split("/") as [string, string];
    w.put("commitments", "commitmentOf", [Number(netuid), hotkey], {
      deposit: c.deposit,
      block: c.block,
      info: c.info,
    });
  }
  return w.out;
}

export interface BlockFacts {
  number: number;
  parentHash: string;
  /** Hashes of recent blocks by number, for System.BlockHash. */
  recentHashes: [number, string][];
  timestampMs: bigint;
  /** Encoded Vec<EventRecord> of the block. */
  eventsHex: string;
}

/** Storage of the System and Timestamp items that change every block. */
export function materializeBlock(rt: Runtime, facts: BlockFacts, into: StorageMap): StorageMap {
  const w = new Writer(rt, into);
  w.put("system", "number", [], facts.number);
  w.put("system", "parentHash", [], facts.parentHash);
  for (const [n, h] of facts.recentHashes) w.put("system", "blockHash", [n], h);
  w.put("timestamp", "now", [], facts.timestampMs);
  into.set(storageKey(rt, entry(rt, "system", "events")), facts.eventsHex);
  return into;
}

export function accountHex(address: string | Uint8Array): string {
  const bytes = decodeAddress(address);
  return "0x" + Buffer.from(bytes).toString("hex");
}
