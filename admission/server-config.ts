// nats-server configuration for admission by chain identity: NATS auth callout in
// configuration mode (no operator JWTs). Pure: the same spec gives the same text.
//
// - account AUTH holds one user, the admission service, named by its public nkey. It may
//   only receive authorization requests and answer them (replies go to `$SYS._INBOX.>`).
// - the run's account (`covenant-<run>`, protocol/bus/auth.ts) holds the run's operator user
//   and its JetStream limits; peers are not listed: each is admitted by the service, which
//   places it in this account with exactly its own permissions.
// - `auth_users` are the users the server authenticates itself, without asking the service:
//   the service's own user and the operator. Everyone else is sent to the service.
//
// The callout user must be an nkey: nats-server puts a nonce in its INFO only when
// nkey users are configured, and peers sign that nonce.
import { checkUserNkey, runAccount } from "../protocol/bus/auth.ts";
import { busNames } from "../protocol/names.ts";

export const AUTH_ACCOUNT = "AUTH";
/** Where nats-server sends authorization requests (server/auth_callout.go AuthCalloutSubject). */
export const AUTH_CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH";

export interface CalloutServerSpec {
  run: string;
  /** Public account nkey ("A...") whose seed the admission service signs with. */
  issuer: string;
  /** Public user nkey ("U...") of the admission service's NATS user. */
  calloutNkey: string;
  /** Public user nkey of the run's operator (full rights in the run's account, no callout). */
  operatorNkey: string;
  /** JetStream limits of the run's account. */
  maxFileBytes: number;
  maxMemoryBytes: number;
  /**
   * Seconds a connecting client has to complete its login, the callout's answer included
   * (nats-server `authorization.timeout`, default 2). Default 5: a chain query on a busy node
   * and a client across the internet both fit.
   */
  authTimeoutSeconds?: number;
}

const ACCOUNT_NKEY = /^A[A-Z2-7]{55}$/;

export function checkAccountNkey(nkey: string): string {
  if (!ACCOUNT_NKEY.test(nkey))
    throw new Error(`${JSON.stringify(nkey)} is not a public NATS account nkey (A...)`);
  return nkey;
}

/** The accounts and authorization blocks as JSON values. */
export function calloutServerBlocks(spec: CalloutServerSpec): {
  accounts: Record<string, unknown>;
  authorization: Record<string, unknown>;
} {
  checkAccountNkey(spec.issuer);
  checkUserNkey(spec.calloutNkey);
  checkUserNkey(spec.operatorNkey);
  if (spec.calloutNkey === spec.operatorNkey)
    throw new Error("the callout user and the operator need their own nkeys");
  const timeout = spec.authTimeoutSeconds ?? 5;
  if (!(timeout > 0 && timeout <= 60)) throw new Error(`auth timeout ${timeout} s must be in (0, 60]`);
  const account = busNames(spec.run).account;
  if (account === AUTH_ACCOUNT)
    throw new Error(`run ${spec.run} would clash with the ${AUTH_ACCOUNT} account`);
  return {
    accounts: {
      [AUTH_ACCOUNT]: {
        users: [
          {
            nkey: spec.calloutNkey,
            permissions: {
              publish: { allow: ["$SYS._INBOX.>"] },
              subscribe: { allow: [AUTH_CALLOUT_SUBJECT] },
            },
          },
        ],
      },
      [account]: runAccount({
        run: spec.run,
        operatorNkey: spec.operatorNkey,
        peers: [],
        maxFileBytes: spec.maxFileBytes,
        maxMemoryBytes: spec.maxMemoryBytes,
      }),
    },
    authorization: {
      timeout,
      auth_callout: {
        issuer: spec.issuer,
        account: AUTH_ACCOUNT,
        auth_users: [spec.calloutNkey, spec.operatorNkey],
      },
    },
  };
}

/** Text to append to nats-server.conf (NATS configuration is a superset of JSON). */
export function calloutServerConfig(spec: CalloutServerSpec): string {
  const b = calloutServerBlocks(spec);
  return `accounts: ${JSON.stringify(b.accounts, null, 2)}\nauthorization: ${JSON.stringify(b.authorization, null, 2)}\n`;
}
