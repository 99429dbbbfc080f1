// Validator scoring, pure: per-round evaluations in, ratings and a selection out.
// - score of a submission: relative loss improvement on random data after a
//   median-clipped step with the submitter's payload;
// - indicator: did the step help the submitter's own assigned data more than random
//   data? kept as a moving average (a peer training on someone else's data loses it);
// - rating: moving average of scores, decayed for missing or late rounds
//   (x0.75, x0.5, then 0) and zeroed for invalid or copied payloads;
// - admission: a payload is aggregated only when its evidence says it helps (acceptable());
//   choose() fills G places and the reserves from acceptable payloads only, so a round
//   with few acceptable payloads aggregates fewer instead of filling up with harmful ones;
// - copies: worker/copies.ts.
import type { RejectReason } from "../protocol/envelope.ts";

export interface Evaluation {
  hotkey: string;
  lossBeforeOwn: number;
  lossAfterOwn: number;
  lossBeforeRandom: number;
  lossAfterRandom: number;
}

export interface PeerRating {
  rating: number;
  /** Moving average of the own-vs-random indicator, in [-1, 1]. */
  indicator: number;
  /** Consecutive rounds missed or late. */
  missed: number;
  rounds: number;
  /** Rounds in which a payload of the peer was evaluated (its rating's evidence). */
  scored: number;
}

export interface ScoringParams {
  /** Weight of the newest round in the moving averages. */
  alpha: number;
  indicatorAlpha: number;
  /** Rating factors after 1, 2, ... consecutive misses; beyond the list, 0. */
  missDecay: readonly number[];
}

export const defaultScoring: ScoringParams = {
  alpha: 0.3,
  indicatorAlpha: 0.05,
  missDecay: [0.75, 0.5],
};

const fresh = (): PeerRating => ({ rating: 0, indicator: 0, missed: 0, rounds: 0, scored: 0 });

const relative = (before: number, after: number) =>
  Number.isFinite(before) && Number.isFinite(after) && before > 0 ? (before - after) / before : -1;

/**
 * The round's score of one evaluation (relative improvement on random data), the relative
 * improvement on the submitter's own assigned data, and whether own beat random.
 */
export function roundScore(e: Evaluation): { score: number; own: number; indicator: 1 | -1 } {
  const random = relative(e.lossBeforeRandom, e.lossAfterRandom);
  const own = relative(e.lossBeforeOwn, e.lossAfterOwn);
  return { score: random, own, indicator: own > random ? 1 : -1 };
}

export type Outcome =
  | { kind: "evaluated"; evaluation: Evaluation }
  | { kind: "penalised"; reason: RejectReason };

/** Ratings after one round. Members without an outcome missed the round. */
export function updateRatings(
  before: ReadonlyMap<string, PeerRating>,
  members: readonly string[],
  outcomes: ReadonlyMap<string, Outcome>,
  p: ScoringParams = defaultScoring,
): Map<string, PeerRating> {
  const after = new Map<string, PeerRating>();
  for (const [h, r] of before) after.set(h, { ...r });
  for (const hotkey of new Set([...members, ...outcomes.keys()])) {
    const r = after.get(hotkey) ?? fresh();
    const o = outcomes.get(hotkey);
    r.rounds += 1;
    if (
      !o ||
      (o.kind === "penalised" && o.reason === "late") ||
      (o.kind === "penalised" && o.reason === "fetch-failed")
    ) {
      r.missed += 1;
      r.rating *= p.missDecay[r.missed - 1] ?? 0;
    } else if (o.kind === "penalised") {
      r.missed = 0;
      r.rating = 0;
      r.indicator = Math.max(-1, r.indicator - 0.5);
    } else {
      r.missed = 0;
      const { score, indicator } = roundScore(o.evaluation);
      r.scored += 1;
      // The first evaluation is the whole evidence; an earlier zero (a miss) is not.
      r.rating = r.scored === 1 ? score : (1 - p.alpha) * r.rating + p.alpha * score;
      r.indicator = (1 - p.indicatorAlpha) * r.indicator + p.indicatorAlpha * indicator;
    }
    after.set(hotkey, r);
  }
  return after;
}

export interface Candidate {
  hotkey: string;
  digest: string;
}

/** The admission rule's parameters (spec.validator). */
export interface AdmissionParams {
  /**
   * A rating must reach this fraction of the median positive rating of the round's
   * candidates (the honest reference: harmful payloads have non-positive ratings and do
   * not move it). 0 keeps only the positive-rating requirement.
   */
  ratingFloor: number;
  /**
   * The round's score must exceed this (0: the payload must help this round), unless the
   * round was only noisy for it: it helps its submitter's own assigned data and costs the
   * random data less than the round's reference gain (see acceptable()).
   */
  minRoundScore: number;
  /**
   * A peer with fewer evaluated rounds than this is judged by its round score alone, held to
   * the same floor against the median positive round score (its rating is too young to say).
   */
  warmupRounds: number;
}

export const defaultAdmission: AdmissionParams = { ratingFloor: 0.5, minRoundScore: 0, warmupRounds: 2 };

export interface Candidate {
  hotkey: string;
  digest: string;
  /** The round's score of the payload (roundScore), when it was evaluated. */
  score?: number;
  /** Its relative improvement on the submitter's own assigned data (roundScore's own). */
  own?: number;
}

export type Verdict = { ok: true } | { ok: false; why: string };

