/**
 * The worker's calls on the chain: register when configured (burned_register), commit the
 * peer's payload location (Commitments.set_commitment) and, for the validator, weights:
 * set_weights, or commit_weights then reveal_weights on a subnet with commit-reveal on.
 * Each call is signed, submitted and followed until it is in a block; a dispatch error
 * becomes a ChainCallError naming the runtime error, and a transaction the pool refuses
 * (e.g. a payer that cannot pay the fee) a ChainCallError with a short reason.
 */
import { ApiPromise, WsProvider } from "@polkadot/api";
import type { SubmittableExtrinsic } from "@polkadot/api/types";
import type { KeyringPair } from "@polkadot/keyring/types";
import { hexToU8a } from "@polkadot/util";
import { redactEndpoint, validateEndpoint } from "../../protocol/chain/endpoint.ts";
import { commitmentField } from "./plan.ts";

export class ChainCallError extends Error {
  constructor(
    readonly call: string,
    /**
     * `section.Name` of the runtime error, e.g. `subtensorModule.SettingWeightsTooFast`, or,
     * for a transaction the pool refused, the node's answer (`1010: Invalid Transaction: ...`).
     */
    readonly error: string,
    /**
     * Short label for logs and the `result` of the chain-call counter: `error` for a call that
     * failed in its block, the refusal's reason (`cannot_pay_fee`, ...) for one the pool refused.
     */
    readonly reason: string = "error",
    /** Where it failed: in its block (dispatch error) or at the pool (never included). */
    readonly stage: "block" | "pool" = "block",
    message = `${call} failed on chain: ${error}`,
  ) {
    super(message);
  }
}

/** Substrate's author RPC error codes of a refused transaction, as reasons. */
const POOL_CODES: Record<number, string> = {
  1011: "unknown_validity",
  1012: "temporarily_banned",
  1013: "already_imported",
  1014: "priority_too_low",
  1015: "dependency_cycle",
  1016: "immediately_dropped",
};

/** InvalidTransaction (code 1010) variants by the words the node answers with. */
const INVALID_TX: [RegExp, string][] = [
  [/Inability to pay some fees/i, "cannot_pay_fee"],
  [/bad signature/i, "bad_signature"],
  [/outdated/i, "stale_nonce"],
  [/valid in the future/i, "future_nonce"],
  [/ancient birth block/i, "ancient_birth_block"],
  [/exhaust the block limits/i, "exhausts_resources"],
  // subtensor's CustomTransactionError of reveal_weights
  [/Custom error: 16\b/, "commit_not_found"],
  [/Custom error: 17\b/, "reveal_out_of_range"],
  [/Custom error/i, "custom_error"],
];

/**
 * A transaction the node's pool refused (an RPC error with a code) as a ChainCallError with a
 * reason; anything else (a closed connection, a signing failure) as a plain Error.
 * `payer` is the SS58 address that signs and pays: public, named so that a person knows
 * which account to fund.
 */
export function poolRefusal(call: string, e: unknown, payer: string): Error {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== "number") return new Error(`${call} rejected: ${message}`);
  const data = (e as { data?: unknown }).data;
  const words = `${typeof data === "string" ? data : ""} ${message}`;
  const reason =
    code === 1010
      ? (INVALID_TX.find(([re]) => re.test(words))?.[1] ?? "invalid_transaction")
      : POOL_CODES[code];
  const why = reason ?? "refused";
  const text =
    why === "cannot_pay_fee"
      ? `${call} refused (cannot_pay_fee): the payer ${payer} cannot pay the transaction fee (${message})`
      : `${call} refused by the transaction pool (${why}): ${message}`;
  return new ChainCallError(call, message, why, "pool", text);
}

/** A weight commit as the chain stores it (WeightCommits). */
export interface ChainWeightCommit {
  hash: string;
  commitBlock: number;
  firstRevealBlock: number;
  lastRevealBlock: number;
}

/** What decides how weights reach the chain, read afresh each time weights are due. */
export interface WeightsParams {
  /** CommitRevealWeightsEnabled of the subnet. */
  commitRevealEnabled: boolean;
  tempo: number;
  /** RevealPeriodEpochs: the reveal is due that many epochs after the commit's. */
  revealPeriodEpochs: number;
  /** WeightsVersionKey: the lowest version key the subnet accepts (0: any). */
  versionKey: bigint;
  /** Best block when the parameters were read. */
  block: number;
}

export interface Included {
  blockHash: string;
  events: { section: string; method: string; data: string[] }[];
}

export interface WorkerChainOptions {
  endpoint: string;
  netuid: number;
  hotkey: KeyringPair;
  /** Pays burned_register; the hotkey pays for itself when absent. */
  coldkey?: KeyringPair;
  timeoutMs?: number;
}

export class WorkerChain {
  private constructor(
    readonly api: ApiPromise,
    private readonly o: WorkerChainOptions,
  ) {}

