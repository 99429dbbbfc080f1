/**
 * Churn, decided: from a run's CovenantPeers (pod readiness, chain registration) and what the
 * bus shows (heartbeats, submissions, selections) to the next membership, the shard
 * assignment it implies, each peer's round status and the Events. Pure and deterministic;
 * the controller reads the world and carries the plan out.
 *
 * Rules:
 * - candidates are the run's miners with a known hotkey that are not suspended;
 * - a member stays while no signal has been bad for longer than its grace
 *   (protocol/membership.ts): a blip does not move anyone's shards;
 * - a non-member joins only when every signal is good now: its pod is Ready (its worker has
 *   caught up), it is not unregistered, and it heartbeats;
 * - missed rounds count the closed rounds since a member last submitted, from the round it
 *   joined; a member without shards is never counted as missing;
 * - any change bumps the epoch; workers adopt it at their next round boundary.
 */
import type { Condition } from "../../api/index.ts";
import {
  INACTIVE_REASONS,
  inactiveReason,
  nextMembership,
  type Grace,
  type InactiveReason,
  type Membership,
  type PeerSignals,
} from "../../protocol/membership.ts";
import { assignShards } from "../../protocol/rendezvous.ts";

export interface PeerView {
  /** CovenantPeer name. */
  name: string;
  role: "miner" | "validator";
  hotkey: string | undefined;
  suspended: boolean;
  ready: Pick<Condition, "status" | "lastTransitionTime"> | undefined;
  registered: Pick<Condition, "status" | "lastTransitionTime"> | undefined;
}

/** What the bus has shown about the run's peers. */
export interface BusView {
  /** Last heartbeat (ms) by hotkey. */
  heartbeats: ReadonlyMap<string, number>;
  /** Last round each hotkey announced a payload for. */
  submitted: ReadonlyMap<string, number>;
  /** Last round each hotkey's payload was selected in. */
  selected: ReadonlyMap<string, number>;
  /** Highest round with a published selection. */
  lastClosedRound: number | undefined;
}

export interface MembershipInput {
  run: string;
  shards: number;
  previous: Membership | undefined;
  peers: readonly PeerView[];
  bus: BusView;
  /** First round each current member was expected to contribute to (kept by the controller). */
  memberSince: ReadonlyMap<string, number>;
  grace: Grace;
  now: number;
}

export type NotContributing = InactiveReason | "Suspended" | "HotkeyUnknown" | "NoShards";

/** The round status of one peer: the fields and the condition the membership controller owns. */
export interface PeerRoundStatus {
  assignedShards?: number;
  lastSubmittedRound?: number;
  lastSelectedRound?: number;
  missedRounds?: number;
  contributing: { status: "True" | "False"; reason: string; message: string };
}

export interface MembershipPlan {
  /** The next membership: the previous object itself when nothing changed. */
  membership: Membership;
  changed: boolean;
  joined: string[];
  left: { hotkey: string; reason: InactiveReason | "Removed" }[];
  /** Peer name -> round status. */
  peers: Map<string, PeerRoundStatus>;
  /** Hotkey of the validator the workers follow (a Ready validator first, then by name). */
  validator: string | undefined;
  /** Shard summary of the new assignment. */
  shards: { total: number; assigned: number; perPeerMin: number; perPeerMax: number };
  /** When the next grace period runs out, if one is running. */
  recheckMs: number | undefined;
}

const isInactiveReason = (r: string | undefined): r is InactiveReason =>
  (INACTIVE_REASONS as readonly (string | undefined)[]).includes(r);

/**
 * The first round a peer that joins now is expected to submit for: the round in progress may
 * have started before it adopted the new epoch, the one after cannot have.
 */
export const firstExpectedRound = (lastClosed: number | undefined): number => (lastClosed ?? -1) + 2;

const time = (t: unknown): number | undefined => (t ? new Date(t as string).getTime() : undefined);