function medianOf(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Whether each candidate's payload may be aggregated: its round score exceeds minRoundScore,
 * and its rating (its round score during warm-up) is positive and at least ratingFloor x the
 * median of the positive ones. A payload without a score was not evaluated and is refused.
 *
 * A round score at or below minRoundScore is forgiven as noise when the payload helps its
 * submitter's own assigned data and costs the random data less than the reference (the
 * median positive evidence): late in a run an honest step often moves a small random batch
 * slightly up. A sign-flipped, noisy or zero payload helps neither and is kept out the round
 * it arrives; one that helps its own data but hurts everyone else's costs at most one
 * honest gain a round while its rating falls below the floor.
 */
export function acceptable(
  candidates: readonly Candidate[],
  ratings: ReadonlyMap<string, PeerRating>,
  p: AdmissionParams = defaultAdmission,
): Map<string, Verdict> {
  const young = (h: string) => (ratings.get(h)?.scored ?? 0) < p.warmupRounds;
  const evidence = (c: Candidate) => (young(c.hotkey) ? c.score : ratings.get(c.hotkey)?.rating) ?? -Infinity;
  const positive = (cs: readonly Candidate[]) => cs.map(evidence).filter((x) => Number.isFinite(x) && x > 0);
  const refRating = medianOf(positive(candidates.filter((c) => !young(c.hotkey))));
  const refScore = medianOf(positive(candidates.filter((c) => young(c.hotkey))));
  const out = new Map<string, Verdict>();
  for (const c of candidates) {
    const s = c.score;
    const e = evidence(c);
    const ref = young(c.hotkey) ? refScore : refRating;
    const what = young(c.hotkey) ? "round score (warm-up)" : "rating";
    const noisy = (x: number) => c.own !== undefined && c.own > 0 && x > -ref;
    if (s === undefined || !Number.isFinite(s)) out.set(c.hotkey, { ok: false, why: "not evaluated" });
    else if (!(s > p.minRoundScore) && !noisy(s))
      out.set(c.hotkey, {
        ok: false,
        why:
          `round score ${s.toExponential(2)} <= ${p.minRoundScore}` +
          ` (own data ${(c.own ?? NaN).toExponential(2)}, reference ${ref.toExponential(2)})`,
      });
    else if (!(e > 0)) out.set(c.hotkey, { ok: false, why: `${what} ${e.toExponential(2)} not positive` });
    else if (e < p.ratingFloor * ref)
      out.set(c.hotkey, {
        ok: false,
        why: `${what} ${e.toExponential(2)} below ${p.ratingFloor} x median ${ref.toExponential(2)}`,
      });
    else out.set(c.hotkey, { ok: true });
  }
  return out;
}

/**
 * The G best candidates by rating (ties by hotkey) and the next `reserves`, from the ones
 * `acceptable()` admits: a refused payload neither takes a place nor waits as a reserve.
 * Deterministic: the same ratings and candidates give the same lists.
 */
export function choose(
  candidates: readonly Candidate[],
  ratings: ReadonlyMap<string, PeerRating>,
  gather: number,
  reserves: number,
  admission: AdmissionParams = defaultAdmission,
): { selected: Candidate[]; reserves: Candidate[]; refused: Map<string, string> } {
  const verdicts = acceptable(candidates, ratings, admission);
  const refused = new Map<string, string>();
  for (const [h, v] of verdicts) if (!v.ok) refused.set(h, v.why);
  const key = (c: Candidate) => ratings.get(c.hotkey)?.rating ?? 0;
  const ranked = candidates
    .filter((c) => !refused.has(c.hotkey))
    .sort((a, b) => key(b) - key(a) || (a.hotkey < b.hotkey ? -1 : 1));
  const selected = ranked.slice(0, gather).sort((a, b) => (a.hotkey < b.hotkey ? -1 : 1));
  const strip = ({ hotkey, digest }: Candidate): Candidate => ({ hotkey, digest });
  return {
    selected: selected.map(strip),
    reserves: ranked.slice(gather, gather + reserves).map(strip),
    refused,
  };
}

/**
 * What each peer earns on chain: its rating where it clears the same floor as selection
 * (positive, and at least ratingFloor x the median positive rating of the peers with a full
 * warm-up), else 0. Free-riders (zero updates score 0) and lazy peers below the floor earn
 * nothing; a peer still in warm-up earns nothing yet either.
 */
export function rewards(
  ratings: ReadonlyMap<string, PeerRating>,
  p: AdmissionParams = defaultAdmission,
): Map<string, number> {
  const grown = [...ratings].filter(([, r]) => r.scored >= Math.max(1, p.warmupRounds));
  const ref = medianOf(grown.map(([, r]) => r.rating).filter((x) => Number.isFinite(x) && x > 0));
  const isGrown = new Set(grown.map(([h]) => h));
  const out = new Map<string, number>();
  for (const [h, r] of ratings) {
    const ok = isGrown.has(h) && r.rating > 0 && r.rating >= p.ratingFloor * ref;
    out.set(h, ok ? r.rating : 0);
  }
  return out;
}

/**
 * The norms the evaluation clips each payload to, per tensor. Not the median of the round's
 * submissions: submitters choose those, and a majority of free-riders (zero norms) would
 * clip every honest step to nothing and score it 0. Instead the median norm of the payloads
 * the last selection admitted (close to this round's, norms drift slowly); before any
 * selection, the median of this round's nonzero norms.
 */
export function evaluationClip(
  selectedBefore: readonly number[] | undefined,
  norms: readonly (readonly number[])[],
  tensors: number,
): number[] {
  if (selectedBefore) return [...selectedBefore];
  return Array.from({ length: tensors }, (_, t) => {
    const xs = norms.map((n) => n[t]!).filter((x) => x > 0);
    return xs.length > 0 ? medianOf(xs) : 0;
  });
}
