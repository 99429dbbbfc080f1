// Names on the gradient bus, derived from the run id. One place, so operator and
// worker never disagree about a subject or a bucket.

/** A run id is a DNS-1123 label: it is used inside NATS subjects, stream and bucket names. */
export const RUN_ID_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function checkRunId(run: string): string {
  if (!RUN_ID_PATTERN.test(run)) {
    throw new Error(
      `run id ${JSON.stringify(run)} must be a DNS-1123 label (lowercase letters, digits, '-')`,
    );
  }
  return run;
}

function checkRound(round: number): number {
  if (!Number.isSafeInteger(round) || round < 0)
    throw new Error(`round ${round} must be a non-negative integer`);
  return round;
}

/** SS58 addresses are base58: letters and digits only, safe as a subject token. */
const HOTKEY_TOKEN = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;

export function checkHotkey(hotkey: string): string {
  if (!HOTKEY_TOKEN.test(hotkey)) throw new Error(`hotkey ${JSON.stringify(hotkey)} is not an SS58 address`);
  return hotkey;
}

export interface BusNames {
  run: string;
  /** NATS account of the run: every user of the run lives in it, nothing crosses runs. */
  account: string;
  /** JetStream stream holding announcements, selections and heartbeats of the run. */
  stream: string;
  /** Every subject of the run. */
  allSubjects: string;
  /** KV bucket of membership, assignment and checkpoint pointers. */
  stateBucket: string;
  /**
   * Object Store bucket of one peer's payloads. One bucket per peer: Object Store chunk
   * subjects carry random ids, so only a bucket boundary lets NATS permissions say
   * "this peer writes here and nowhere else".
   */
  payloadBucket(hotkey: string): string;
  /** Object Store bucket of one validator's checkpoints (no age limit, bounded size). */
  checkpointBucket(hotkey: string): string;
  /** A peer's announcement of its payload for a round. */
  submit(round: number, hotkey: string): string;
  /** Every announcement of a round. */
  submitAll(round: number): string;
  /** A validator's selection for a round. */
  selection(round: number, hotkey: string): string;
  /** Every selection of a round. */
  selectionAll(round: number): string;
  heartbeat(hotkey: string): string;
  heartbeatAll: string;
  /** Object name of a peer's payload for a round (inside the peer's own bucket). */
  payloadObject(round: number): string;
  /** Object name of a checkpoint taken after `round`. */
  checkpointObject(round: number): string;
}

/** The name of the Object Store's backing stream (the client library's convention). */
export const objectStream = (bucket: string) => `OBJ_${bucket}`;
/** The name of the KV bucket's backing stream. */
export const kvStream = (bucket: string) => `KV_${bucket}`;

export function busNames(run: string): BusNames {
  checkRunId(run);
  const prefix = `covenant.${run}`;
  return {
    run,
    account: `covenant-${run}`,
    stream: `covenant-${run}`,
    allSubjects: `${prefix}.>`,
    stateBucket: `covenant-${run}-state`,
    payloadBucket: (hotkey) => `covenant-${run}-p-${checkHotkey(hotkey)}`,
    checkpointBucket: (hotkey) => `covenant-${run}-c-${checkHotkey(hotkey)}`,
    submit: (round, hotkey) => `${prefix}.round.${checkRound(round)}.submit.${checkHotkey(hotkey)}`,
    submitAll: (round) => `${prefix}.round.${checkRound(round)}.submit.*`,
    selection: (round, hotkey) => `${prefix}.round.${checkRound(round)}.selection.${checkHotkey(hotkey)}`,
    selectionAll: (round) => `${prefix}.round.${checkRound(round)}.selection.*`,
    heartbeat: (hotkey) => `${prefix}.heartbeat.${checkHotkey(hotkey)}`,
    heartbeatAll: `${prefix}.heartbeat.*`,
    payloadObject: (round) => `round-${checkRound(round)}`,
    checkpointObject: (round) => `checkpoint-${checkRound(round)}`,
  };
}

/** KV keys in the state bucket. */
export const stateKeys = {
  membership: "membership",
  /** Hotkey of the validator whose selections the workers follow; the operator names it. */
  validator: "validator",
  assignment: "assignment",
  /** Pointer to a validator's latest checkpoint: `checkpoint.<hotkey>`, written by that validator. */
  checkpoint: (hotkey: string) => `checkpoint.${checkHotkey(hotkey)}`,
} as const;
