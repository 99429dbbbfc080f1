// Who is an active member of a run, and the epoch that numbers each change.
// A peer is active while every liveness signal is fresh: its pod is Ready on a
// Ready node, it is registered on chain, it heartbeats on the bus, and it has not
// missed too many rounds. A signal that went bad is forgiven for its grace period,
// so a blip does not reshuffle everyone's shards.

export interface PeerSignals {
  hotkey: string;
  /** Since when (ms) each signal has been bad; undefined while it is good. */
  podNotReadySince?: number;
  unregisteredSince?: number;
  /** Last heartbeat seen on the bus (ms); undefined when none yet. */
  lastHeartbeat?: number;
  /** Consecutive rounds without an accepted submission. */
  missedRounds: number;
}

export interface Grace {
  podMs: number;
  chainMs: number;
  heartbeatMs: number;
  maxMissedRounds: number;
}

export const defaultGrace: Grace = {
  podMs: 60_000,
  chainMs: 120_000,
  heartbeatMs: 30_000,
  maxMissedRounds: 3,
};

export const INACTIVE_REASONS = ["PodNotReady", "NotRegistered", "NoHeartbeat", "MissedRounds"] as const;
export type InactiveReason = (typeof INACTIVE_REASONS)[number];

/** Why a peer is not active now, or undefined when it is. */
export function inactiveReason(
  p: PeerSignals,
  now: number,
  g: Grace = defaultGrace,
): InactiveReason | undefined {
  if (p.podNotReadySince !== undefined && now - p.podNotReadySince >= g.podMs) return "PodNotReady";
  if (p.unregisteredSince !== undefined && now - p.unregisteredSince >= g.chainMs) return "NotRegistered";
  if (p.lastHeartbeat === undefined || now - p.lastHeartbeat >= g.heartbeatMs) return "NoHeartbeat";
  if (p.missedRounds > g.maxMissedRounds) return "MissedRounds";
  return undefined;
}

export interface Membership {
  epoch: number;
  /** Sorted hotkeys of the active members. */
  members: string[];
}

/** A membership as stored in the run's state bucket (JSON); throws when it is not one. */
export function parseMembership(text: string): Membership {
  let m: { epoch?: unknown; members?: unknown };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    throw new Error("membership in the state bucket is not JSON");
  }
  if (
    typeof m !== "object" ||
    m === null ||
    !Number.isSafeInteger(m.epoch) ||
    !Array.isArray(m.members) ||
    !m.members.every((x) => typeof x === "string")
  )
    throw new Error("membership in the state bucket is malformed");
  return { epoch: m.epoch as number, members: [...(m.members as string[])] };
}

/** The next membership: the same object when nothing changed, else the new set with epoch + 1. */
export function nextMembership(previous: Membership | undefined, active: Iterable<string>): Membership {
  const members = [...new Set(active)].sort();
  if (
    previous &&
    previous.members.length === members.length &&
    previous.members.every((m, i) => m === members[i])
  ) {
    return previous;
  }
  return { epoch: (previous?.epoch ?? 0) + 1, members };
}
