/**
 * What a worker does on the chain while it trains: once, connect, register when the run says
 * so (burned_register) and commit where its payloads are (set_commitment); the validator, every
 * `setWeightsEveryRounds` rounds, puts its ratings on chain as weights.
 *
 * How weights reach the chain depends on the subnet, read afresh each time they are due (a
 * subnet owner can toggle it): set_weights, or, with CommitRevealWeightsEnabled, commit_weights
 * of a salted hash now and reveal_weights of the values and salt in the epoch RevealPeriodEpochs
 * after the commit's. Pending commits are kept in a PendingCommitStore (a file by default) so a
 * new instance can reveal its predecessor's; they are checked at every round boundary (and on a
 * timer while any wait), revealed oldest first, and given up once their window has passed.
 *
 * The chain is for identity and rewards, not for training: nothing here stops a round. Work
 * runs in the background, one call at a time; a failure is logged and counted, and the setup
 * is retried after the next round. The hotkey's secret never reaches a log line, nor does a
 * commit's salt or hash before its reveal.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { Counter } from "prom-client";
import { redactEndpoint } from "../../protocol/chain/endpoint.ts";
import type { Log } from "../log.ts";
import { ChainCallError, WorkerChain, type WeightsParams, type WorkerChainOptions } from "./client.ts";
import { commitHash, newSalt, revealTiming, revealWindow } from "./commit-reveal.ts";
import { FileCommitStore, type PendingCommit, type PendingCommitStore } from "./pending.ts";
import { weightsDue, weightsFromScores } from "./plan.ts";

/** Default check for due reveals between round boundaries while commits wait. */
export const DEFAULT_REVEAL_POLL_MS = 60_000;