/** Rounds a member has missed: closed rounds since it joined in which it submitted nothing. */
export function missedRounds(
  lastClosed: number | undefined,
  lastSubmitted: number | undefined,
  since: number | undefined,
): number {
  if (lastClosed === undefined) return 0;
  const from = Math.max(lastSubmitted ?? -1, (since ?? 0) - 1);
  return Math.max(0, lastClosed - from);
}

export function planMembership(i: MembershipInput): MembershipPlan {
  const { grace, now, bus } = i;
  const wasMember = new Set(i.previous?.members ?? []);
  const previousAssignment = assignShards(i.run, i.shards, i.previous?.members ?? []);
  const signals = (p: PeerView & { hotkey: string }): PeerSignals => {
    const hasShards = (previousAssignment.get(p.hotkey)?.length ?? 0) > 0;
    return {
      hotkey: p.hotkey,
      podNotReadySince: p.ready?.status === "True" ? undefined : (time(p.ready?.lastTransitionTime) ?? now),
      unregisteredSince:
        p.registered?.status === "False" ? (time(p.registered.lastTransitionTime) ?? now) : undefined,
      lastHeartbeat: bus.heartbeats.get(p.hotkey),
      missedRounds:
        wasMember.has(p.hotkey) && hasShards
          ? missedRounds(bus.lastClosedRound, bus.submitted.get(p.hotkey), i.memberSince.get(p.hotkey))
          : 0,
    };
  };

  const why = new Map<string, NotContributing | undefined>();
  const active: string[] = [];
  let recheckMs: number | undefined;
  const recheck = (ms: number) => (recheckMs = Math.max(0, Math.min(recheckMs ?? ms, ms)));
  for (const p of i.peers) {
    if (p.role !== "miner") continue;
    if (p.suspended) {
      why.set(p.name, "Suspended");
      continue;
    }
    if (!p.hotkey) {
      why.set(p.name, "HotkeyUnknown");
      continue;
    }
    const s = signals({ ...p, hotkey: p.hotkey });
    let reason: InactiveReason | undefined;
    if (wasMember.has(p.hotkey)) {
      reason = inactiveReason(s, now, grace);
      if (!reason) {
        // Still a member: wake up when the first running grace would run out.
        if (s.podNotReadySince !== undefined) recheck(s.podNotReadySince + grace.podMs - now);
        if (s.unregisteredSince !== undefined) recheck(s.unregisteredSince + grace.chainMs - now);
        if (s.lastHeartbeat !== undefined) recheck(s.lastHeartbeat + grace.heartbeatMs - now);
      }
    } else {
      // Joining takes every signal good now; grace is for members, not for newcomers.
      reason =
        s.podNotReadySince !== undefined
          ? "PodNotReady"
          : s.unregisteredSince !== undefined
            ? "NotRegistered"
            : inactiveReason({ ...s, missedRounds: 0 }, now, grace);
    }
    why.set(p.name, reason);
    if (!reason) active.push(p.hotkey);
  }

  // A run's first membership is published once someone is active, not as an empty epoch 1.
  const membership =
    !i.previous && active.length === 0 ? { epoch: 0, members: [] } : nextMembership(i.previous, active);
  const changed = membership !== i.previous && membership.epoch > 0;
  const now_ = new Set(membership.members);
  const joined = membership.members.filter((h) => !wasMember.has(h));
  const byHotkey = new Map(i.peers.filter((p) => p.hotkey).map((p) => [p.hotkey!, p]));
  const left = [...wasMember]
    .filter((h) => !now_.has(h))
    .sort()
    .map((hotkey) => {
      const p = byHotkey.get(hotkey);
      const r = p ? why.get(p.name) : undefined;
      return { hotkey, reason: isInactiveReason(r) ? r : ("Removed" as const) };
    });

  const assignment = assignShards(i.run, i.shards, membership.members);
  const counts = [...assignment.values()].map((s) => s.length);
  const shards = {
    total: i.shards,
    assigned: counts.reduce((a, b) => a + b, 0),
    perPeerMin: counts.length ? Math.min(...counts) : 0,
    perPeerMax: counts.length ? Math.max(...counts) : 0,
  };

  const peers = new Map<string, PeerRoundStatus>();
  for (const p of i.peers) {
    const status: PeerRoundStatus = { contributing: { status: "False", reason: "", message: "" } };
    if (p.hotkey) {
      const sub = bus.submitted.get(p.hotkey);
      const sel = bus.selected.get(p.hotkey);
      if (sub !== undefined) status.lastSubmittedRound = sub;
      if (sel !== undefined) status.lastSelectedRound = sel;
    }
    if (p.role === "validator") {
      const beat = p.hotkey ? bus.heartbeats.get(p.hotkey) : undefined;
      const fresh = beat !== undefined && now - beat < grace.heartbeatMs;
      status.contributing = fresh
        ? { status: "True", reason: "Validating", message: "the validator heartbeats on the bus" }
        : { status: "False", reason: "NoHeartbeat", message: "no recent heartbeat from the validator" };
      peers.set(p.name, status);
      continue;
    }
    const mine = p.hotkey ? assignment.get(p.hotkey) : undefined;
    if (mine) {
      status.assignedShards = mine.length;
      const since = joined.includes(p.hotkey!)
        ? firstExpectedRound(bus.lastClosedRound)
        : i.memberSince.get(p.hotkey!);
      status.missedRounds =
        mine.length > 0 ? missedRounds(bus.lastClosedRound, bus.submitted.get(p.hotkey!), since) : 0;
      status.contributing =
        mine.length === 0
          ? {
              status: "False",
              reason: "NoShards",
              message: `member of epoch ${membership.epoch} without a shard (more members than shards)`,
            }
          : {
              status: "True",
              reason: "Member",
              message: `member of epoch ${membership.epoch} with ${mine.length} of ${i.shards} shards`,
            };
    } else {
      const r = why.get(p.name) ?? "HotkeyUnknown";
      status.assignedShards = 0;
      status.contributing = { status: "False", reason: r, message: notContributingMessage(r, grace) };
    }
    peers.set(p.name, status);
  }

  return {
    membership,
    changed,
    joined,
    left,
    peers,
    validator: chooseValidator(i.peers),
    shards,
    recheckMs,
  };
}

