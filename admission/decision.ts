// The admission decision, pure: a parsed login, the signature check and the hotkey's
// standing on chain in; admit (with the role granted) or refuse (with a reason) out.
//
// Order of checks (cheapest and most local first; the chain is only asked for logins whose
// signature verifies, so forged logins cannot make the service load the chain node):
//   1. the login is for this service's run;
//   2. the sr25519 signature verifies for the hotkey over the nonce, run and role;
//   3. the hotkey holds a uid on the run's subnet;
//   4. a validator login needs a validator permit on the subnet, or the hotkey listed in the
//      service's configuration (a run organiser's explicit choice, e.g. before permits are
//      assigned). A miner login is admitted as a miner whatever the hotkey's permit: a peer
//      gets the rights of the role it runs, no more.
import { decodeAddress, sr25519Verify } from "@polkadot/util-crypto";
import type { PeerRole } from "../protocol/bus/auth.ts";
import { loginMessage } from "../protocol/bus/hotkey-auth.ts";
import type { RefusalReason } from "./reasons.ts";
import type { Login } from "./request.ts";

/** A hotkey's place on the run's subnet at the block the service read. */
export type Standing = { registered: false } | { registered: true; uid: number; validatorPermit: boolean };

export type Decision =
  | { admit: true; hotkey: string; role: PeerRole; uid: number }
  | { admit: false; reason: RefusalReason; detail: string };

export type Refusal = Extract<Decision, { admit: false }>;

/** Whether the login's signature is the hotkey's sr25519 signature over its login message. */
export function signatureValid(login: Login): boolean {
  try {
    // sr25519 only: the hotkey is an sr25519 key; a generic verifier would also try ed25519
    // and ECDSA on the same 32 bytes, which is never what a subtensor hotkey signs with.
    return sr25519Verify(loginMessage(login, login.nonce), login.signature, decodeAddress(login.hotkey));
  } catch {
    return false;
  }
}

/** Checks 1 and 2; undefined when the chain should be asked. */
export function precheck(
  run: string,
  login: Login,
  verify: (l: Login) => boolean = signatureValid,
): Refusal | undefined {
  if (login.run !== run)
    return {
      admit: false,
      reason: "wrong_run",
      detail: `login for run ${login.run}, this service admits to ${run}`,
    };
  if (!verify(login)) return { admit: false, reason: "bad_signature", detail: "signature does not verify" };
  return undefined;
}

/** Checks 3 and 4, from the hotkey's standing on chain. */
export function decide(login: Login, standing: Standing, validators: ReadonlySet<string>): Decision {
  if (!standing.registered)
    return { admit: false, reason: "unregistered", detail: "hotkey holds no uid on the run's subnet" };
  if (login.role === "validator" && !standing.validatorPermit && !validators.has(login.hotkey)) {
    return {
      admit: false,
      reason: "not_validator",
      detail: `uid ${standing.uid} has no validator permit and is not a configured validator`,
    };
  }
  return { admit: true, hotkey: login.hotkey, role: login.role, uid: standing.uid };
}
