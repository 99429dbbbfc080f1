// The answer to nats-server: an authorization response JWT signed by the issuer account
// nkey, with audience the asking server's id and subject the user nkey the server generated
// for this connection (so the answer fits this connection only). It carries either a user
// JWT or an error.
//
// The user JWT (configuration mode, nats-server 2.12 server/auth_callout.go):
// - signed by the issuer configured in `auth_callout.issuer`, no issuer_account;
// - `aud` names the account the user is placed in: the run's account;
// - `name` is the hotkey, so the server's monitoring and logs show who is connected;
// - `exp` bounds the connection: the server disconnects the client then, and its reconnect
//   is a new login, checked on chain again. This is how a deregistered hotkey is cut off.
// - permissions are the peer's from protocol/bus/auth.ts: the same function generated the
//   static configuration before admission existed, so both paths grant the same rights.
import { encodeAuthorizationResponse, encodeUser, type KeyPair, type User } from "@nats-io/jwt";
import { peerPermissions, type PeerRole } from "../protocol/bus/auth.ts";
import { busNames } from "../protocol/names.ts";
import type { RefusalReason } from "./reasons.ts";
import type { ServerAsk } from "./request.ts";

export interface Grant {
  run: string;
  hotkey: string;
  role: PeerRole;
}

/** Peers connect as ordinary clients; not as leaf nodes, MQTT or in-process connections. */
export const PEER_CONNECTION_TYPES = ["STANDARD", "WEBSOCKET"] as const;

/** The `nats` part of a peer's user JWT. */
export function peerUserClaims(g: Grant): Partial<User> {
  const p = peerPermissions(g.run, { hotkey: g.hotkey, role: g.role });
  return {
    pub: { allow: [...p.publish.allow] },
    sub: { allow: [...p.subscribe.allow] },
    allowed_connection_types: [...PEER_CONNECTION_TYPES],
  };
}

/**
 * Unix seconds at which a user JWT issued at `nowMs` expires: `ttl` seconds from now, less a
 * random up to a tenth of it. Never later than the ttl (the cut-off bound holds); the jitter
 * keeps peers that all reconnected together (a server restart) from expiring, reconnecting and
 * querying the chain together forever after.
 */
export function expiresAt(nowMs: number, ttlSeconds: number, random: () => number = Math.random): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
    throw new Error(`ttl ${ttlSeconds} s must be a whole number >= 1`);
  const jitter = Math.floor(Math.min(Math.max(random(), 0), 0.999) * Math.floor(ttlSeconds / 10));
  return Math.floor(nowMs / 1000) + ttlSeconds - jitter;
}

/** The response admitting a peer, and the expiry of its user JWT (unix seconds). */
export async function encodeAdmission(
  issuer: KeyPair,
  ask: ServerAsk,
  grant: Grant,
  ttlSeconds: number,
  nowMs = Date.now(),
  random: () => number = Math.random,
): Promise<{ token: string; exp: number }> {
  const exp = expiresAt(nowMs, ttlSeconds, random);
  const user = await encodeUser(grant.hotkey, ask.userNkey, issuer, peerUserClaims(grant), {
    aud: busNames(grant.run).account,
    exp,
  });
  const token = await encodeAuthorizationResponse(ask.userNkey, ask.serverId, issuer, { jwt: user }, {});
  return { token, exp };
}

/** The response refusing a login; the server logs the text and tells the client "Authorization Violation". */
export function encodeRefusal(
  issuer: KeyPair,
  ask: ServerAsk,
  reason: RefusalReason,
  detail: string,
): Promise<string> {
  return encodeAuthorizationResponse(
    ask.userNkey,
    ask.serverId,
    issuer,
    { error: refusalText(reason, detail) },
    {},
  );
}

/** One line, bounded, no control characters: it ends up in the server's log. */
export function refusalText(reason: RefusalReason, detail: string): string {
  const text = `covenant admission refused (${reason}): ${detail}`;
  return [...text]
    .map((ch) => (ch < " " || ch === "\u007f" ? " " : ch))
    .join("")
    .slice(0, 256);
}
