// The signed envelope that announces a payload: who (hotkey), for which run and
// round, in which wire format, and the SHA-256 digest and size of the payload
// bytes in the Object Store. The peer's sr25519 hotkey signs a canonical binary
// encoding of these fields; receivers check every field before touching the payload.
import { createHash } from "node:crypto";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex, hexToU8a, isHex } from "@polkadot/util";
import { decodeAddress, signatureVerify } from "@polkadot/util-crypto";
import { RUN_ID_PATTERN } from "./names.ts";

export const ENVELOPE_VERSION = 1;
/** Payload wire formats (docs/wire-format.md): the codec's sparse ones and the dense fp32 one. */
export const WIRE_FORMAT_SPARSE_12BIT = 1;
export const WIRE_FORMAT_SPARSE_ELIAS_FANO = 2;
/** Dense fp32 pseudo-gradients (spec.compression.mode none; worker/dense.ts). */
export const WIRE_FORMAT_DENSE_FP32 = 3;
/** An announcement larger than this is not parsed at all. */
export const MAX_ANNOUNCEMENT_BYTES = 4096;
const MAGIC = new TextEncoder().encode("covenant-envelope");

export interface Envelope {
  version: number;
  run: string;
  round: number;
  /** SS58 address of the peer's hotkey. */
  hotkey: string;
  /** Wire format of the payload (1 or 2: sparse, 3: dense fp32; see docs/wire-format.md). */
  format: number;
  /** Payload size in bytes. */
  size: number;
  /** SHA-256 of the payload, 0x-prefixed hex. */
  digest: string;
}

export interface SignedEnvelope extends Envelope {
  /** sr25519 signature over canonicalBytes(envelope), 0x-prefixed hex. */
  signature: string;
}

/** Why an announcement or payload was refused; bounded, used as a metric label. */
export type RejectReason =
  | "malformed"
  | "oversized-announcement"
  | "unsupported-version"
  | "wrong-run"
  | "stale-round"
  | "future-round"
  | "oversized"
  | "bad-signature"
  | "size-mismatch"
  | "digest-mismatch"
  /** The subject's round or hotkey differs from the envelope's. */
  | "subject-mismatch"
  /** The payload could not be fetched in time. */
  | "fetch-failed"
  /** The payload fails the codec's validation (shapes, k, indices, quantization). */
  | "invalid-payload"
  /** Announced after the round closed. */
  | "late"
  /** Kept indices overlap an earlier submission's too much. */
  | "copied";

/** Every reason, for metrics that start at zero. */
export const REJECT_REASONS: readonly RejectReason[] = [
  "malformed",
  "oversized-announcement",
  "unsupported-version",
  "wrong-run",
  "stale-round",
  "future-round",
  "oversized",
  "bad-signature",
  "size-mismatch",
  "digest-mismatch",
  "subject-mismatch",
  "fetch-failed",
  "invalid-payload",
  "late",
  "copied",
];

export type Verdict<T> = { ok: true; value: T } | { ok: false; reason: RejectReason; detail: string };

const reject = <T>(reason: RejectReason, detail: string): Verdict<T> => ({ ok: false, reason, detail });

export function payloadDigest(payload: Uint8Array): string {
  return `0x${createHash("sha256").update(payload).digest("hex")}`;
}

/** The bytes that are signed: fixed layout, so the same envelope always signs the same bytes. */
export function canonicalBytes(e: Envelope): Uint8Array {
  const run = new TextEncoder().encode(e.run);
  const out = new Uint8Array(MAGIC.length + 1 + 1 + run.length + 8 + 32 + 1 + 8 + 32);
  const view = new DataView(out.buffer);
  let o = 0;
  out.set(MAGIC, o);
  o += MAGIC.length;
  out[o++] = e.version;
  out[o++] = run.length;
  out.set(run, o);
  o += run.length;
  view.setBigUint64(o, BigInt(e.round));
  o += 8;
  out.set(decodeAddress(e.hotkey), o);
  o += 32;
  out[o++] = e.format;
  view.setBigUint64(o, BigInt(e.size));
  o += 8;
  out.set(hexToU8a(e.digest), o);
  return out;
}

