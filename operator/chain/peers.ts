/**
 * From a metagraph snapshot and the run's CovenantPeers to their chain status and Events.
 * Pure: the same inputs give the same patches and events.
 *
 * A peer whose hotkey holds a uid is Registered. A peer that held a uid which another hotkey
 * now holds was deregistered (the chain has no deregistration event: a replaced neuron shows
 * up as a new registration on the same uid).
 */
import { ChainEventReason, ChainReason, type ChainEventReasonName } from "./reasons.ts";
import type { MetagraphSnapshot, NeuronView } from "./metagraph.ts";

export interface PeerChainInput {
  namespace: string;
  name: string;
  role: "miner" | "validator";
  /** SS58 hotkey, when known (from the peer's status or its Secret). */
  hotkey: string | undefined;
  /** The uid last written to the peer's status, if any. */
  previousUid: number | undefined;
  previouslyRegistered: boolean;
  /** The Registered condition's message when it says Deregistered: a deregistration sticks. */
  deregistered?: string;
}

export interface RegisteredCondition {
  type: "Registered";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/** Status fields the chain bridge owns on a CovenantPeer. */
export interface PeerChainStatus {
  hotkey?: string;
  uid?: number;
  stake?: string;
  incentive?: number;
  validatorPermit?: boolean;
  registered: RegisteredCondition;
}

export interface PlannedEvent {
  namespace: string;
  name: string;
  type: "Normal" | "Warning";
  reason: ChainEventReasonName;
  message: string;
}

export interface PeerChainPlan {
  peers: { namespace: string; name: string; status: PeerChainStatus }[];
  events: PlannedEvent[];
}

export function planPeerChainStatus(
  snapshot: MetagraphSnapshot,
  peers: readonly PeerChainInput[],
  previous?: MetagraphSnapshot,
): PeerChainPlan {
  const byHotkey = new Map<string, NeuronView>(snapshot.neurons.map((n) => [n.hotkey, n]));
  const prevByHotkey = new Map<string, NeuronView>((previous?.neurons ?? []).map((n) => [n.hotkey, n]));
  const out: PeerChainPlan = { peers: [], events: [] };
  const at = `subnet ${snapshot.netuid} at block #${snapshot.block}`;
  for (const p of peers) {
    const ev = (type: PlannedEvent["type"], reason: ChainEventReasonName, message: string) =>
      out.events.push({ namespace: p.namespace, name: p.name, type, reason, message });
    if (!p.hotkey) {
      out.peers.push({
        namespace: p.namespace,
        name: p.name,
        status: {
          registered: {
            type: "Registered",
            status: "Unknown",
            reason: ChainReason.HotkeyUnknown,
            message: "the peer's hotkey is not known yet (its Secret has not been read)",
          },
        },
      });
      continue;
    }
    const n = byHotkey.get(p.hotkey);
    if (n) {
      out.peers.push({
        namespace: p.namespace,
        name: p.name,
        status: {
          hotkey: p.hotkey,
          uid: n.uid,
          stake: n.stake.toString(),
          incentive: Math.round(n.incentive * 1e6) / 1e6,
          validatorPermit: n.validatorPermit,
          registered: {
            type: "Registered",
            status: "True",
            reason: ChainReason.Registered,
            message: `uid ${n.uid} on ${at}`,
          },
        },
      });
      if (!p.previouslyRegistered || p.previousUid !== n.uid) {
        ev(
          "Normal",
          ChainEventReason.PeerRegistered,
          `hotkey ${p.hotkey} registered as uid ${n.uid} on ${at}`,
        );
      }
      const before = prevByHotkey.get(p.hotkey);
      if (p.role === "validator" && before && before.uid === n.uid && n.lastUpdate > before.lastUpdate) {
        ev(
          "Normal",
          ChainEventReason.WeightsSet,
          `uid ${n.uid} set weights at block #${n.lastUpdate} on subnet ${snapshot.netuid}`,
        );
      }
      continue;
    }
    const taken = p.previousUid === undefined ? undefined : snapshot.neurons[p.previousUid];
    const wasRegistered = p.previouslyRegistered && p.previousUid !== undefined;
    // Deregistered stays until the hotkey registers again (then it is Registered), so the
    // reason is not lost at the next block.
    const registered: RegisteredCondition =
      !wasRegistered && p.deregistered !== undefined
        ? { type: "Registered", status: "False", reason: ChainReason.Deregistered, message: p.deregistered }
        : wasRegistered
          ? {
              type: "Registered",
              status: "False",
              reason: ChainReason.Deregistered,
              message: taken
                ? `uid ${p.previousUid} is now held by hotkey ${taken.hotkey} (${at})`
                : `hotkey ${p.hotkey} no longer holds a uid on ${at}`,
            }
          : {
              type: "Registered",
              status: "False",
              reason: ChainReason.NotRegistered,
              message: `hotkey ${p.hotkey} holds no uid on ${at}`,
            };
    out.peers.push({ namespace: p.namespace, name: p.name, status: { hotkey: p.hotkey, registered } });
    if (wasRegistered) ev("Warning", ChainEventReason.PeerDeregistered, registered.message);
  }
  return out;
}
