// Reading nats-server's authorization request: a JWT signed by the server's own nkey
// (claims field names: nats-io/jwt v2 authorization_claims.go, as sent by nats-server
// 2.12 server/auth_callout.go). Pure: bytes in, a typed login or a refusal reason out.
//
// Only users of the AUTH account can publish where requests arrive, and that is the
// service itself, so the signature check is defence in depth; the checks that matter
// are the ones on the peer's login inside it.
import { decode, type AuthorizationRequest, type ClaimsData } from "@nats-io/jwt";
import { decodeAddress, encodeAddress } from "@polkadot/util-crypto";
import { parseLoginParams, type LoginParams } from "../protocol/bus/hotkey-auth.ts";
import { SS58_FORMAT } from "../protocol/chain/hotkey.ts";
import type { RefusalReason } from "./reasons.ts";

/** What the server asked: enough to answer it, present whenever the JWT itself decoded. */
export interface ServerAsk {
  /** Public nkey ("U...") the server generated for this connection; the answer's subject. */
  userNkey: string;
  /** Public nkey ("N...") of the asking server; the answer's audience. */
  serverId: string;
  serverName: string;
  clientHost: string | undefined;
  clientName: string | undefined;
}

/** A well-formed hotkey login, not yet verified. */
export interface Login extends LoginParams {
  hotkey: string;
  nonce: string;
  /** 0x-hex sr25519 signature over loginMessage(params, nonce). */
  signature: string;
}

export type ParsedRequest =
  | { ok: true; ask: ServerAsk; login: Login }
  | { ok: false; ask: ServerAsk | undefined; reason: RefusalReason; detail: string };

const REQUEST_AUDIENCE = "nats-authorization-request";
const USER_NKEY = /^U[A-Z2-7]{55}$/;
const SERVER_NKEY = /^N[A-Z2-7]{55}$/;
const SIGNATURE = /^0x[0-9a-fA-F]{128}$/;
/** nats-server refuses JWTs over 1 MiB; a login request is a few KiB. */
export const MAX_REQUEST_BYTES = 64 * 1024;

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** A canonical SS58 hotkey (prefix 42), or undefined. Other prefixes of the same key are refused
 * so that one key has one spelling in subjects and bucket names. */
export function canonicalHotkey(user: string | undefined): string | undefined {
  if (!user || user.length > 64) return undefined;
  try {
    const pub = decodeAddress(user);
    if (pub.length !== 32) return undefined;
    return encodeAddress(pub, SS58_FORMAT) === user ? user : undefined;
  } catch {
    return undefined;
  }
}

export function parseRequest(data: Uint8Array | string): ParsedRequest {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  if (text.length > MAX_REQUEST_BYTES)
    return { ok: false, ask: undefined, reason: "malformed", detail: `request of ${text.length} bytes` };
  let claims: ClaimsData<AuthorizationRequest>;
  try {
    // decode() checks the header and the ed25519 signature against `iss`.
    claims = decode<AuthorizationRequest>(text.trim());
  } catch (e) {
    return {
      ok: false,
      ask: undefined,
      reason: "malformed",
      detail: `not a signed JWT: ${(e as Error).message}`,
    };
  }
  const n = (claims.nats ?? {}) as Partial<AuthorizationRequest> & { type?: string };
  const server = n.server_id;
  const userNkey = str(n.user_nkey);
  const serverId = str(server?.id);
  if (
    n.type !== "authorization_request" ||
    claims.aud !== REQUEST_AUDIENCE ||
    !userNkey ||
    !USER_NKEY.test(userNkey) ||
    !serverId ||
    !SERVER_NKEY.test(serverId)
  ) {
    return { ok: false, ask: undefined, reason: "malformed", detail: "not an authorization request" };
  }
  const ask: ServerAsk = {
    userNkey,
    serverId,
    serverName: str(server?.name) ?? "",
    clientHost: str(n.client_info?.host),
    clientName: str(n.client_info?.name)?.slice(0, 128),
  };
  // The server signs with the key it names as its id; anything else was not made by a server.
  if (claims.iss !== serverId)
    return { ok: false, ask, reason: "malformed", detail: "issuer is not the server" };
  const opts = n.connect_opts;
  const hotkey = canonicalHotkey(str(opts?.user));
  if (!hotkey)
    return { ok: false, ask, reason: "malformed", detail: "user is not an SS58 hotkey (prefix 42)" };
  const params = parseLoginParams(str(opts?.pass) ?? "");
  if (!params) return { ok: false, ask, reason: "malformed", detail: "pass is not v1:<run>:<role>" };
  const signature = str(opts?.sig);
  if (!signature || !SIGNATURE.test(signature))
    return { ok: false, ask, reason: "malformed", detail: "sig is not a 64-byte hex signature" };
  const nonce = str(n.client_info?.nonce);
  if (!nonce) return { ok: false, ask, reason: "no_nonce", detail: "the server forwarded no nonce" };
  return { ok: true, ask, login: { ...params, hotkey, nonce, signature } };
}
