// The validator's selection for a round: which payloads every peer aggregates, in
// which order, with their digests, plus reserves and the reasons submissions were
// refused. Signed by the validator's sr25519 hotkey over a canonical encoding.
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex, isHex } from "@polkadot/util";
import { decodeAddress, signatureVerify } from "@polkadot/util-crypto";
import { CONFIG_DIGEST_PATTERN } from "./configepoch.ts";
import type { RejectReason } from "./envelope.ts";
import { REJECT_REASONS } from "./envelope.ts";

export const SELECTION_VERSION = 1;
export const MAX_SELECTION_BYTES = 60 * 1024;

export interface Pick {
  hotkey: string;
  /** SHA-256 of the payload, 0x hex (from the peer's signed envelope). */
  digest: string;
}

export interface Selection {
  version: number;
  run: string;
  round: number;
  validator: string;
  /** Membership epoch the round ran under. */
  epoch: number;
  /** Aggregated by every peer, in this order; empty in a null round. */
  selected: Pick[];
  /** Next-best valid submissions, not aggregated this round. */
  reserves: Pick[];
  /** Submissions refused or penalised, by hotkey. */
  rejected: Record<string, RejectReason>;
  /**
   * Digest of the round-level run config the round ran under (protocol/configepoch.ts);
   * every peer applies the round's outer step with that config. Absent from older validators.
   */
  config?: string;
}

export interface SignedSelection extends Selection {
  signature: string;
}

/** Canonical text: fixed field order, sorted rejection keys; the config digest last, when there is one. */
export function canonicalSelection(s: Selection): Uint8Array {
  const rejected = Object.fromEntries(Object.entries(s.rejected).sort(([a], [b]) => (a < b ? -1 : 1)));
  const fields: unknown[] = [
    "covenant-selection",
    s.version,
    s.run,
    s.round,
    s.validator,
    s.epoch,
    s.selected.map((p) => [p.hotkey, p.digest]),
    s.reserves.map((p) => [p.hotkey, p.digest]),
    rejected,
  ];
  if (s.config !== undefined) fields.push(s.config);
  return new TextEncoder().encode(JSON.stringify(fields));
}

export function signSelection(
  s: Omit<Selection, "version" | "validator">,
  pair: KeyringPair,
): SignedSelection {
  const full: Selection = { ...s, version: SELECTION_VERSION, validator: pair.address };
  return { ...full, signature: u8aToHex(pair.sign(canonicalSelection(full))) };
}

export function encodeSelection(s: SignedSelection): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(s));
}

export type SelectionVerdict = { ok: true; value: SignedSelection } | { ok: false; detail: string };

const isPick = (p: unknown): p is Pick =>
  typeof p === "object" &&
  p !== null &&
  typeof (p as Pick).hotkey === "string" &&
  typeof (p as Pick).digest === "string" &&
  isHex((p as Pick).digest, 256);

/** Parses and checks a selection from `validator` for `run`/`round`; never throws. */
export function verifySelection(
  bytes: Uint8Array,
  expect: { run: string; round: number; validator: string },
): SelectionVerdict {
  if (bytes.length > MAX_SELECTION_BYTES) return { ok: false, detail: `${bytes.length} bytes` };
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    return { ok: false, detail: "not UTF-8 JSON" };
  }
  if (typeof r !== "object" || r === null) return { ok: false, detail: "not an object" };
  if (r.version !== SELECTION_VERSION) return { ok: false, detail: `version ${String(r.version)}` };
  if (r.run !== expect.run || r.round !== expect.round || r.validator !== expect.validator)
    return { ok: false, detail: "run, round or validator differs" };
  if (!Number.isSafeInteger(r.epoch)) return { ok: false, detail: "epoch" };
  if (!Array.isArray(r.selected) || !r.selected.every(isPick)) return { ok: false, detail: "selected" };
  if (!Array.isArray(r.reserves) || !r.reserves.every(isPick)) return { ok: false, detail: "reserves" };
  const rej = r.rejected;
  if (
    typeof rej !== "object" ||
    rej === null ||
    !Object.values(rej).every((v) => REJECT_REASONS.includes(v as RejectReason))
  )
    return { ok: false, detail: "rejected" };
  if (r.config !== undefined && (typeof r.config !== "string" || !CONFIG_DIGEST_PATTERN.test(r.config)))
    return { ok: false, detail: "config" };
  if (typeof r.signature !== "string" || !isHex(r.signature, 512)) return { ok: false, detail: "signature" };
  const s: SignedSelection = {
    version: SELECTION_VERSION,
    run: expect.run,
    round: expect.round,
    validator: expect.validator,
    epoch: r.epoch as number,
    selected: (r.selected as Pick[]).map((p) => ({ hotkey: p.hotkey, digest: p.digest.toLowerCase() })),
    reserves: (r.reserves as Pick[]).map((p) => ({ hotkey: p.hotkey, digest: p.digest.toLowerCase() })),
    rejected: rej as Record<string, RejectReason>,
    signature: r.signature,
  };
  if (r.config !== undefined) s.config = r.config as string;
  try {
    decodeAddress(s.validator);
    if (!signatureVerify(canonicalSelection(s), s.signature, s.validator).isValid)
      return { ok: false, detail: "signature does not verify" };
  } catch {
    return { ok: false, detail: "signature does not verify" };
  }
  return { ok: true, value: s };
}
