/**
 * The worker's calls on the chain: register when configured (burned_register), commit the
 * peer's payload location (Commitments.set_commitment) and, for the validator, set weights.
 * Each call is signed, submitted and followed until it is in a block; a dispatch error
 * becomes a ChainCallError naming the runtime error.
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
    /** `section.Name` of the runtime error, e.g. `subtensorModule.SettingWeightsTooFast`. */
    readonly error: string,
  ) {
    super(`${call} failed on chain: ${error}`);
  }
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
        .catch((e: Error) => finish(() => reject(new Error(`${name} rejected: ${e.message}`))));
    });
  }
}
