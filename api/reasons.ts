/**
 * Condition types, reasons, phases and Event reasons: named constants beside the types so
 * that controllers, tests and docs use the same strings.
 */

export const RUN_PHASES = ["WaitingForPeers", "Warmup", "Training", "Completed", "Failed"] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

export const PEER_ROLES = ["miner", "validator"] as const;
export type PeerRole = (typeof PEER_ROLES)[number];

export const RunCondition = {
  Ready: "Ready",
  Progressing: "Progressing",
  Degraded: "Degraded",
  Suspended: "Suspended",
  /** Owned by the chain bridge. */
  ChainSynced: "ChainSynced",
  /** Owned by the transport controller (the run's bus objects, where this operator provisions them). */
  TransportReady: "TransportReady",
} as const;

export const PeerCondition = {
  Ready: "Ready",
  Scheduled: "Scheduled",
  /** Owned by the chain bridge. */
  Registered: "Registered",
  /** Owned by the round tracker. */
  Contributing: "Contributing",
  /** Whether the worker pod runs the current spec (False while it waits in a rollout). */
  UpToDate: "UpToDate",
} as const;

export const Reason = {
  // TrainingRun
  InvalidSpec: "InvalidSpec",
  WaitingForPeers: "WaitingForPeers",
  Warmup: "Warmup",
  Training: "Training",
  Completed: "Completed",
  Suspended: "Suspended",
  Resumed: "Resumed",
  NotSuspended: "NotSuspended",
  PeersNotReady: "PeersNotReady",
  AllPeersReady: "AllPeersReady",
  ConfigWritten: "ConfigWritten",
  /** A change of round-level fields: a new config epoch from a later round on. */
  ConfigEpoch: "ConfigEpoch",
  // CovenantPeer
  RunNotFound: "RunNotFound",
  RunNotActive: "RunNotActive",
  RunConfigPending: "RunConfigPending",
  HotkeySecretMissing: "HotkeySecretMissing",
  PodCreated: "PodCreated",
  PodDeleted: "PodDeleted",
  PodPending: "PodPending",
  PodScheduled: "PodScheduled",
  PodReady: "PodReady",
  PodNotReady: "PodNotReady",
  /** The kubelet cannot get the worker image (wrong digest, not pulled, no access). */
  ImageNotAvailable: "ImageNotAvailable",
  PodFailed: "PodFailed",
  NodeLost: "NodeLost",
  NodeNotReady: "NodeNotReady",
  SpecChanged: "SpecChanged",
  PodUpToDate: "PodUpToDate",
  RolloutWaiting: "RolloutWaiting",
  DuplicatePod: "DuplicatePod",
  NoPod: "NoPod",
  // TrainingRun TransportReady (and its Events)
  /** The run's stream and buckets exist as planned. */
  Provisioned: "Provisioned",
  /** The bus cannot be reached (refused, timed out, connection down); retried with backoff. */
  BusUnreachable: "BusUnreachable",
  /** The bus answered but refused to create, update or delete (limits, permissions, placement). */
  ProvisionFailed: "ProvisionFailed",
  /** The run is being deleted and its bus objects could not be removed yet. */
  CleanupFailed: "CleanupFailed",
  /** Events: stream or buckets created or updated; buckets of departed hotkeys removed; all removed. */
  BusObjectsCreated: "BusObjectsCreated",
  BusBucketsRemoved: "BusBucketsRemoved",
  BusObjectsDeleted: "BusObjectsDeleted",
} as const;
export type ReasonName = (typeof Reason)[keyof typeof Reason];

/** Labels and annotations the operator puts on the objects it creates. */
export const Label = {
  ManagedBy: "app.kubernetes.io/managed-by",
  Component: "app.kubernetes.io/component",
  Run: "covenant.io/run",
  Peer: "covenant.io/peer",
  Role: "covenant.io/role",
} as const;

export const Annotation = {
  /** Hash of the desired pod spec; a pod whose hash differs is replaced. */
  PodSpecHash: "covenant.io/pod-spec-hash",
  /** How many pods of this peer were replaced before this one (carried from pod to pod). */
  Replacements: "covenant.io/replacements",
} as const;

export const MANAGED_BY = "covenant-operator";

/** Field managers: one per controller, for server-side apply. */
export const FieldManager = {
  TrainingRun: "covenant-trainingrun-controller",
  CovenantPeer: "covenant-peer-controller",
  Transport: "covenant-transport-controller",
} as const;

/**
 * Finalizer on TrainingRuns whose bus objects (stream and buckets) this operator provisioned:
 * the run is not gone until they are deleted from the bus.
 */
export const BUS_OBJECTS_FINALIZER = "covenant.io/bus-objects";
