// The validator's round: collect the round's announcements until every member has
// submitted or the deadline passes; verify each (signature, subject, size, digest,
// codec); flag copies by what earlier submissions of the round explain (copies.ts); score
// the rest by the loss change of a median-clipped step on the submitter's assigned data
// and on random data; update ratings with penalties; select G plus reserves among the
// payloads the admission rule accepts (scoring.ts); publish the signed selection;
// apply it like every peer; checkpoint every K rounds.
import type { KeyringPair } from "@polkadot/keyring/types";
import type { RejectReason, SignedEnvelope } from "../protocol/envelope.ts";
import { assignShards } from "../protocol/rendezvous.ts";
import { sampleSequences } from "../protocol/sampling.ts";
import { encodeCheckpoint } from "./checkpoint.ts";
import { payloadFormat } from "./dense.ts";
import { checkAnnouncement, fetchPayload } from "./gather.ts";
import type { Tensors } from "./kernels.ts";
import { readMembership } from "./miner.ts";
import type { Membership } from "../protocol/membership.ts";
import type { CheckpointPointer, Replica } from "./replica.ts";
import {
  choose,
  defaultAdmission,
  defaultScoring,
  evaluationClip,
  rewards,
  roundScore,
  updateRatings,
} from "./scoring.ts";
import type { AdmissionParams, Evaluation, Outcome, PeerRating, ScoringParams } from "./scoring.ts";
import { copyShares, defaultCopyParams, sparsify } from "./copies.ts";
import type { CopyParams } from "./copies.ts";
import type { ResolvedRunConfig } from "../api/runconfig.ts";
import { encodeSelection, signSelection } from "../protocol/selection.ts";
import type { SignedSelection } from "../protocol/selection.ts";
import type { StreamMessage } from "../protocol/bus/client.ts";
import { withTimeout } from "../protocol/bus/limiter.ts";

/** How long the sweep after a round's deadline may ask the stream for missing announcements. */
const FINAL_SWEEP_MS = 5_000;

/** The validator's step size as a fraction of the outer learning rate. */
export const EVAL_STEP_FRACTION = 0.2;

export interface ValidatorReport {
  round: number;
  submissions: number;
  selected: number;
  rejected: Record<string, RejectReason>;
  /** Valid, uncopied payloads the admission rule kept out, with why. */
  excluded: Record<string, string>;
  lossBefore: number;
}

/** The admission rule of a round's config (spec.validator; defaults for older configs). */
export function admissionOf(v: ResolvedRunConfig["validator"]): AdmissionParams {
  return {
    ratingFloor: v.ratingFloor ?? defaultAdmission.ratingFloor,
    minRoundScore: v.minRoundScore ?? defaultAdmission.minRoundScore,
    warmupRounds: v.warmupRounds ?? defaultAdmission.warmupRounds,
  };
}

/** The copy rule of a round's config. */
export function copyParamsOf(v: ResolvedRunConfig["validator"]): CopyParams {
  return { ...defaultCopyParams, threshold: v.copyThreshold ?? defaultCopyParams.threshold };
}

export class Validator {
  ratings = new Map<string, PeerRating>();
  /**
   * Per tensor, the median norm of the payloads selected in the last round that selected any:
   * the clip of the validator's evaluation step (see evaluationClip).
   */
  #clipNorms: number[] | undefined;
  /** The admission rule of the last closed round (the chain weights follow it too). */
  admission: AdmissionParams = defaultAdmission;
  readonly #inbox = new Map<number, StreamMessage[]>();
  /** Stream sequences already taken in (by the consumer or a sweep). */
  readonly #taken = new Set<number>();
  #pending: Record<string, RejectReason> = {};
  #openedMs = Date.now();
  /** Membership when the current round opened: the one the miners adopted for it. */
  #roundMembership: Promise<Membership | undefined> = Promise.resolve(undefined);
  /** Rounds up to this one are closed: their announcements are late. */
  #closed = -1;
  readonly #abort = new AbortController();
  #consuming: Promise<void> | undefined;

  constructor(
    readonly replica: Replica,
    readonly pair: KeyringPair,
    readonly scoring: ScoringParams = defaultScoring,
  ) {}

  /** Starts reading every announcement of the run, in arrival order. */
  start(): void {
    const r = this.replica;
    this.#openRound();
    this.#closed = r.round - 1;
    const startedMs = Date.now();
    this.#consuming = (async () => {
      for await (const m of r.bus.messages(
        `covenant.${r.bus.names.run}.round.*.submit.*`,
        this.#abort.signal,
      )) {
        const round = Number(m.subject.split(".")[3]);
        if (!Number.isSafeInteger(round) || this.#taken.has(m.seq)) continue;
        this.#taken.add(m.seq);
        if (round <= this.#closed) {
          // Announcements stored before this validator started were judged by its predecessor.
          if (m.storedMs >= startedMs) this.#late(m, round);
          continue;
        }
        const list = this.#inbox.get(round) ?? [];
        list.push(m);
        this.#inbox.set(round, list);
      }
    })().catch((err: unknown) => {
      if (!this.#abort.signal.aborted) r.log.error(`announcement reader stopped: ${String(err)}`);
    });
  }

