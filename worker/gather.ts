// Fetching a peer's payload for a round and checking it end to end: the signed
// announcement, the Object Store bytes (size first, then digest), and the run codec's
// validation of every field (the native SparseLoCo codec, or worker/dense.ts for dense
// payloads, whose size bound is the dense size). Returns a verdict with a counted reason;
// never throws.
import type { BusClient } from "../protocol/bus/client.ts";
import { PayloadTooLarge } from "../protocol/bus/client.ts";
import type { RejectReason, SignedEnvelope, Verdict } from "../protocol/envelope.ts";
import { verifyAnnouncement, verifyPayload } from "../protocol/envelope.ts";
import type { Codec } from "./kernels.ts";

export interface GatherContext {
  bus: BusClient;
  codec: Codec;
  run: string;
  maxPayloadBytes: number;
  fetchTimeoutMs: number;
}

const no = <T>(reason: RejectReason, detail: string): Verdict<T> => ({ ok: false, reason, detail });

/** Checks an announcement read from `subject` for `round`. */
export function checkAnnouncement(
  ctx: Pick<GatherContext, "run" | "maxPayloadBytes">,
  subject: string,
  data: Uint8Array,
  round: number,
  format: number,
): Verdict<SignedEnvelope> {
  const v = verifyAnnouncement(data, { run: ctx.run, round, maxPayloadBytes: ctx.maxPayloadBytes });
  if (!v.ok) return v;
  const tokens = subject.split(".");
  if (tokens[tokens.length - 1] !== v.value.hotkey || tokens[3] !== String(round))
    return no(
      "subject-mismatch",
      `${subject} carries an envelope of ${v.value.hotkey} for round ${v.value.round}`,
    );
  if (v.value.format !== format)
    return no("invalid-payload", `format ${v.value.format}, the run uses ${format}`);
  return v;
}

/** Fetches and verifies the payload an envelope announces. */
export async function fetchPayload(ctx: GatherContext, e: SignedEnvelope): Promise<Verdict<Uint8Array>> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await ctx.bus.getPayload(e.hotkey, e.round, {
      maxBytes: Math.min(ctx.maxPayloadBytes, e.size),
      timeoutMs: ctx.fetchTimeoutMs,
    });
  } catch (err) {
    if (err instanceof PayloadTooLarge) return no("size-mismatch", err.message);
    return no("fetch-failed", String((err as Error).message ?? err));
  }
  if (!bytes) return no("fetch-failed", `no payload of ${e.hotkey} for round ${e.round}`);
  const v = verifyPayload(e, bytes);
  if (!v.ok) return v;
  const c = ctx.codec.validate(bytes);
  if (!c.ok) return no("invalid-payload", `${c.reason}: ${c.detail}`);
  return { ok: true, value: bytes };
}

/** Fetches a peer's announcement and payload of a round (used by receivers of a selection). */
export async function fetchSubmission(
  ctx: GatherContext,
  hotkey: string,
  round: number,
  format: number,
  digest: string,
): Promise<Verdict<Uint8Array>> {
  const subject = ctx.bus.names.submit(round, hotkey);
  let msg;
  try {
    msg = await ctx.bus.lastMessage(subject);
  } catch (err) {
    return no("fetch-failed", String((err as Error).message ?? err));
  }
  if (!msg) return no("fetch-failed", `no announcement on ${subject}`);
  const e = checkAnnouncement(ctx, subject, msg.data, round, format);
  if (!e.ok) return e;
  if (e.value.digest !== digest) return no("digest-mismatch", "the announcement differs from the selection");
  return fetchPayload(ctx, e.value);
}
