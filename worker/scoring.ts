// Validator scoring, pure: per-round evaluations in, ratings and a selection out.
// - score of a submission: relative loss improvement on random data after a
//   median-clipped step with the submitter's payload;
// - indicator: did the step help the submitter's own assigned data more than random
//   data? kept as a moving average (a peer training on someone else's data loses it);
// - rating: moving average of scores, decayed for missing or late rounds
//   (x0.75, x0.5, then 0) and zeroed for invalid or copied payloads;
// - copies: kept-index sets overlapping an earlier submission's by >= the threshold.
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
}

export interface ScoringParams {
  /** Weight of the newest round in the moving averages. */
  alpha: number;
  indicatorAlpha: number;
  /** Rating factors after 1, 2, ... consecutive misses; beyond the list, 0. */
  missDecay: readonly number[];
  copyOverlap: number;
}

export const defaultScoring: ScoringParams = {
  alpha: 0.3,
  indicatorAlpha: 0.05,
  missDecay: [0.75, 0.5],
  copyOverlap: 0.4,
};

const fresh = (): PeerRating => ({ rating: 0, indicator: 0, missed: 0, rounds: 0 });

const relative = (before: number, after: number) =>
  Number.isFinite(before) && Number.isFinite(after) && before > 0 ? (before - after) / before : -1;

/** The round's score of one evaluation (relative improvement on random data). */
export function roundScore(e: Evaluation): { score: number; indicator: 1 | -1 } {
  const random = relative(e.lossBeforeRandom, e.lossAfterRandom);
  const own = relative(e.lossBeforeOwn, e.lossAfterOwn);
  return { score: random, indicator: own > random ? 1 : -1 };
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
      r.rating = r.rounds === 1 ? score : (1 - p.alpha) * r.rating + p.alpha * score;
      r.indicator = (1 - p.indicatorAlpha) * r.indicator + p.indicatorAlpha * indicator;
    }
    after.set(hotkey, r);
  }
  return after;
}

/** |a ∩ b| / min(|a|, |b|) of two ascending index lists. */
export function overlap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  if (n === 0) return 0;
  let i = 0;
  let j = 0;
  let both = 0;
  while (i < a.length && j < b.length) {
    if (a[i]! === b[j]!) {
      both++;
      i++;
      j++;
    } else if (a[i]! < b[j]!) i++;
    else j++;
  }
  return both / n;
}

export interface Upload {
  hotkey: string;
  /** Arrival order (stream sequence): the later uploader of a pair is the copier. */
  order: number;
  /** Ascending global indices of the kept coordinates. */
  indices: ArrayLike<number>;
}

/** Hotkeys whose kept indices overlap an earlier upload's by at least `threshold`. */
export function findCopies(uploads: readonly Upload[], threshold: number): Map<string, string> {
  const sorted = [...uploads].sort((a, b) => a.order - b.order);
  const copies = new Map<string, string>();
  for (let j = 1; j < sorted.length; j++) {
    for (let i = 0; i < j; i++) {
      if (overlap(sorted[i]!.indices, sorted[j]!.indices) >= threshold) {
        copies.set(sorted[j]!.hotkey, sorted[i]!.hotkey);
        break;
      }
    }
  }
  return copies;
}

export interface Candidate {
  hotkey: string;
  digest: string;
}

/**
 * The G best eligible candidates by rating (ties by hotkey) and the next `reserves`.
 * Deterministic: the same ratings and candidates give the same lists.
 */
export function choose(
  candidates: readonly Candidate[],
  ratings: ReadonlyMap<string, PeerRating>,
  gather: number,
  reserves: number,
): { selected: Candidate[]; reserves: Candidate[] } {
  const key = (c: Candidate) => ratings.get(c.hotkey)?.rating ?? 0;
  const ranked = [...candidates].sort((a, b) => key(b) - key(a) || (a.hotkey < b.hotkey ? -1 : 1));
  const selected = ranked.slice(0, gather).sort((a, b) => (a.hotkey < b.hotkey ? -1 : 1));
  return { selected, reserves: ranked.slice(gather, gather + reserves) };
}
