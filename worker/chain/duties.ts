/**
 * What a worker does on the chain while it trains: once, connect, register when the run says
 * so (burned_register) and commit where its payloads are (set_commitment); the validator, every
 * `setWeightsEveryRounds` rounds, sets weights from its ratings (set_weights).
 *
 * The chain is for identity and rewards, not for training: nothing here stops a round. Work
 * runs in the background, one call at a time; a failure is logged and counted, and the setup
 * is retried after the next round. The hotkey's secret never reaches a log line.
 */
import type { KeyringPair } from "@polkadot/keyring/types";
import type { Counter } from "prom-client";
import { redactEndpoint } from "../../protocol/chain/endpoint.ts";
import type { Log } from "../log.ts";
import { ChainCallError, WorkerChain, type WorkerChainOptions } from "./client.ts";
import { weightsDue, weightsFromScores } from "./plan.ts";

export interface ChainDutiesOptions {
  endpoint: string;
  netuid: number;
  hotkey: KeyringPair;
  /** Register by burning when the hotkey holds no uid. */
  register: boolean;
  /** Committed on chain as where this peer's payloads are. */
  payloadLocation: string;
  /** Validators: rounds between weight updates; absent for miners. */
  setWeightsEveryRounds?: number;
  log: Log;
  calls?: Counter<"call" | "result">;
  timeoutMs?: number;
  /** Opens the chain client (tests replace it). */
  connect?: (o: WorkerChainOptions) => Promise<WorkerChain>;
}

/** Scores by hotkey, read when weights are due. */
export type Scores = () => ReadonlyMap<string, number>;

export class ChainDuties {
  #chain: WorkerChain | undefined;
  #uid: number | undefined;
  #setUp = false;
  #busy: Promise<void> | undefined;
  #weightsPending: { round: number; scores: Scores } | undefined;
  #warnedUnregistered = false;

  constructor(private readonly o: ChainDutiesOptions) {}

  /** This worker's uid once known. */
  get uid(): number | undefined {
    return this.#uid;
  }

  /** Starts the setup in the background. */
  start(): void {
    this.#kick();
  }

  /**
   * After a closed round: retry the setup if it failed; validators set weights when due
   * (`every`: the round's setWeightsEveryRounds, default the one given at construction).
   */
  afterRound(round: number, scores?: Scores, every = this.o.setWeightsEveryRounds): void {
    if (scores && every !== undefined && weightsDue(round, every)) this.#weightsPending = { round, scores };
    this.#kick();
  }

  /** Waits for the call in flight, then disconnects. */
  async stop(): Promise<void> {
    await this.#busy;
    await this.#chain?.disconnect().catch(() => undefined);
    this.#chain = undefined;
  }

  /** Resolves when no call is in flight (tests). */
  async idle(): Promise<void> {
    while (this.#busy) await this.#busy;
  }

  #kick(): void {
    if (this.#busy) return;
    this.#busy = this.#work().finally(() => {
      this.#busy = undefined;
    });
  }

  async #work(): Promise<void> {
    if (!this.#setUp) {
      try {
        await this.#setup();
        this.#setUp = true;
      } catch (e) {
        this.o.log.warn(`chain: ${describe(e)}; trying again after the next round`);
        return;
      }
    }
    // Weights that fell due while a call was in flight are set now.
    for (let due = this.#weightsPending; due; due = this.#weightsPending) {
      this.#weightsPending = undefined;
      await this.#setWeights(due.round, due.scores());
    }
  }

  async #setup(): Promise<void> {
    const chain = await this.#client();
    let uid = await chain.uid();
    if (uid === undefined && this.o.register) {
      uid = await this.#call("burned_register", () => chain.ensureRegistered());
      this.o.log.info(`chain: registered on subnet ${this.o.netuid} as uid ${uid}`);
    }
    this.#uid = uid;
    if (uid === undefined) {
      if (!this.#warnedUnregistered) {
        this.#warnedUnregistered = true;
        this.o.log.warn(
          `chain: hotkey is not registered on subnet ${this.o.netuid}; register it, or set spec.chain.register`,
        );
      }
      throw new Error(`not registered on subnet ${this.o.netuid}`);
    }
    const committed = await this.#call("set_commitment", () =>
      chain.commitPayloadLocation(this.o.payloadLocation),
    );
    this.o.log.info(
      committed
        ? `chain: uid ${uid}; committed payload location ${this.o.payloadLocation}`
        : `chain: uid ${uid}; payload location already committed`,
    );
  }

  async #setWeights(round: number, scores: ReadonlyMap<string, number>): Promise<void> {
    try {
      const chain = await this.#client();
      const byUid = new Map<number, number>();
      for (const [hotkey, score] of scores) {
        const uid = await chain.uid(hotkey);
        if (uid !== undefined) byUid.set(uid, score);
      }
      const { dests, weights } = weightsFromScores(byUid);
      if (dests.length === 0) {
        this.o.log.info(`chain: round ${round}: no registered peer has a positive rating; weights not set`);
        return;
      }
      await this.#call("set_weights", () => chain.setWeights(dests, weights));
      this.o.log.info(`chain: round ${round}: set weights for uids [${dests.join(",")}]`);
    } catch (e) {
      this.o.log.warn(`chain: round ${round}: ${describe(e)}`);
    }
  }

  async #client(): Promise<WorkerChain> {
    if (!this.#chain) {
      const connect = this.o.connect ?? ((o: WorkerChainOptions) => WorkerChain.connect(o));
      this.#chain = await connect({
        endpoint: this.o.endpoint,
        netuid: this.o.netuid,
        hotkey: this.o.hotkey,
        timeoutMs: this.o.timeoutMs,
      });
      this.o.log.info(`chain: connected to ${redactEndpoint(this.o.endpoint)}, subnet ${this.o.netuid}`);
    }
    return this.#chain;
  }

  async #call<T>(call: string, fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn();
      this.o.calls?.inc({ call, result: "ok" });
      return out;
    } catch (e) {
      this.o.calls?.inc({ call, result: "error" });
      throw e;
    }
  }
}

function describe(e: unknown): string {
  return e instanceof ChainCallError ? e.message : e instanceof Error ? e.message : String(e);
}
