/** Pure decisions of the worker's chain calls. */

/** Largest Raw commitment field (Data::Raw128). */
export const MAX_RAW_COMMITMENT = 128;

/** Whether the validator sets weights after `round` (every `every` rounds, from round `every`). */
export function weightsDue(round: number, every: number): boolean {
  if (!Number.isInteger(every) || every < 1)
    throw new Error(`setWeightsEveryRounds must be a positive integer, got ${every}`);
  return Number.isInteger(round) && round > 0 && round % every === 0;
}

/**
 * Scores by uid to the set_weights arguments: uids ascending, non-positive and non-finite
 * scores dropped, values scaled so the largest is 65535 (the chain scales the same way).
 */
export function weightsFromScores(scores: ReadonlyMap<number, number>): {
  dests: number[];
  weights: number[];
} {
  const kept = [...scores]
    .filter(([uid, s]) => Number.isInteger(uid) && uid >= 0 && uid <= 65535 && Number.isFinite(s) && s > 0)
    .sort((a, b) => a[0] - b[0]);
  const max = Math.max(0, ...kept.map(([, s]) => s));
  if (max === 0) return { dests: [], weights: [] };
  const out = { dests: [] as number[], weights: [] as number[] };
  for (const [uid, s] of kept) {
    const w = Math.round((s / max) * 65535);
    if (w === 0) continue;
    out.dests.push(uid);
    out.weights.push(w);
  }
  return out;
}

/** The commitment field for a payload location, checked against the chain's Raw limit. */
export function commitmentField(location: string): { [k: string]: string } {
  const bytes = Buffer.from(location, "utf8");
  if (bytes.length === 0) throw new Error("payload location must not be empty");
  if (bytes.length > MAX_RAW_COMMITMENT) {
    throw new Error(
      `payload location is ${bytes.length} bytes; a commitment field holds at most ${MAX_RAW_COMMITMENT}`,
    );
  }
  return { [`Raw${bytes.length}`]: "0x" + bytes.toString("hex") };
}