  /**
   * Rounds run only with `aggregation.minPeers` members: until the membership has that many,
   * the round waits without a deadline, then opens afresh with the membership it has then.
   * Answers the membership it last read.
   */
  async #quorum(signal: AbortSignal): Promise<Membership | undefined> {
    const need = this.replica.cfg.aggregation.minPeers;
    let waited = false;
    let m: Membership | undefined;
    while (!signal.aborted) {
      m = await readMembership(this.replica);
      if ((m?.members.length ?? 0) >= need) break;
      if (!waited)
        this.replica.log.info(
          `round ${this.replica.round}: waiting for ${need} members (the membership has ${m?.members.length ?? 0})`,
        );
      waited = true;
      await new Promise((res) => setTimeout(res, 1000));
    }
    if (waited) this.#openRound();
    return m;
  }

  #openRound(): void {
    this.#openedMs = Date.now();
    this.#roundMembership = readMembership(this.replica).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#consuming;
  }

  /**
   * Reads the announcements of `hotkeys` for `round` straight from the stream, all at once and
   * for at most `budgetMs`: a bus request retries for up to a minute while a crashed server
   * still counts as online, and a sweep must not hold the round past its deadline (an answer
   * that comes later is not taken; the consumer delivers it, judged late).
   */
  async #sweep(round: number, hotkeys: readonly string[], budgetMs: number): Promise<void> {
    const r = this.replica;
    const found = await Promise.all(
      hotkeys.map((h) =>
        withTimeout(r.bus.lastMessage(r.bus.names.submit(round, h)), budgetMs, "sweep").catch(
          () => undefined,
        ),
      ),
    );
    for (const m of found) {
      if (!m) continue;
      if (this.#taken.has(m.seq)) continue;
      this.#taken.add(m.seq);
      const list = this.#inbox.get(round) ?? [];
      list.push(m);
      this.#inbox.set(round, list);
    }
  }

  /** An announcement for a closed round: late when it verifies, else its own reason. */
  #late(m: StreamMessage, round: number): void {
    const v = checkAnnouncement(
      this.replica.gather,
      m.subject,
      m.data,
      round,
      payloadFormat(this.replica.cfg),
    );
    const hotkey = m.subject.split(".").at(-1)!;
    const reason: RejectReason = v.ok ? "late" : v.reason;
    this.replica.metrics.rejected.inc({ reason });
    this.#pending[hotkey] = reason;
    this.replica.log.warn(`round ${round}: ${reason} announcement from ${hotkey.slice(0, 8)}`);
  }

  /** Closes the replica's current round: publishes its selection and applies it. */
  async closeRound(signal: AbortSignal): Promise<ValidatorReport> {
    const r = this.replica;
    // The round runs under the config epoch in force for it; the selection names its digest.
    const cfg = r.cfg;
    const configDigest = r.epoch.digest;
    const round = r.round;
    // The membership now (re-read below while waiting).
    let current = await this.#quorum(signal);
    // The round is judged by the membership it opened with (miners adopt it at the boundary);
    // a member the operator removes meanwhile is no longer waited for.
    const membership = await this.#roundMembership;
    const members = membership?.members ?? [];
    const deadline = this.#openedMs + cfg.roundDeadlineSeconds * 1000;
    const assignment = assignShards(r.bus.names.run, cfg.data.shards, members);
    // Members without a shard have nothing to train on and are not waited for.
    const withShards = members.filter((h) => (assignment.get(h)?.length ?? 0) > 0);
    const expected = () => withShards.filter((h) => current?.members.includes(h) ?? true);
    // Wait for every expected member's announcement or the deadline. The stream consumer
    // delivers them; once a second the stream is also asked directly, so a consumer that
    // is catching up after a reconnect cannot make a member look absent, and the membership
    // is read again.
    let swept = Date.now();
    const missing = () => {
      const seen = new Set((this.#inbox.get(round) ?? []).map((m) => m.subject.split(".").at(-1)));
      return expected().filter((h) => !seen.has(h));
    };
    while (!signal.aborted && Date.now() < deadline) {
      const waitingFor = expected();
      if (waitingFor.length > 0 && missing().length === 0) break;
      // Nobody to wait for: close as soon as someone is a member (they train from the next
      // round on) rather than idling to the deadline.
      if (waitingFor.length === 0 && current?.members.length) break;
      if (Date.now() - swept > 1000) {
        const budget = Math.max(500, deadline - Date.now());
        await this.#sweep(round, missing(), budget);
        current =
          (await withTimeout(readMembership(r), budget, "membership").catch(() => current)) ?? current;
        swept = Date.now();
        continue;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    await this.#sweep(round, missing(), FINAL_SWEEP_MS);
    this.#closed = round;
    const arrived = (this.#inbox.get(round) ?? []).sort((a, b) => a.seq - b.seq);
    this.#inbox.delete(round);
    const rejected: Record<string, RejectReason> = { ...this.#pending };
    this.#pending = {};
    const refuse = (hotkey: string, reason: RejectReason, detail: string) => {
      rejected[hotkey] = reason;
      r.metrics.rejected.inc({ reason });
      r.log.warn(`round ${round}: refused ${hotkey.slice(0, 8)}: ${reason} (${detail})`);
    };

    // One announcement per hotkey: the first that verifies.
    const envelopes = new Map<string, { e: SignedEnvelope; order: number; storedMs: number }>();
    for (const m of arrived) {
      const hotkey = m.subject.split(".").at(-1)!;
      if (envelopes.has(hotkey)) continue;
      const v = checkAnnouncement(r.gather, m.subject, m.data, round, payloadFormat(cfg));
      if (!v.ok) refuse(hotkey, v.reason, v.detail);
      else envelopes.set(hotkey, { e: v.value, order: m.seq, storedMs: m.storedMs });
    }
    const fetched = await Promise.all(
      [...envelopes.values()].map(async ({ e, order, storedMs }) => ({
        e,
        order,
        storedMs,
        v: await fetchPayload(r.gather, e),
      })),
    );
    // Dense payloads (mode none) decode to themselves: scored and checked for copies alike.
    const valid: { e: SignedEnvelope; order: number; storedMs: number; dense: Tensors }[] = [];
    for (const { e, order, storedMs, v } of fetched) {
      if (!v.ok) refuse(e.hotkey, v.reason, v.detail);
      else valid.push({ e, order, storedMs, dense: r.codec.decode(v.value) });
    }

    // Copies: what the round's earlier submissions together explain of each payload.
    const copyRule = copyParamsOf(cfg.validator);
    const shares = copyShares(
      valid.map((s) => ({
        hotkey: s.e.hotkey,
        storedMs: s.storedMs,
        seq: s.order,
        payload: sparsify(s.dense),
      })),
      copyRule,
    );
    const copies = new Map([...shares].filter(([, f]) => f.share >= copyRule.threshold));
    for (const [copier, f] of copies)
      refuse(
        copier,
        "copied",
        `${(f.share * 100).toFixed(0)}% of its values explained by ${f.earlier.length} earlier submission(s)`,
      );
    const scored = valid.filter((s) => !copies.has(s.e.hotkey));

    // Scores: loss before and after a median-clipped step on own and random data.
    const outcomes = new Map<string, Outcome>();
    for (const [h, reason] of Object.entries(rejected))
      if (reason !== "late") outcomes.set(h, { kind: "penalised", reason });
    const evaluations = this.#evaluate(round, scored, assignment);
    for (const ev of evaluations) outcomes.set(ev.hotkey, { kind: "evaluated", evaluation: ev });
    this.ratings = updateRatings(this.ratings, members, outcomes, this.scoring);

    const warm = round < cfg.outer.warmupRounds;
    const judged = new Map(evaluations.map((ev) => [ev.hotkey, roundScore(ev)]));
    const scores = new Map([...judged].map(([h, x]) => [h, x.score]));
    const { selected, reserves, refused } = warm
      ? { selected: [], reserves: [], refused: new Map<string, string>() }
      : choose(
          scored.map((s) => ({
            hotkey: s.e.hotkey,
            digest: s.e.digest,
            score: scores.get(s.e.hotkey),
            own: judged.get(s.e.hotkey)?.own,
          })),
          this.ratings,
          cfg.aggregation.gatherPeers,
          cfg.aggregation.reserves,
          (this.admission = admissionOf(cfg.validator)),
        );
    if (selected.length > 0) {
      const chosen = new Set(selected.map((p) => p.hotkey));
      const norms = scored.filter((s) => chosen.has(s.e.hotkey)).map((s) => s.dense.map(l2));
      this.#clipNorms = r.theta.map((_, t) => median(norms.map((n) => n[t]!)));
    }
    // Kept out, not refused: the payload is valid, its evidence says it does not help.
    for (const [h, why] of refused) r.log.info(`round ${round}: not aggregating ${h.slice(0, 8)}: ${why}`);
    // One line per round with every rating, round score, copy share and own-data score (what
    // operators and the adversarial suite read to see why a peer is or is not aggregated).
    r.log.info(
      `round ${round}: ratings ` +
        [...this.ratings]
          .map(
            ([h, x]) =>
              `${h.slice(0, 8)}=${x.rating.toExponential(3)}/${(scores.get(h) ?? NaN).toExponential(3)}` +
              `/${(shares.get(h)?.share ?? NaN).toFixed(3)}/${(judged.get(h)?.own ?? NaN).toExponential(3)}`,
          )
          .join(" "),
    );
    const selection: SignedSelection = signSelection(
      {
        run: r.bus.names.run,
        round,
        epoch: membership?.epoch ?? 0,
        selected,
        reserves,
        rejected,
        config: configDigest,
      },
      this.pair,
    );
    await r.bus.publish(
      r.bus.names.selection(round, this.pair.address),
      encodeSelection(selection),
      `${round}`,
    );
    this.#openRound();
    await r.apply(selection);
    if ((round + 1) % cfg.checkpoints.everyRounds === 0) await this.checkpoint(round);
    return {
      round,
      submissions: arrived.length,
      selected: selected.length,
      rejected,
      excluded: Object.fromEntries(refused),
      lossBefore: evaluations[0]?.lossBeforeRandom ?? NaN,
    };
  }

  #evaluate(
    round: number,
    subs: { e: SignedEnvelope; dense: Tensors }[],
    assignment: Map<string, number[]>,
  ): Evaluation[] {
    if (subs.length === 0) return [];
    const r = this.replica;
    const cfg = r.cfg;
    const count = cfg.validator.sequences;
    const perShard = r.engine.sequencesPerShard;
    const all = Array.from({ length: cfg.data.shards }, (_, i) => i);
    const random = sampleSequences({
      run: r.bus.names.run,
      hotkey: `random/${this.pair.address}`,
      round,
      shards: all,
      sequencesPerShard: perShard,
      count,
    });
    const theta = r.theta;
    r.engine.setParameters(theta);
    const beforeRandom = r.engine.evalLoss(random);
    const norms = subs.map((s) => s.dense.map(l2));
    const medians = evaluationClip(this.#clipNorms, norms, theta.length);
    const lr = cfg.outer.learningRate * EVAL_STEP_FRACTION;
    const out: Evaluation[] = [];
    for (const [k, s] of subs.entries()) {
      const own = sampleSequences({
        run: r.bus.names.run,
        hotkey: s.e.hotkey,
        round,
        shards: assignment.get(s.e.hotkey) ?? all,
        sequencesPerShard: perShard,
        count,
      });
      r.engine.setParameters(theta);
      const beforeOwn = r.engine.evalLoss(own);
      const stepped = theta.map((w, t) => {
        const n = norms[k]![t]!;
        const f = n > 0 ? Math.min(1, medians[t]! / n) : 0;
        const d = s.dense[t]!;
        const out = new Float32Array(w.length);
        for (let j = 0; j < w.length; j++) out[j] = w[j]! - lr * f * d[j]!;
        return out;
      });
      r.engine.setParameters(stepped);
      out.push({
        hotkey: s.e.hotkey,
        lossBeforeOwn: beforeOwn,
        lossAfterOwn: r.engine.evalLoss(own),
        lossBeforeRandom: beforeRandom,
        lossAfterRandom: r.engine.evalLoss(random),
      });
    }
    r.engine.setParameters(theta);
    return out;
  }

  /** What each peer earns on chain: its rating where it clears the selection floor, else 0. */
  rewards(): Map<string, number> {
    return rewards(this.ratings, this.admission);
  }

  /**
   * Puts the state after `round` (the weights, and the outer momentum of a nesterov round) in
   * the validator's checkpoint bucket and points to it with its state digest.
   */
  async checkpoint(round: number): Promise<void> {
    const r = this.replica;
    const bytes = encodeCheckpoint(
      { run: r.bus.names.run, round, tensors: r.engine.tensors },
      r.theta,
      r.momentum,
    );
    const object = r.bus.names.checkpointObject(round);
    await r.bus.putObject(r.bus.names.checkpointBucket(this.pair.address), object, bytes);
    const ptr: CheckpointPointer = { round, object, digest: r.digest };
    const kv = await r.bus.state();
    await kv.put(`checkpoint.${this.pair.address}`, JSON.stringify(ptr));
    r.log.info(`checkpoint of round ${round} (${bytes.length} bytes)`);
  }
}

function l2(t: Float32Array): number {
  let s = 0;
  for (let i = 0; i < t.length; i++) s += t[i]! * t[i]!;
  return Math.sqrt(s);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
