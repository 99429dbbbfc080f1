// What the demo learns from the worker lines it prints: each miner's training loss and bytes
// sent per round, the validator's loss, submissions and selection per round. The node agent
// hands the demo every line a worker pod writes, prefixed with the pod's peer name:
//
//   [miner-1] <time> INFO  [miner 5GYWwqru] round 4: trained 8 steps, loss 4.3215, 1024 tokens, sent 6840 bytes
//   [validator] <time> INFO  [validator 5GbVPzNr] round 4: 3 submissions, selected 3, loss 5.7864, weights fb77...
//
// (the formats worker/main.ts writes). From them: one compact line per round for a person
// watching, and the series of the loss chart.
import type { LossSeries } from "./loss-chart.ts";

export type WorkerEvent =
  | { kind: "trained"; peer: string; round: number; loss: number; tokens: number; bytes: number }
  | { kind: "applied"; peer: string; round: number; payloads: number }
  | { kind: "validated"; peer: string; round: number; submissions: number; selected: number; loss: number }
  | { kind: "ratings"; peer: string; round: number };

const LINE = /^\[([^\]\s]+)\] \S+ (?:INFO|WARN|ERROR)\s+\[(?:miner|validator) [^\]]+\] round (\d+): (.*)$/;
const NUM = "(-?\\d+(?:\\.\\d+)?(?:e[-+]?\\d+)?|NaN|-?Infinity)";
const TRAINED = new RegExp(`^trained \\d+ steps, loss ${NUM}, (\\d+) tokens, sent (\\d+) bytes`);
const APPLIED = /^applied (\d+) payloads/;
const VALIDATED = new RegExp(`^(\\d+) submissions, selected (\\d+), loss ${NUM}`);
const RATINGS = /^ratings /;

/** The round event a worker line reports, if it is one of the per-round lines. */
export function parseWorkerLine(line: string): WorkerEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, peer, r, msg] = m as unknown as [string, string, string, string];
  const round = Number(r);
  let x: RegExpExecArray | null;
  if ((x = TRAINED.exec(msg)))
    return { kind: "trained", peer, round, loss: Number(x[1]), tokens: Number(x[2]), bytes: Number(x[3]) };
  if ((x = APPLIED.exec(msg))) return { kind: "applied", peer, round, payloads: Number(x[1]) };
  if ((x = VALIDATED.exec(msg)))
    return {
      kind: "validated",
      peer,
      round,
      submissions: Number(x[1]),
      selected: Number(x[2]),
      loss: Number(x[3]),
    };
  if (RATINGS.test(msg)) return { kind: "ratings", peer, round };
  return undefined;
}

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

const byName = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });

/** The run's rounds as the worker lines report them (a round reported again replaces the first report). */
export class RunProgress {
  readonly #trained = new Map<string, Map<number, { loss: number; bytes: number }>>();
  readonly #validated = new Map<number, { submissions: number; selected: number; loss: number }>();

  constructor(readonly rounds: number) {}

  /** Takes in one event; answers it. */
  record(e: WorkerEvent): WorkerEvent {
    if (e.kind === "trained") {
      const rounds = this.#trained.get(e.peer) ?? new Map<number, { loss: number; bytes: number }>();
      rounds.set(e.round, { loss: e.loss, bytes: e.bytes });
      this.#trained.set(e.peer, rounds);
    } else if (e.kind === "validated") {
      this.#validated.set(e.round, { submissions: e.submissions, selected: e.selected, loss: e.loss });
    }
    return e;
  }

  /** Miners that reported training in `round`. */
  reported(round: number): number {
    return [...this.#trained.values()].filter((m) => m.has(round)).length;
  }

  /** Rounds the validator has closed. */
  get validatedRounds(): number {
    return this.#validated.size;
  }

  /** The validator's loss at the first and the last round it reported with a finite loss. */
  validatorLoss(): { first: number; last: number } | undefined {
    const losses = [...this.#validated]
      .sort(([a], [b]) => a - b)
      .map(([, v]) => v.loss)
      .filter(Number.isFinite);
    return losses.length ? { first: losses[0]!, last: losses.at(-1)! } : undefined;
  }

  /** One line for a round the validator closed: its loss, each miner's, the selection, the bytes sent. */
  summary(round: number): string {
    const v = this.#validated.get(round);
    const miners = [...this.#trained.keys()].sort(byName);
    const losses = miners.map((m) => this.#trained.get(m)!.get(round));
    const sent = losses.reduce((sum, t) => sum + (t?.bytes ?? 0), 0);
    const width = String(this.rounds).length;
    return (
      `round ${String(round).padStart(width)} (${String(round + 1).padStart(width)}/${this.rounds}): ` +
      `validator loss ${v ? v.loss.toFixed(4) : "-"} | ` +
      `miners ${losses.length ? losses.map((t) => (t ? t.loss.toFixed(4) : "-")).join(" ") : "-"} | ` +
      `selected ${v ? `${v.selected} of ${v.submissions}` : "-"} | sent ${kib(sent)}`
    );
  }

  /** The chart's series: the validator's loss (the main line), then each miner's training loss. */
  series(): LossSeries[] {
    const points = (m: Map<number, { loss: number }>) =>
      [...m].sort(([a], [b]) => a - b).map(([round, { loss }]) => ({ round, loss }));
    return [
      { label: "validator", weight: "main", points: points(this.#validated) },
      ...[...this.#trained.keys()]
        .sort(byName)
        .map((m) => ({ label: `${m} (training)`, points: points(this.#trained.get(m)!) })),
    ];
  }
}