function notContributingMessage(r: NotContributing, g: Grace): string {
  switch (r) {
    case "Suspended":
      return "the peer is suspended";
    case "HotkeyUnknown":
      return "the peer's hotkey is not known yet";
    case "NoShards":
      return "no shard is assigned to this peer";
    case "PodNotReady":
      return `the worker pod is not Ready (a member leaves after ${g.podMs / 1000}s)`;
    case "NotRegistered":
      return `the hotkey is not registered on the subnet (a member leaves after ${g.chainMs / 1000}s)`;
    case "NoHeartbeat":
      return `no heartbeat on the bus within ${g.heartbeatMs / 1000}s`;
    case "MissedRounds":
      return `missed more than ${g.maxMissedRounds} rounds in a row`;
  }
}

/** The validator the workers follow: a Ready one first, then by name. */
export function chooseValidator(peers: readonly PeerView[]): string | undefined {
  const vs = peers
    .filter((p) => p.role === "validator" && p.hotkey && !p.suspended)
    .sort(
      (a, b) =>
        Number(b.ready?.status === "True") - Number(a.ready?.status === "True") ||
        a.name.localeCompare(b.name),
    );
  return vs[0]?.hotkey;
}

/** Grace periods from the run's spec.membership (seconds) in the protocol's terms (ms). */
export function graceOf(spec: {
  podGraceSeconds: number;
  chainGraceSeconds: number;
  heartbeatGraceSeconds: number;
  maxMissedRounds: number;
}): Grace {
  return {
    podMs: spec.podGraceSeconds * 1000,
    chainMs: spec.chainGraceSeconds * 1000,
    heartbeatMs: spec.heartbeatGraceSeconds * 1000,
    maxMissedRounds: spec.maxMissedRounds,
  };
}