export function signEnvelope(
  fields: Omit<Envelope, "version" | "hotkey" | "digest" | "size">,
  payload: Uint8Array,
  pair: KeyringPair,
): SignedEnvelope {
  const envelope: Envelope = {
    version: ENVELOPE_VERSION,
    run: fields.run,
    round: fields.round,
    hotkey: pair.address,
    format: fields.format,
    size: payload.length,
    digest: payloadDigest(payload),
  };
  return { ...envelope, signature: u8aToHex(pair.sign(canonicalBytes(envelope))) };
}

export function encodeAnnouncement(e: SignedEnvelope): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(e));
}

export interface Expectation {
  run: string;
  /** The round being collected; older rounds are replays, newer ones are refused. */
  round: number;
  /** Largest payload accepted, in bytes. */
  maxPayloadBytes: number;
}

/** Parses and checks an announcement; never throws. */
export function verifyAnnouncement(bytes: Uint8Array, expect: Expectation): Verdict<SignedEnvelope> {
  if (bytes.length > MAX_ANNOUNCEMENT_BYTES) {
    return reject("oversized-announcement", `${bytes.length} bytes > ${MAX_ANNOUNCEMENT_BYTES}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return reject("malformed", "not UTF-8 JSON");
  }
  const shape = parseShape(raw);
  if (!shape.ok) return shape;
  const e = shape.value;
  if (e.version !== ENVELOPE_VERSION) return reject("unsupported-version", `version ${e.version}`);
  if (e.run !== expect.run) return reject("wrong-run", `run ${e.run}, expected ${expect.run}`);
  if (e.round < expect.round) return reject("stale-round", `round ${e.round} < ${expect.round}`);
  if (e.round > expect.round) return reject("future-round", `round ${e.round} > ${expect.round}`);
  if (e.size > expect.maxPayloadBytes)
    return reject("oversized", `${e.size} bytes > ${expect.maxPayloadBytes}`);
  let valid = false;
  try {
    valid = signatureVerify(canonicalBytes(e), e.signature, e.hotkey).isValid;
  } catch {
    valid = false;
  }
  if (!valid) return reject("bad-signature", `signature does not verify for ${e.hotkey}`);
  return { ok: true, value: e };
}

/** Checks fetched payload bytes against their verified envelope. */
export function verifyPayload(e: Envelope, payload: Uint8Array): Verdict<Uint8Array> {
  if (payload.length !== e.size)
    return reject("size-mismatch", `${payload.length} bytes, announced ${e.size}`);
  if (payloadDigest(payload) !== e.digest)
    return reject("digest-mismatch", "SHA-256 differs from the announced one");
  return { ok: true, value: payload };
}

function parseShape(raw: unknown): Verdict<SignedEnvelope> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    return reject("malformed", "not an object");
  const r = raw as Record<string, unknown>;
  const int = (k: string, max: number) =>
    typeof r[k] === "number" &&
    Number.isSafeInteger(r[k]) &&
    (r[k] as number) >= 0 &&
    (r[k] as number) <= max;
  if (!int("version", 255)) return reject("malformed", "version");
  if (typeof r.run !== "string" || !RUN_ID_PATTERN.test(r.run)) return reject("malformed", "run");
  if (!int("round", Number.MAX_SAFE_INTEGER)) return reject("malformed", "round");
  if (!int("format", 255)) return reject("malformed", "format");
  if (!int("size", Number.MAX_SAFE_INTEGER)) return reject("malformed", "size");
  if (typeof r.digest !== "string" || !isHex(r.digest, 256)) return reject("malformed", "digest");
  if (typeof r.signature !== "string" || !isHex(r.signature, 512)) return reject("malformed", "signature");
  if (typeof r.hotkey !== "string") return reject("malformed", "hotkey");
  try {
    if (decodeAddress(r.hotkey).length !== 32) return reject("malformed", "hotkey");
  } catch {
    return reject("malformed", "hotkey is not an SS58 address");
  }
  return {
    ok: true,
    value: {
      version: r.version as number,
      run: r.run,
      round: r.round as number,
      hotkey: r.hotkey,
      format: r.format as number,
      size: r.size as number,
      digest: r.digest.toLowerCase(),
      signature: r.signature,
    },
  };
}
