/**
 * Condition reasons and Event reasons the chain bridge writes. They belong beside the
 * other reasons in api/reasons.ts; they live here until that file takes them.
 */
export const ChainReason = {
  // CovenantPeer Registered condition
  Registered: "Registered",
  NotRegistered: "NotRegistered",
  Deregistered: "Deregistered",
  HotkeyUnknown: "HotkeyUnknown",
  // TrainingRun ChainSynced condition
  Synced: "Synced",
  Connecting: "Connecting",
  ChainUnreachable: "ChainUnreachable",
  ChainStalled: "ChainStalled",
} as const;

export const ChainEventReason = {
  PeerRegistered: "PeerRegistered",
  PeerDeregistered: "PeerDeregistered",
  WeightsSet: "WeightsSet",
  ChainUnreachable: "ChainUnreachable",
  ChainReconnected: "ChainReconnected",
} as const;
export type ChainEventReasonName = (typeof ChainEventReason)[keyof typeof ChainEventReason];

/** Field manager of everything the chain bridge applies. */
export const CHAIN_FIELD_MANAGER = "covenant-chain-bridge";
