/**
 * Planning for a run's bus objects, where this operator is the run's organiser
 * (`--provision-bus`). Pure: the controller (transport-controller.ts) observes the cluster,
 * the chain bridge's view of the subnet and the bus, and does what these functions decide.
 *
 * - Who needs buckets: the hotkeys of this cluster's CovenantPeers of the run and every
 *   hotkey registered on the run's subnet (any of them may be admitted by chain identity,
 *   docs/admission.md). Validators: this cluster's validator peers and the holders of a
 *   validator permit (admission lets them log in as validators).
 * - Buckets the plan no longer has (a hotkey gone from the subnet and not a peer here) are
 *   removed after a grace, by default the payload retention: by then everything in them has
 *   aged out, so no worker catching up can still need it. Only while the subnet is known:
 *   with the chain unread, a bucket cannot be told from one of a registered hotkey.
 * - TransportReady: True/Provisioned with counts, or False with the reason and the error.
 */
import {
  BUS_OBJECTS_FINALIZER,
  Reason,
  RunCondition,
  type TrainingRun,
  type TrainingRunStatus,
} from "../../api/index.ts";
import { backoffDelay, type BackoffPolicy } from "../../protocol/chain/backoff.ts";
import { planBus, type BusPlan } from "../bus/provision.ts";
import { runBusSpec, type RunHotkeys } from "../bus/runspec.ts";
import { checkHotkey } from "../../protocol/names.ts";
import { mergeConditions, type DesiredCondition } from "./conditions.ts";
import type { PlannedEvent } from "./peerplan.ts";
import type { SubnetView } from "./subnet.ts";

export interface PeerHotkey {
  hotkey: string;
  role: "miner" | "validator";
}

export interface HotkeySources {
  hotkeys: RunHotkeys;
  /** Distinct hotkeys from this cluster's peers. */
  fromCluster: number;
  /** Registered hotkeys that are not peers of this cluster. */
  fromSubnet: number;
}

function valid(hotkey: string): boolean {
  try {
    checkHotkey(hotkey);
    return true;
  } catch {
    return false;
  }
}

/** Miners and validators of the run from both sources; a hotkey is a validator if either says so. */
export function runHotkeys(peers: readonly PeerHotkey[], subnet: SubnetView | undefined): HotkeySources {
  const validators = new Set<string>();
  const all = new Set<string>();
  const cluster = new Set<string>();
  for (const p of peers) {
    if (!valid(p.hotkey)) continue;
    cluster.add(p.hotkey);
    all.add(p.hotkey);
    if (p.role === "validator") validators.add(p.hotkey);
  }
  for (const n of subnet?.neurons ?? []) {
    if (!valid(n.hotkey)) continue;
    all.add(n.hotkey);
    if (n.validatorPermit) validators.add(n.hotkey);
  }
  return {
    hotkeys: {
      miners: [...all].filter((h) => !validators.has(h)).sort(),
      validators: [...validators].sort(),
    },
    fromCluster: cluster.size,
    fromSubnet: all.size - cluster.size,
  };
}

export interface DesiredBus {
  plan: BusPlan;
  sources: HotkeySources;
  /** How long a bucket the plan dropped is kept before it is removed. */
  graceMs: number;
}

