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

function checkHotkey(hotkey: string): string {
  if (!HOTKEY_TOKEN.test(hotkey)) throw new Error(`hotkey ${JSON.stringify(hotkey)} is not an SS58 address`);
  return hotkey;
}

export interface BusNames {
  /** JetStream stream holding announcements, selections and heartbeats of the run. */
  stream: string;
  /** Every subject of the run. */
  allSubjects: string;
  /** Object Store bucket of payloads. */
  payloadBucket: string;
  /** KV bucket of membership, assignment and checkpoint pointers. */
  stateBucket: string;
  submit(round: number): string;
  selection(round: number): string;
  heartbeat(hotkey: string): string;
  /** Object name of a peer's payload for a round. */
  payloadObject(round: number, hotkey: string): string;
}

export function busNames(run: string): BusNames {
  checkRunId(run);
  const prefix = `covenant.${run}`;
  return {
    stream: `covenant-${run}`,
    allSubjects: `${prefix}.>`,
    payloadBucket: `covenant-${run}-payloads`,
    stateBucket: `covenant-${run}-state`,
    submit: (round) => `${prefix}.round.${checkRound(round)}.submit`,
    selection: (round) => `${prefix}.round.${checkRound(round)}.selection`,
    heartbeat: (hotkey) => `${prefix}.heartbeat.${checkHotkey(hotkey)}`,
    payloadObject: (round, hotkey) => `round-${checkRound(round)}/${checkHotkey(hotkey)}`,
  };
}

/** KV keys in the state bucket. */
export const stateKeys = {
  membership: "membership",
  assignment: "assignment",
  checkpoint: "checkpoint",
} as const;
