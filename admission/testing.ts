// Test helpers: authorization requests as nats-server 2.12 builds them (server/auth_callout.go:
// claims signed by the server's nkey, audience "nats-authorization-request", the client's
// CONNECT fields under connect_opts and the nonce under client_info when `sig` was sent).
import { Algorithms, encode, type ClaimsData } from "@nats-io/jwt";
import { createServer, createUser, type KeyPair } from "@nats-io/nkeys";
import type { KeyringPair } from "@polkadot/keyring/types";
import { hotkeyLogin, type LoginParams } from "../protocol/bus/hotkey-auth.ts";

export interface RequestParts {
  server?: KeyPair;
  userNkey?: string;
  nonce?: string;
  connectOpts?: Record<string, unknown>;
  /** Changes applied to the claims after they are built, before signing. */
  edit?: (c: ClaimsData<Record<string, unknown>>) => void;
}

export async function authRequest(
  p: RequestParts = {},
): Promise<{ jwt: string; server: KeyPair; userNkey: string }> {
  const server = p.server ?? createServer();
  const userNkey = p.userNkey ?? createUser().getPublicKey();
  const claims = {
    aud: "nats-authorization-request",
    sub: "ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA",
    exp: Math.floor(Date.now() / 1000) + 5,
    nats: {
      type: "authorization_request",
      server_id: { name: "covenant-test", host: "127.0.0.1", id: server.getPublicKey(), version: "2.12.15" },
      user_nkey: userNkey,
      client_info: {
        host: "10.0.0.7",
        id: 7,
        kind: "Client",
        type: "nats",
        ...(p.nonce === undefined ? {} : { nonce: p.nonce }),
      },
      connect_opts: { protocol: 1, lang: "nats.js", version: "3.4.0", ...p.connectOpts },
    },
  } as unknown as ClaimsData<Record<string, unknown>>;
  p.edit?.(claims);
  return { jwt: await encode(Algorithms.v2, claims, server), server, userNkey };
}

/** A request carrying a genuine hotkey login for `nonce`. */
export function loginRequest(
  pair: KeyringPair,
  params: LoginParams,
  nonce = "AbCdEfGhIjKlMnO",
  parts: RequestParts = {},
) {
  return authRequest({
    nonce,
    ...parts,
    connectOpts: { ...hotkeyLogin(pair, params, nonce), ...parts.connectOpts },
  });
}