/** The run's bus plan, or the reason there is none (a spec planBus refuses). */
export function desiredBus(
  run: TrainingRun,
  peers: readonly PeerHotkey[],
  subnet: SubnetView | undefined,
  opts: { replicas: number; departedGraceMs?: number },
): DesiredBus | { error: string } {
  const sources = runHotkeys(peers, subnet);
  try {
    const spec = runBusSpec(run.metadata.name, run.spec, sources.hotkeys, opts.replicas);
    const plan = planBus(spec);
    return { plan, sources, graceMs: opts.departedGraceMs ?? spec.retainRounds * spec.roundMs };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

export interface Departures {
  /** Streams to delete now. */
  remove: string[];
  /** When each remaining extra bucket was first seen extra (the controller keeps it). */
  since: Map<string, number>;
  /** Milliseconds until the next one is due; undefined when none waits. */
  nextInMs: number | undefined;
}

/**
 * Buckets the plan dropped, removed once they have been extra for `graceMs`. A bucket that
 * is wanted again leaves the clock; with the subnet unknown nothing is removed and the
 * clocks restart (after an operator restart they restart too: removal is only delayed).
 */
export function planDepartures(
  extra: readonly string[],
  since: ReadonlyMap<string, number> | undefined,
  now: number,
  graceMs: number,
  subnetKnown: boolean,
): Departures {
  if (!subnetKnown) return { remove: [], since: new Map(), nextInMs: undefined };
  const next = new Map<string, number>();
  const remove: string[] = [];
  let nextInMs: number | undefined;
  for (const name of extra) {
    const t = since?.get(name) ?? now;
    const due = t + graceMs - now;
    if (due <= 0) remove.push(name);
    else {
      next.set(name, t);
      nextInMs = Math.min(nextInMs ?? due, due);
    }
  }
  return { remove, since: next, nextInMs };
}

/** What one reconcile of a live run came to. */
export type TransportOutcome =
  | { kind: "invalid"; message: string }
  | { kind: "unreachable"; message: string }
  | { kind: "failed"; message: string }
  | {
      kind: "provisioned";
      desired: DesiredBus;
      subnet: SubnetView | undefined;
      created: string[];
      updated: string[];
      removed: string[];
      /** Dropped buckets still in their grace. */
      waiting: number;
    };

/** What one reconcile of a run being deleted came to, when its objects are not all gone. */
export type CleanupOutcome = { kind: "unreachable" | "failed"; message: string };

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The TransportReady condition of an outcome. Messages carry counts, never timestamps. */
export function transportCondition(o: TransportOutcome | CleanupOutcome, deleting = false): DesiredCondition {
  const type = RunCondition.TransportReady;
  if (deleting)
    return {
      type,
      status: "False",
      reason: o.kind === "unreachable" ? Reason.BusUnreachable : Reason.CleanupFailed,
      message: `deleting the run's stream and buckets: ${"message" in o ? o.message : ""} (the finalizer ${BUS_OBJECTS_FINALIZER} stays until they are gone)`,
    };
  switch (o.kind) {
    case "invalid":
      return {
        type,
        status: "False",
        reason: Reason.InvalidSpec,
        message: `cannot plan the run's bus: ${o.message}`,
      };
    case "unreachable":
      return { type, status: "False", reason: Reason.BusUnreachable, message: o.message };
    case "failed":
      return { type, status: "False", reason: Reason.ProvisionFailed, message: o.message };
    case "provisioned": {
      const { plan, sources } = o.desired;
      const parts = [
        `stream ${plan.stream.name}, state bucket, ${plural(plan.payloadBuckets.length, "payload bucket")} and ` +
          `${plural(plan.checkpointBuckets.length, "checkpoint bucket")}, ${plural(plan.replicas, "replica")} each`,
        `hotkeys: ${sources.fromCluster} from this cluster's peers, ` +
          (o.subnet
            ? `${sources.fromSubnet} more registered on subnet ${o.subnet.netuid}`
            : "the subnet not read yet (buckets for this cluster's peers only)"),
      ];
      if (o.waiting) parts.push(`${plural(o.waiting, "bucket")} of departed hotkeys awaiting removal`);
      return { type, status: "True", reason: Reason.Provisioned, message: parts.join("; ") };
    }
  }
}

/** The status this controller applies: only its condition. */
export function transportStatus(run: TrainingRun, c: DesiredCondition, now: Date): TrainingRunStatus {
  return { conditions: mergeConditions(run.status?.conditions, [c], run.metadata.generation, now) };
}

function some(names: readonly string[]): string {
  const shown = names.slice(0, 5).join(", ");
  return names.length > 5 ? `${shown}, ... (${names.length} in all)` : shown;
}

/** Events after the status write: what changed on the bus, and a bus turning unreachable. */
export function transportEvents(
  o: TransportOutcome,
  previous: TrainingRunStatus | undefined,
): PlannedEvent[] {
  const events: PlannedEvent[] = [];
  if (o.kind === "provisioned") {
    if (o.created.length || o.updated.length)
      events.push({
        type: "Normal",
        reason: Reason.BusObjectsCreated,
        message: [
          o.created.length ? `created ${some(o.created)}` : "",
          o.updated.length ? `updated ${some(o.updated)}` : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
    if (o.removed.length)
      events.push({
        type: "Normal",
        reason: Reason.BusBucketsRemoved,
        message: `removed buckets of hotkeys gone from the subnet: ${some(o.removed)}`,
      });
    return events;
  }
  // Warn once per transition, not at every retry.
  const prev = previous?.conditions?.find((c) => c.type === RunCondition.TransportReady);
  const c = transportCondition(o);
  if (prev?.status !== "False" || prev.reason !== c.reason)
    events.push({ type: "Warning", reason: c.reason, message: c.message });
  return events;
}

export const hasBusFinalizer = (run: TrainingRun): boolean =>
  (run.metadata.finalizers ?? []).includes(BUS_OBJECTS_FINALIZER);

/** Stream deletion order on cleanup: buckets, then the state bucket, the run stream last. */
export function cleanupOrder(streams: Iterable<string>, runStream: string): string[] {
  const rank = (s: string) => (s === runStream ? 2 : s.startsWith("KV_") ? 1 : 0);
  return [...streams].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export const RETRY_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 30_000 };

/** Delay before retry `failures` (1 for the first) while the bus is down or refusing. */
export function retryAfterMs(
  failures: number,
  p: BackoffPolicy = RETRY_BACKOFF,
  random?: () => number,
): number {
  return backoffDelay(Math.max(1, failures), p, random);
}

/**
 * Whether an error means the bus could not be reached (retry and wait) rather than a refusal
 * (limits, permissions, placement: someone must act). Looks through `cause` chains.
 */
export function isUnreachable(err: unknown, connected: boolean): boolean {
  if (!connected) return true;
  const transient = new Set([
    "BusUnreachableError",
    "ConnectionError",
    "ClosedConnectionError",
    "TimeoutError",
    "NoResponders",
    "JetStreamNotEnabled",
    "RequestError",
  ]);
  for (let e = err as { name?: string; code?: string; cause?: unknown } | undefined, i = 0; e && i < 8; i++) {
    if (transient.has(e.name ?? "")) return true;
    if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET" || e.code === "ETIMEDOUT") return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * An error message safe for status and Events: user info in URLs removed and nkey seeds
 * masked, in case a library echoes its input.
 */
export function safeMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1")
    .replace(/\bS[A-Z][A-Z2-7]{56}\b/g, "<seed>")
    .slice(0, 1024);
}
