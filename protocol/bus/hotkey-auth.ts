// Client side of bus admission: a peer logs in to the run's NATS servers with its chain
// identity (its sr25519 hotkey) instead of a NATS nkey handed out beforehand. The server
// forwards the login to the admission service (NATS auth callout, see admission/), which
// checks the signature and the hotkey's registration on chain and issues the permissions.
//
// What goes in the CONNECT message:
//   user = the hotkey, SS58 (prefix 42): who the peer says it is;
//   pass = `v1:<run>:<role>`: what it asks for (not a secret; a field the server forwards);
//   sig  = 0x-hex sr25519 signature over `covenant-nats-login:v1:<run>:<role>:<nonce>`.
// `sig` is the CONNECT field NATS defines for "signed nonce", and the server forwards the
// nonce to the callout only when `sig` is set. The nonce is fresh per connection attempt, so
// a signature seen once cannot log in again; the `covenant-nats-login` prefix means no other
// message this key signs (envelopes, selections, extrinsics) can be replayed as a login,
// and the run and role are signed so that neither can be changed on the way.
import type { Authenticator } from "@nats-io/nats-core";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex } from "@polkadot/util";
import { checkRunId } from "../names.ts";
import type { PeerRole } from "./auth.ts";

export const LOGIN_DOMAIN = "covenant-nats-login";
export const LOGIN_VERSION = "v1";
const ROLES: readonly PeerRole[] = ["miner", "validator"];

export interface LoginParams {
  run: string;
  role: PeerRole;
}

/** The CONNECT `pass` field: the run and role the peer asks for. */
export function formatLoginParams(p: LoginParams): string {
  if (!ROLES.includes(p.role)) throw new Error(`role ${JSON.stringify(p.role)} is not miner or validator`);
  return `${LOGIN_VERSION}:${checkRunId(p.run)}:${p.role}`;
}

/** The inverse of formatLoginParams; undefined for anything else (never throws). */
export function parseLoginParams(pass: string): LoginParams | undefined {
  const parts = pass.split(":");
  if (parts.length !== 3 || parts[0] !== LOGIN_VERSION) return undefined;
  const [, run, role] = parts as [string, string, string];
  try {
    checkRunId(run);
  } catch {
    return undefined;
  }
  if (!(ROLES as readonly string[]).includes(role)) return undefined;
  return { run, role: role as PeerRole };
}

/** The exact bytes a peer signs to log in; the admission service rebuilds them to verify. */
export function loginMessage(p: LoginParams, nonce: string): Uint8Array {
  if (nonce.length === 0) throw new Error("the login nonce is empty");
  return new TextEncoder().encode(`${LOGIN_DOMAIN}:${formatLoginParams(p)}:${nonce}`);
}

/** The CONNECT fields of a hotkey login for one server nonce. */
export function hotkeyLogin(
  pair: KeyringPair,
  p: LoginParams,
  nonce: string,
): { user: string; pass: string; sig: string } {
  if (pair.type !== "sr25519") throw new Error(`a hotkey login needs an sr25519 key, not ${pair.type}`);
  return { user: pair.address, pass: formatLoginParams(p), sig: u8aToHex(pair.sign(loginMessage(p, nonce))) };
}

/**
 * A NATS Authenticator for `connect({ authenticator })`: nats.js calls it on every
 * (re)connection with the nonce from the server's INFO, so each attempt carries a fresh
 * signature. The key pair must be unlocked and use sr25519 with SS58 prefix 42 (the
 * subtensor format: `new Keyring({ type: "sr25519", ss58Format: 42 })`).
 */
export function hotkeyAuthenticator(pair: KeyringPair, params: LoginParams): Authenticator {
  formatLoginParams(params); // fail at construction, not at the first connection
  return (nonce?: string) => {
    // A server without a nonce is not set up for hotkey admission (see docs/admission.md);
    // nats.js closes the connection with this error instead of sending a login that cannot work.
    if (!nonce) throw new Error("the NATS server sent no nonce: it is not configured for hotkey admission");
    return hotkeyLogin(pair, params, nonce);
  };
}
