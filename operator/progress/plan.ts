// The progress of a run as the gradient bus shows it, turned into TrainingRun
// status: a round counts as done once a validator has published its selection.
// Pure; the watcher and the controller beside it do the I/O.
import type { TrainingRun, TrainingRunStatus } from "../api/index.ts";

/** What the bus has shown about a run so far. */
export interface BusProgress {
  /** Highest round with a published selection. */
  lastSelectedRound?: number;
  /** When that selection was published. */
  lastSelectedAt?: Date;
  /** When the selection of the round before it was published. */
  previousSelectedAt?: Date;
  membership?: { epoch: number; members: string[] };
}

export type ProgressStatus = Pick<
  TrainingRunStatus,
  "round" | "roundStartedAt" | "lastRoundSeconds" | "membershipEpoch" | "activePeers"
>;

export const PROGRESS_FIELDS = [
  "round",
  "roundStartedAt",
  "lastRoundSeconds",
  "membershipEpoch",
  "activePeers",
] as const satisfies readonly (keyof ProgressStatus)[];

/** Status fields owned by the progress controller; only those that the bus has shown. */
export function planProgress(run: TrainingRun, bus: BusProgress): ProgressStatus {
  const out: ProgressStatus = {};
  if (bus.lastSelectedRound !== undefined) {
    // Rounds are numbered from 0; `round` is the round being trained now (= rounds completed).
    out.round = Math.min(bus.lastSelectedRound + 1, run.spec.rounds);
    if (bus.lastSelectedAt) out.roundStartedAt = bus.lastSelectedAt.toISOString();
    if (bus.lastSelectedAt && bus.previousSelectedAt) {
      out.lastRoundSeconds = Math.max(
        0,
        (bus.lastSelectedAt.getTime() - bus.previousSelectedAt.getTime()) / 1000,
      );
    }
  }
  if (bus.membership) {
    out.membershipEpoch = bus.membership.epoch;
    out.activePeers = [...bus.membership.members].sort();
  }
  return out;
}

/** Whether applying `next` would change the run's status. */
export function progressChanged(current: TrainingRunStatus | undefined, next: ProgressStatus): boolean {
  return PROGRESS_FIELDS.some(
    (f) => next[f] !== undefined && JSON.stringify(current?.[f]) !== JSON.stringify(next[f]),
  );
}

/** The round of a selection subject `covenant.<run>.round.<r>.selection.<hotkey>`, if it is one. */
export function selectionRound(subject: string, run: string): number | undefined {
  const m = /^covenant\.([a-z0-9-]+)\.round\.(\d+)\.selection\.[1-9A-HJ-NP-Za-km-z]+$/.exec(subject);
  if (!m || m[1] !== run) return undefined;
  const r = Number(m[2]);
  return Number.isSafeInteger(r) ? r : undefined;
}
