/**
 * Block production for the local chain: a pool of checked extrinsics, a timer (or explicit
 * calls) that turns the pool into blocks, and the blocks themselves with the state, storage
 * and events as of each. Every block is final as soon as it is made (one authority).
 */
import { EventEmitter } from "node:events";
import type { Header } from "@polkadot/types/interfaces";
import { u8aConcat, u8aToHex, hexToU8a, stringToU8a } from "@polkadot/util";
import { blake2AsHex } from "@polkadot/util-crypto";
import {
  burnedRegister,
  commitWeights,
  revealWeights,
  serveAxon,
  setCommitment,
  setWeights,
  transferKeepAlive,
  type DispatchOutcome,
  type EventSpec,
} from "./dispatch.ts";
import {
  checkExtrinsic,
  PAYMENT_ERROR,
  RpcError,
  type ChainView,
  type CheckedExtrinsic,
} from "./extrinsics.ts";
import { encodeEvent } from "./events.ts";
import { canPayFee, feeConstants, type DispatchInfo, type FeeConstants } from "./fees.ts";
import { entry, storageKey, type Runtime } from "./runtime.ts";
import { account, cloneState, type ChainState } from "./state.ts";
import { materializeBlock, materializeState, type StorageMap } from "./storage.ts";

export interface Block {
  number: number;
  hash: string;
  header: Header;
  extrinsics: string[];
  /** State after the block; undefined once pruned. */
  state: ChainState | undefined;
  storage: StorageMap | undefined;
}

type Phase = { ApplyExtrinsic: number } | { Initialization: null } | { Finalization: null };

interface EventRecord {
  phase: Phase;
  event: EventSpec;
}

export interface ChainOptions {
  /** Milliseconds between blocks; 0 produces blocks only on request. */
  blockTimeMs: number;
  /** Blocks whose state stays queryable. */
  stateRetention?: number;
  genesis: ChainState;
  /** Wall clock in ms for the Timestamp inherent. */
  now?: () => number;
}

/** Dispatch info of the timestamp inherent in ExtrinsicSuccess (its weight is not modelled). */
const INHERENT_INFO = { weight: { refTime: 0n, proofSize: 0n }, class: "Mandatory", paysFee: "Yes" };
const HASH_RECENT = 256;

interface ChainEvents {
  block: [Block];
  included: [txHash: string, blockHash: string];
  dropped: [txHash: string, reason: string];
}

export class Chain extends EventEmitter<ChainEvents> {
  readonly blocks: Block[] = [];
  private readonly byHash = new Map<string, Block>();
  private pool: CheckedExtrinsic[] = [];
  private draft: ChainState;
  private draftDirty = true;
  private injected: EventSpec[] = [];
  private stateStorage: StorageMap = new Map();
  private timer: NodeJS.Timeout | undefined;
  /** Blocks the timer failed to make (a bug if ever non-zero). */
  producerErrors = 0;
  private readonly retention: number;
  private readonly now: () => number;
  /** Fee constants of the runtime (from its metadata). */
  readonly fees: FeeConstants;

  constructor(
    readonly rt: Runtime,
    private readonly opts: ChainOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.retention = opts.stateRetention ?? 1200;
    this.now = opts.now ?? Date.now;
    this.fees = feeConstants(rt);
    this.draft = cloneState(opts.genesis);
    this.seal([], [], "0x" + "00".repeat(32));
  }

  get best(): Block {
    return this.blocks[this.blocks.length - 1]!;
  }
  /** Finality trails the best block by one. */
  get finalized(): Block {
    return this.blocks[Math.max(0, this.blocks.length - 2)]!;
  }
  get genesisHash(): string {
    return this.blocks[0]!.hash;
  }