/** Default directory of the pending-commit files (the pod's /tmp volume). */
export const defaultStateDir = (): string => join(tmpdir(), "covenant-chain");

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
  /**
   * Directory of the pending weight commits (file `weight-commits-<netuid>-<hotkey>.json`),
   * default `defaultStateDir()`. A directory that outlives the pod lets a restarted pod reveal.
   */
  stateDir?: string;
  /** Replaces the file store of pending commits. */
  commitStore?: PendingCommitStore;
  /** While commits wait for their reveal, also check every this many ms (0: only at rounds). */
  revealPollMs?: number;
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
  /** Pending weight commits, oldest first; loaded from the store on first use. */
  #commits: PendingCommit[] | undefined;
  #store: PendingCommitStore | undefined;
  #checkedOrphans = false;
  #poll: NodeJS.Timeout | undefined;
  #stopped = false;

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

  /** Commits waiting for their reveal (tests, status). */
  get pendingCommits(): number {
    return this.#commits?.length ?? 0;
  }

  /** Waits for the call in flight, then disconnects. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#poll);
    this.#poll = undefined;
    await this.#busy;
    await this.#chain?.disconnect().catch(() => undefined);
    this.#chain = undefined;
  }

  /** Resolves when no call is in flight (tests). */
  async idle(): Promise<void> {
    while (this.#busy) await this.#busy;
  }

  #kick(): void {
    if (this.#busy || this.#stopped) return;
    this.#busy = this.#work().finally(() => {
      this.#busy = undefined;
      this.#schedulePoll();
    });
  }

  /** While commits wait, look again after revealPollMs even without a round boundary. */
  #schedulePoll(): void {
    clearTimeout(this.#poll);
    this.#poll = undefined;
    const ms = this.o.revealPollMs ?? DEFAULT_REVEAL_POLL_MS;
    if (this.#stopped || ms <= 0 || !this.#commits?.length) return;
    this.#poll = setTimeout(() => {
      this.#poll = undefined;
      this.#kick();
    }, ms);
    this.#poll.unref();
  }

  /** A validator: it sets weights, so it may hold commits. */
  get #validator(): boolean {
    return this.o.setWeightsEveryRounds !== undefined || this.#commits !== undefined;
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
    // Commits first: a reveal that is due now must not wait behind a new commit.
    if (this.#validator || this.#weightsPending) {
      try {
        await this.#revealDue();
      } catch (e) {
        this.o.log.warn(`chain: checking weight commits: ${describe(e)}`);
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
      // Read each time: the subnet owner may have turned commit-reveal on or off.
      const p = await chain.weightsParams();
      let commit = p.commitRevealEnabled;
      for (let attempt = 0; ; attempt++) {
        try {
          if (commit) await this.#commit(chain, round, dests, weights, p);
          else {
            await this.#call("set_weights", () => chain.setWeights(dests, weights, p.versionKey));
            this.o.log.info(`chain: round ${round}: set weights for uids [${dests.join(",")}]`);
          }
          return;
        } catch (e) {
          // Toggled between the read and the call: the chain says which way it is now.
          const other = commit
            ? "subtensorModule.CommitRevealDisabled"
            : "subtensorModule.CommitRevealEnabled";
          if (attempt > 0 || !(e instanceof ChainCallError) || e.error !== other) throw e;
          commit = !commit;
          this.o.log.info(
            `chain: round ${round}: the subnet ${commit ? "now uses" : "no longer uses"} commit-reveal of weights`,
          );
        }
      }
    } catch (e) {
      this.o.log.warn(`chain: round ${round}: ${describe(e)}`);
    }
  }

  /**
   * commit_weights of a salted hash of the weights, remembered (persisted before it is sent)
   * until its reveal. Logs name the round and the window, never the salt, the hash or the
   * values (they stay hidden until the reveal).
   */
  async #commit(
    chain: WorkerChain,
    round: number,
    uids: number[],
    values: number[],
    p: WeightsParams,
  ): Promise<void> {
    const commits = await this.#pendingCommits();
    const salt = newSalt();
    const hash = commitHash(this.o.hotkey.publicKey, this.o.netuid, uids, values, salt, p.versionKey);
    const c: PendingCommit = {
      hotkey: this.o.hotkey.address,
      netuid: this.o.netuid,
      round,
      hash,
      uids,
      values,
      salt,
      versionKey: p.versionKey,
    };
    commits.push(c);
    await this.#save();
    try {
      await this.#call("commit_weights", () => chain.commitWeights(hash));
    } catch (e) {
      // Refused: nothing to reveal. Any other failure (a timeout) may still land; the check
      // before the reveal drops the commit if the chain does not hold it.
      if (e instanceof ChainCallError) {
        this.#forget(c);
        await this.#save();
      }
      throw e;
    }
    const stored = (await chain.weightCommits().catch(() => [])).find((x) => x.hash === hash);
    if (stored) {
      c.commitBlock = stored.commitBlock;
      await this.#save();
    }
    const w = stored && revealWindow(stored.commitBlock, { ...p, netuid: this.o.netuid });
    this.o.log.info(
      `chain: round ${round}: committed weights for ${uids.length} uids` +
        (w ? ` in block ${stored.commitBlock}; reveal in blocks ${w.firstBlock}..${w.lastBlock}` : ""),
    );
  }

  /**
   * Reveals the commits whose reveal epoch is the next block's, oldest first (revealing one
   * drops the older ones on chain); drops, logs and counts those that expired, that the chain
   * does not hold, or whose stored values do not hash to their commit: a reveal is sent only
   * for a commit the chain holds with exactly that hash, in its window.
   */
  async #revealDue(): Promise<void> {
    const commits = await this.#pendingCommits();
    // Once per instance, even with none pending: commits on chain this validator cannot reveal.
    const first = !this.#checkedOrphans;
    this.#checkedOrphans = true;
    if (commits.length === 0 && !first) return;
    const chain = await this.#client();
    const onChain = new Map((await chain.weightCommits()).map((c) => [c.hash, c]));
    if (first) {
      const known = new Set(commits.map((c) => c.hash));
      const orphans = [...onChain.keys()].filter((h) => !known.has(h)).length;
      if (orphans > 0)
        this.o.log.warn(
          `chain: ${orphans} unrevealed weight commit(s) on chain are not in ${this.#storeOf().where}; they cannot be revealed and will expire`,
        );
    }
    if (commits.length === 0) return;
    const p = await chain.weightsParams();
    const at = { netuid: this.o.netuid, tempo: p.tempo, revealPeriodEpochs: p.revealPeriodEpochs };
    const next = p.block + 1;
    let changed = false;
    const drop = (c: PendingCommit, result: string, why: string) => {
      this.#forget(c);
      changed = true;
      this.o.calls?.inc({ call: "reveal_weights", result });
      this.o.log.warn(`chain: weights committed after round ${c.round} not revealed: ${why}`);
    };
    try {
      for (const c of [...commits]) {
        if (!p.commitRevealEnabled) {
          drop(c, "disabled", "the subnet no longer uses commit-reveal");
          continue;
        }
        let own: string | undefined;
        try {
          own = commitHash(this.o.hotkey.publicKey, c.netuid, c.uids, c.values, c.salt, c.versionKey);
        } catch {
          own = undefined;
        }
        if (own !== c.hash) {
          drop(c, "mismatch", "its stored values do not hash to the commit");
          continue;
        }
        const stored = onChain.get(c.hash);
        if (!stored) {
          drop(c, "not_on_chain", "the chain holds no such commit");
          continue;
        }
        const timing = revealTiming(stored.commitBlock, next, at);
        if (timing === "early") continue;
        const w = revealWindow(stored.commitBlock, at);
        if (timing === "expired") {
          drop(c, "expired", `its reveal window, blocks ${w.firstBlock}..${w.lastBlock}, has passed`);
          continue;
        }
        try {
          await this.#call("reveal_weights", () =>
            chain.revealWeights(c.uids, c.values, c.salt, c.versionKey),
          );
        } catch (e) {
          // The chain will never take this reveal: give it up. Anything else is tried again.
          const gone =
            e instanceof ChainCallError &&
            (e.reason === "commit_not_found" ||
              [
                "subtensorModule.ExpiredWeightCommit",
                "subtensorModule.NoWeightsCommitFound",
                "subtensorModule.CommitRevealDisabled",
              ].includes(e.error));
          if (gone) {
            this.#forget(c);
            changed = true;
          }
          this.o.log.warn(
            `chain: revealing the weights committed after round ${c.round}: ${describe(e)}` +
              (gone ? "; given up" : ""),
          );
          continue;
        }
        this.#forget(c);
        changed = true;
        this.o.log.info(
          `chain: revealed the weights committed after round ${c.round} (block ${stored.commitBlock}) for uids [${c.uids.join(",")}]`,
        );
      }
    } finally {
      if (changed) await this.#save();
    }
  }

  #storeOf(): PendingCommitStore {
    this.#store ??=
      this.o.commitStore ??
      new FileCommitStore(this.o.stateDir ?? defaultStateDir(), this.o.netuid, this.o.hotkey.address);
    return this.#store;
  }

  async #pendingCommits(): Promise<PendingCommit[]> {
    if (!this.#commits) {
      const { commits, problems } = await this.#storeOf().load();
      for (const p of problems) this.o.log.warn(`chain: pending weight commits: ${p}`);
      if (commits.length)
        this.o.log.info(
          `chain: ${commits.length} weight commit(s) waiting for their reveal in ${this.#storeOf().where}`,
        );
      this.#commits = commits;
    }
    return this.#commits;
  }

  #forget(c: PendingCommit): void {
    const i = this.#commits?.indexOf(c) ?? -1;
    if (i >= 0) this.#commits!.splice(i, 1);
  }

  /** Persists the pending commits; a failure is logged (the commits stay in memory). */
  async #save(): Promise<void> {
    try {
      await this.#storeOf().save(this.#commits ?? []);
    } catch (e) {
      this.o.log.warn(
        `chain: cannot keep the pending weight commits in ${this.#store?.where ?? "the state directory"} ` +
          `(${(e as NodeJS.ErrnoException).code ?? "error"}); a restart before their reveal loses them`,
      );
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
      // A refused transaction says why (`cannot_pay_fee`, ...); any other failure is `error`.
      this.o.calls?.inc({ call, result: e instanceof ChainCallError ? e.reason : "error" });
      throw e;
    }
  }
}

function describe(e: unknown): string {
  return e instanceof ChainCallError ? e.message : e instanceof Error ? e.message : String(e);
}