  static async connect(o: WorkerChainOptions): Promise<WorkerChain> {
    validateEndpoint(o.endpoint);
    const provider = new WsProvider(o.endpoint, 1_000, {}, o.timeoutMs ?? 30_000);
    try {
      const api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: true });
      return new WorkerChain(api, o);
    } catch (e) {
      await provider.disconnect().catch(() => undefined);
      throw new Error(`cannot connect to chain ${redactEndpoint(o.endpoint)}: ${(e as Error).message}`);
    }
  }

  get hotkeyAddress(): string {
    return this.o.hotkey.address;
  }

  async disconnect(): Promise<void> {
    await this.api.disconnect();
  }

  private tx(pallet: string, call: string): (...args: unknown[]) => SubmittableExtrinsic<"promise"> {
    const fn = this.api.tx[pallet]?.[call];
    if (!fn) throw new Error(`the chain has no ${pallet}.${call}; is this a subtensor endpoint?`);
    return fn as (...args: unknown[]) => SubmittableExtrinsic<"promise">;
  }

  /** A hotkey's uid on the subnet (this worker's by default), if registered. */
  async uid(hotkey: string = this.o.hotkey.address): Promise<number | undefined> {
    const q = this.api.query.subtensorModule?.uids;
    if (!q) throw new Error("the chain has no SubtensorModule.Uids");
    const v = (await q(this.o.netuid, hotkey)) as unknown as {
      isSome: boolean;
      unwrap(): { toNumber(): number };
    };
    return v.isSome ? v.unwrap().toNumber() : undefined;
  }

  /** Registers the hotkey by burning unless it already holds a uid; answers the uid. */
  async ensureRegistered(): Promise<number> {
    const have = await this.uid();
    if (have !== undefined) return have;
    const payer = this.o.coldkey ?? this.o.hotkey;
    const r = await this.submit(
      "burned_register",
      this.tx("subtensorModule", "burnedRegister")(this.o.netuid, this.o.hotkey.address),
      payer,
    );
    const ev = r.events.find((e) => e.section === "subtensorModule" && e.method === "NeuronRegistered");
    if (!ev) throw new Error("burned_register was included without a NeuronRegistered event");
    return Number(ev.data[1]);
  }

  /** The payload location this hotkey has committed, if any. */
  async committedLocation(): Promise<string | undefined> {
    const q = this.api.query.commitments?.commitmentOf;
    if (!q) throw new Error("the chain has no Commitments.CommitmentOf");
    const v = (await q(this.o.netuid, this.o.hotkey.address)).toJSON() as {
      info?: { fields?: Record<string, string>[] };
    } | null;
    const field = v?.info?.fields?.[0];
    const raw = field ? Object.entries(field).find(([k]) => k.startsWith("raw"))?.[1] : undefined;
    return raw === undefined ? undefined : Buffer.from(hexToU8a(raw)).toString("utf8");
  }

  /** Commits where this peer's payloads are; does nothing when that is already committed. */
  async commitPayloadLocation(location: string): Promise<boolean> {
    const field = commitmentField(location);
    if ((await this.committedLocation()) === location) return false;
    await this.submit(
      "set_commitment",
      this.tx("commitments", "setCommitment")(this.o.netuid, { fields: [field] }),
      this.o.hotkey,
    );
    return true;
  }

  /** Best block number. */
  async bestBlock(): Promise<number> {
    const header = await this.api.rpc.chain.getHeader();
    return safeInt(header.number.toBigInt(), "the best block number");
  }

  /** The subnet's commit-reveal settings, tempo and version key, with the best block. */
  async weightsParams(): Promise<WeightsParams> {
    const m = this.api.query.subtensorModule;
    if (!m?.tempo) throw new Error("the chain has no SubtensorModule.Tempo");
    const block = await this.bestBlock();
    const [enabled, tempo, period, version] = await Promise.all([
      m.commitRevealWeightsEnabled?.(this.o.netuid),
      m.tempo(this.o.netuid),
      m.revealPeriodEpochs?.(this.o.netuid),
      m.weightsVersionKey?.(this.o.netuid),
    ]);
    const on = enabled === undefined ? false : enabled.toJSON();
    if (typeof on !== "boolean")
      throw new Error("the chain answered CommitRevealWeightsEnabled with a non-boolean");
    return {
      commitRevealEnabled: on,
      tempo: safeInt(bigOf(tempo, "Tempo"), "Tempo", 65535),
      // Runtimes before RevealPeriodEpochs revealed one epoch after the commit.
      revealPeriodEpochs:
        period === undefined ? 1 : safeInt(bigOf(period, "RevealPeriodEpochs"), "RevealPeriodEpochs"),
      versionKey: version === undefined ? 0n : bigOf(version, "WeightsVersionKey"),
      block,
    };
  }

  /** This hotkey's unrevealed weight commits on the subnet (mechanism 0), oldest first. */
  async weightCommits(): Promise<ChainWeightCommit[]> {
    const q = this.api.query.subtensorModule?.weightCommits;
    if (!q) throw new Error("the chain has no SubtensorModule.WeightCommits");
    return parseWeightCommits((await q(this.o.netuid, this.o.hotkey.address)).toJSON());
  }

  /** commit_weights: the hash of the weights to reveal later (see commit-reveal.ts). */
  async commitWeights(hash: string): Promise<Included> {
    if (!/^0x[0-9a-f]{64}$/i.test(hash)) throw new Error("commit_weights: the hash must be 32 bytes of hex");
    return this.submit(
      "commit_weights",
      this.tx("subtensorModule", "commitWeights")(this.o.netuid, hash),
      this.o.hotkey,
    );
  }

  /** reveal_weights: the values, salt and version key whose hash was committed. */
  async revealWeights(
    uids: readonly number[],
    values: readonly number[],
    salt: readonly number[],
    versionKey: bigint,
  ): Promise<Included> {
    if (uids.length !== values.length)
      throw new Error(`reveal_weights: ${uids.length} uids but ${values.length} values`);
    const reveal = this.tx("subtensorModule", "revealWeights");
    let tx: SubmittableExtrinsic<"promise">;
    try {
      tx = reveal(this.o.netuid, uids, values, salt, versionKey);
    } catch {
      // The codec's message would quote the arguments, the salt among them.
      throw new Error("reveal_weights: the chain's types refused the arguments");
    }
    return this.submit("reveal_weights", tx, this.o.hotkey);
  }

  async setWeights(dests: number[], weights: number[], versionKey = 0n): Promise<Included> {
    if (dests.length !== weights.length)
      throw new Error(`set_weights: ${dests.length} uids but ${weights.length} weights`);
    if (dests.length === 0) throw new Error("set_weights: no weights to set");
    return this.submit(
      "set_weights",
      this.tx("subtensorModule", "setWeights")(this.o.netuid, dests, weights, versionKey),
      this.o.hotkey,
    );
  }

  private submit(name: string, tx: SubmittableExtrinsic<"promise">, signer: KeyringPair): Promise<Included> {
    const timeoutMs = this.o.timeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
      let unsub: (() => void) | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsub?.();
        fn();
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${name} not included within ${timeoutMs} ms`))),
        timeoutMs,
      );
      tx.signAndSend(signer, (r) => {
        if (r.isError)
          return finish(() => reject(new Error(`${name} was dropped by the pool (${r.status.type})`)));
        if (!r.status.isInBlock && !r.status.isFinalized) return;
        if (r.dispatchError) {
          const error = r.dispatchError.isModule
            ? (() => {
                const m = this.api.registry.findMetaError(r.dispatchError!.asModule);
                return `${m.section}.${m.name}`;
              })()
            : r.dispatchError.type;
          return finish(() => reject(new ChainCallError(name, error)));
        }
        const blockHash = (r.status.isInBlock ? r.status.asInBlock : r.status.asFinalized).toHex();
        finish(() =>
          resolve({
            blockHash,
            events: r.events.map((e) => ({
              section: e.event.section,
              method: e.event.method,
              data: e.event.data.map((d) => d.toString()),
            })),
          }),
        );
      })
        .then((u) => {
          unsub = u;
          if (done) u();
        })
        .catch((e: unknown) => finish(() => reject(poolRefusal(name, e, signer.address))));
    });
  }
}

/** A u64-like codec's value; anything else is the chain answering in an unexpected form. */
function bigOf(v: unknown, what: string): bigint {
  const f = (v as { toBigInt?: unknown } | null | undefined)?.toBigInt;
  if (typeof f !== "function") throw new Error(`the chain answered ${what} in an unexpected form`);
  const out: unknown = f.call(v);
  if (typeof out !== "bigint") throw new Error(`the chain answered ${what} in an unexpected form`);
  return out;
}

function safeInt(v: bigint | number | string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  let n: bigint;
  try {
    n = BigInt(v);
  } catch {
    throw new Error(`the chain answered ${what} with a non-integer`);
  }
  if (n < 0n || n > BigInt(max)) throw new Error(`the chain answered ${what} out of range`);
  return Number(n);
}

/** WeightCommits as JSON (null, or [hash, commit block, first, last reveal block] tuples). */
export function parseWeightCommits(json: unknown): ChainWeightCommit[] {
  if (json === null || json === undefined) return [];
  if (!Array.isArray(json)) throw new Error("the chain answered WeightCommits in an unexpected form");
  return json.map((entry: unknown) => {
    if (!Array.isArray(entry) || entry.length !== 4)
      throw new Error("the chain answered WeightCommits in an unexpected form");
    const [hash, commit, first, last] = entry as unknown[];
    if (typeof hash !== "string" || !/^0x[0-9a-f]{64}$/i.test(hash))
      throw new Error("the chain answered WeightCommits with a malformed hash");
    const block = (v: unknown, what: string) => {
      if (typeof v !== "number" && typeof v !== "string")
        throw new Error(`the chain answered WeightCommits with a malformed ${what}`);
      return safeInt(v, `WeightCommits ${what}`);
    };
    return {
      hash: hash.toLowerCase(),
      commitBlock: block(commit, "commit block"),
      firstRevealBlock: block(first, "first reveal block"),
      lastRevealBlock: block(last, "last reveal block"),
    };
  });
}