  start(): void {
    if (this.opts.blockTimeMs > 0 && !this.timer) {
      this.timer = setInterval(() => {
        try {
          this.produce();
        } catch (e) {
          this.producerErrors += 1;
          process.stderr.write(`local chain: block production failed: ${(e as Error).message}\n`);
        }
      }, this.opts.blockTimeMs);
    }
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  blockAt(hashOrNumber?: string | number | null): Block | undefined {
    if (hashOrNumber === undefined || hashOrNumber === null) return this.best;
    if (typeof hashOrNumber === "number") return this.blocks[hashOrNumber];
    return this.byHash.get(hashOrNumber.toLowerCase());
  }

  /** The state tests and test controls change; it becomes the next block's starting state. */
  edit<T>(fn: (draft: ChainState) => T, events: EventSpec[] = []): T {
    const out = fn(this.draft);
    this.draftDirty = true;
    this.injected.push(...events);
    return out;
  }

  view(): ChainView {
    const best = this.best.state!;
    return {
      bestNumber: this.best.number,
      bestState: best,
      genesisHash: this.genesisHash,
      blockHash: (n) => this.blocks[n]?.hash,
      accountNonce: (who) => best.accounts.get(who)?.nonce ?? 0,
      nextNonce: (who) =>
        (best.accounts.get(who)?.nonce ?? 0) + this.pool.filter((p) => p.signer === who).length,
    };
  }

  /** Checks and pools an extrinsic; throws RpcError when the pool rejects it. */
  submit(hex: unknown): CheckedExtrinsic {
    const checked = checkExtrinsic(this.rt, this.fees, this.view(), hex);
    if (this.pool.some((p) => p.hash === checked.hash)) {
      throw new RpcError(1013, "Transaction Already Imported");
    }
    this.pool.push(checked);
    return checked;
  }

  pending(): string[] {
    return this.pool.map((p) => p.hex);
  }

  /** Makes one block from the pool. */
  produce(): Block {
    const number = this.best.number + 1;
    const state = this.draft;
    for (const s of state.subnets.values()) s.registrationsThisBlock = 0;
    const records: EventRecord[] = this.injected.map((event) => ({ phase: { Initialization: null }, event }));
    this.injected = [];
    const inherent = this.rt.registry.createType(
      "Extrinsic",
      this.rt.decorated.tx.timestamp!.set!(this.now()),
    );
    const extrinsics: string[] = [inherent.toHex()];
    records.push({ phase: { ApplyExtrinsic: 0 }, event: success(INHERENT_INFO) });
    const txs = this.pool;
    this.pool = [];
    const included: string[] = [];
    for (const tx of txs) {
      const acct = account(state, tx.signer);
      if (tx.nonce !== acct.nonce) {
        this.emit("dropped", tx.hash, "nonce no longer valid");
        continue;
      }
      // The balance may have changed since the pool checked it: an unpayable transaction is
      // invalid for this block and leaves the pool without touching the state.
      if (!canPayFee(this.fees, acct.free, tx.fee.total)) {
        this.emit("dropped", tx.hash, PAYMENT_ERROR);
        continue;
      }
      acct.nonce += 1;
      const index = extrinsics.length;
      extrinsics.push(tx.hex);
      included.push(tx.hash);
      const phase = { ApplyExtrinsic: index };
      // ChargeTransactionPayment withdraws the fee before the call runs and keeps it whatever
      // the outcome. There is no block author to pay it to, so it is burned.
      if (tx.fee.total > 0n) {
        acct.free -= tx.fee.total;
        records.push({
          phase,
          event: { pallet: "Balances", name: "Withdraw", data: [tx.signer, tx.fee.total] },
        });
      }
      const outcome = this.safeDispatch(state, BigInt(number), tx);
      if (outcome.ok) for (const event of outcome.events) records.push({ phase, event });
      records.push({
        phase,
        event: {
          pallet: "TransactionPayment",
          name: "TransactionFeePaid",
          data: [tx.signer, tx.fee.total, tx.fee.tip],
        },
      });
      const info = this.eventInfo(tx.info);
      records.push({ phase, event: outcome.ok ? success(info) : this.failed(outcome, info) });
      this.draftDirty = true;
    }
    const block = this.seal(extrinsics, records, this.best.hash);
    for (const h of included) this.emit("included", h, block.hash);
    return block;
  }

  /** A call whose arguments the dispatch cannot use fails with DispatchError::Other, never the process. */
  private safeDispatch(state: ChainState, block: bigint, tx: CheckedExtrinsic): DispatchOutcome {
    try {
      return this.dispatch(state, block, tx);
    } catch {
      return { ok: false, failure: { pallet: "", error: "Other" } };
    }
  }

  private dispatch(state: ChainState, block: bigint, tx: CheckedExtrinsic): DispatchOutcome {
    const ctx = { block };
    const c = tx.args;
    switch (c.call) {
      case "subtensorModule.burnedRegister":
        return burnedRegister(state, ctx, tx.signer, c.netuid, c.hotkey);
      case "subtensorModule.setWeights":
      case "subtensorModule.setMechanismWeights":
        return setWeights(state, ctx, tx.signer, c.netuid, c.dests, c.weights, c.versionKey, c.mecid);
      case "subtensorModule.commitWeights":
      case "subtensorModule.commitMechanismWeights":
        return commitWeights(state, ctx, tx.signer, c.netuid, c.mecid, c.hash);
      case "subtensorModule.revealWeights":
      case "subtensorModule.revealMechanismWeights":
        return revealWeights(
          state,
          ctx,
          tx.signer,
          c.netuid,
          c.mecid,
          c.uids,
          c.values,
          c.salt,
          c.versionKey,
        );
      case "subtensorModule.serveAxon":
        return serveAxon(state, ctx, tx.signer, c);
      case "commitments.setCommitment":
        return setCommitment(state, ctx, tx.signer, c.netuid, c.fieldCount, c.info);
      case "balances.transferKeepAlive":
        return transferKeepAlive(state, tx.signer, c.dest, c.value, this.fees.existentialDeposit);
    }
  }

  /** DispatchEventInfo of an applied extrinsic: its weight with the extensions and base extrinsic. */
  private eventInfo(info: DispatchInfo) {
    return {
      weight: {
        refTime: info.totalWeight.refTime + this.fees.baseExtrinsic.refTime,
        proofSize: info.totalWeight.proofSize + this.fees.baseExtrinsic.proofSize,
      },
      class: info.class,
      paysFee: info.paysFee ? "Yes" : "No",
    };
  }

  private failed(outcome: Extract<DispatchOutcome, { ok: false }>, info: unknown): EventSpec {
    const { pallet, error } = outcome.failure;
    if (pallet === "") return { pallet: "System", name: "ExtrinsicFailed", data: [{ [error]: null }, info] };
    if (pallet === "Token")
      return { pallet: "System", name: "ExtrinsicFailed", data: [{ Token: error }, info] };
    const camel = pallet[0]!.toLowerCase() + pallet.slice(1);
    const meta = this.rt.decorated.errors[camel]?.[error]?.meta;
    const p = this.rt.metadata.asLatest.pallets.find((x) => x.name.eq(pallet));
    if (!meta || !p) throw new Error(`error ${pallet}.${error} is not in the metadata`);
    const errorBytes = new Uint8Array([meta.index.toNumber(), 0, 0, 0]);
    return {
      pallet: "System",
      name: "ExtrinsicFailed",
      data: [{ Module: { index: p.index.toNumber(), error: errorBytes } }, info],
    };
  }

  private seal(extrinsics: string[], records: EventRecord[], parentHash: string): Block {
    const number = this.blocks.length;
    const rt = this.rt;
    const eventsType = rt.registry.createLookupType(entry(rt, "system", "events").meta.type.asPlain);
    const events = rt.registry.createTypeUnsafe(eventsType, [
      records.map((r) => ({
        phase: r.phase,
        event: encodeEvent(rt, r.event.pallet, r.event.name, r.event.data),
        topics: [],
      })),
    ]);
    if (this.draftDirty) {
      this.stateStorage = materializeState(rt, this.draft);
      this.draftDirty = false;
    }
    const recent: [number, string][] = [];
    for (let n = Math.max(0, number - HASH_RECENT); n < number; n++) recent.push([n, this.blocks[n]!.hash]);
    const storage = materializeBlock(
      rt,
      {
        number,
        parentHash,
        recentHashes: recent,
        timestampMs: BigInt(this.now()),
        eventsHex: u8aToHex(events.toU8a()),
      },
      new Map(this.stateStorage),
    );
    const header: Header = rt.registry.createType("Header", {
      parentHash,
      number,
      stateRoot: stateRoot(storage),
      extrinsicsRoot: blake2AsHex(u8aConcat(...extrinsics.map((x) => hexToU8a(x)))),
      digest: { logs: [] },
    });
    const block: Block = {
      number,
      hash: header.hash.toHex(),
      header,
      extrinsics,
      state: this.draft,
      storage,
    };
    this.blocks.push(block);
    this.byHash.set(block.hash, block);
    this.draft = cloneState(this.draft);
    const old = this.blocks[number - this.retention];
    if (old && old.number > 0) {
      old.state = undefined;
      old.storage = undefined;
    }
    if (number > 0) this.emit("block", block);
    return block;
  }

  /** Storage key of System.Events, for tests. */
  eventsKey(): string {
    return storageKey(this.rt, entry(this.rt, "system", "events"));
  }
}

function success(info: unknown): EventSpec {
  return { pallet: "System", name: "ExtrinsicSuccess", data: [info] };
}

/** A digest of the whole storage (not a trie root; the local chain serves no proofs). */
export function stateRoot(storage: StorageMap): string {
  const keys = [...storage.keys()].sort();
  return blake2AsHex(
    u8aConcat(...keys.flatMap((k) => [hexToU8a(k), hexToU8a(storage.get(k)!)]), stringToU8a("")),
  );
}
