// The progress of a run as the gradient bus shows it, turned into TrainingRun
// status: a round counts as done once a validator has published its selection.
// Pure; the watcher and the controller beside it do the I/O.
import type { TrainingRun, TrainingRunStatus } from "../../api/index.ts";

/** What the bus has shown about a run so far. */
export interface BusProgress {
  /** Highest round with a published selection. */
  lastSelectedRound?: number;
  /** When that selection was published. */
  lastSelectedAt?: Date;
  /** When the selection of the round before it was published. */
  previousSelectedAt?: Date;
  membership?: { epoch: number; members: string[] };
  /** Last heartbeat (ms, as stored by the server) by hotkey. */
  heartbeats: Map<string, number>;
  /** Last round each hotkey announced a payload for. */
  submitted: Map<string, number>;
  /** Last round each hotkey's payload was selected in. */
  selected: Map<string, number>;
}

export const emptyBusProgress = (): BusProgress => ({
  heartbeats: new Map(),
  submitted: new Map(),
  selected: new Map(),
});

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

export type RunSubject =
  | { kind: "selection" | "submit"; round: number; hotkey: string }
  | { kind: "heartbeat"; hotkey: string };

/**
 * What a subject of the run is: `covenant.<run>.round.<r>.selection|submit.<hotkey>` or
 * `covenant.<run>.heartbeat.<hotkey>`; undefined for anything else.
 */
export function parseRunSubject(subject: string, run: string): RunSubject | undefined {
  const t = subject.split(".");
  if (t[0] !== "covenant" || t[1] !== run) return undefined;
  const hotkey = t.at(-1)!;
  if (!/^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(hotkey)) return undefined;
  if (t.length === 4 && t[2] === "heartbeat") return { kind: "heartbeat", hotkey };
  if (t.length !== 6 || t[2] !== "round" || !/^\d{1,15}$/.test(t[3]!)) return undefined;
  if (t[4] !== "selection" && t[4] !== "submit") return undefined;
  return { kind: t[4], round: Number(t[3]), hotkey };
}
