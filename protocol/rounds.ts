// Round timing. A round is a chain window (block // blocksPerWindow) when a chain
// drives the run, or a fixed wall-clock slot from the run's start otherwise.
// Submissions count only inside the round's submit window.

export function windowOf(block: number, blocksPerWindow: number): number {
  if (!Number.isSafeInteger(blocksPerWindow) || blocksPerWindow <= 0) {
    throw new Error(`blocksPerWindow ${blocksPerWindow} must be a positive integer`);
  }
  return Math.floor(block / blocksPerWindow);
}

export interface RoundClock {
  /** Wall-clock start of round 0 (ms since the epoch). */
  startMs: number;
  /** Length of a round (ms). */
  roundMs: number;
  /** How long after the end of training (the round's end) a payload may land (ms). */
  submitWindowMs: number;
}

export function roundAt(c: RoundClock, nowMs: number): number {
  return nowMs < c.startMs ? -1 : Math.floor((nowMs - c.startMs) / c.roundMs);
}

export function roundStartMs(c: RoundClock, round: number): number {
  return c.startMs + round * c.roundMs;
}

/** End of round `round`: training stops, the submit window opens. */
export function roundEndMs(c: RoundClock, round: number): number {
  return roundStartMs(c, round + 1);
}

/** Last moment a submission for `round` counts; selections are published after it. */
export function submitDeadlineMs(c: RoundClock, round: number): number {
  return roundEndMs(c, round) + c.submitWindowMs;
}

export type Timeliness = "early" | "on-time" | "late";

/** A payload landing before its round ended was not trained for the whole round. */
export function timeliness(c: RoundClock, round: number, landedMs: number): Timeliness {
  if (landedMs < roundStartMs(c, round)) return "early";
  if (landedMs > submitDeadlineMs(c, round)) return "late";
  return "on-time";
}
