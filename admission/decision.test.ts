import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { hotkeyLogin, type LoginParams } from "../protocol/bus/hotkey-auth.ts";
import { standingFrom } from "./chain.ts";
import { decide, precheck, signatureValid } from "./decision.ts";
import type { Login } from "./request.ts";

describe("the admission decision", () => {
  let alice: KeyringPair, mallory: KeyringPair;
  const login = (pair: KeyringPair, p: LoginParams, nonce = "nonce-1", signer = pair): Login => ({
    ...p,
    hotkey: pair.address,
    nonce,
    signature: hotkeyLogin(signer, p, nonce).sig,
  });
  before(async () => {
    await cryptoWaitReady();
    const k = new Keyring({ type: "sr25519", ss58Format: 42 });
    [alice, mallory] = [k.addFromUri("//Alice"), k.addFromUri("//Mallory")];
  });

  test("a genuine signature verifies; another key's, nonce's, run's or role's does not", () => {
    const good = login(alice, { run: "r1", role: "miner" });
    assert.equal(signatureValid(good), true);
    assert.equal(signatureValid(login(alice, { run: "r1", role: "miner" }, "n", mallory)), false);
    assert.equal(signatureValid({ ...good, nonce: "nonce-2" }), false);
    assert.equal(signatureValid({ ...good, run: "r2" }), false);
    assert.equal(signatureValid({ ...good, role: "validator" }), false);
    assert.equal(signatureValid({ ...good, signature: "0x" + "00".repeat(64) }), false);
    assert.equal(signatureValid({ ...good, hotkey: "nonsense" }), false);
  });

  test("the run is checked before the signature, the signature before the chain", () => {
    let verified = 0;
    const verify = () => (verified++, false);
    const l = login(alice, { run: "r2", role: "miner" });
    assert.equal(precheck("r1", l, verify)?.reason, "wrong_run");
    assert.equal(verified, 0);
    assert.equal(precheck("r2", l, verify)?.reason, "bad_signature");
    assert.equal(precheck("r2", l), undefined);
  });

  test("registration decides; a validator login needs a permit or a listing", () => {
    const miner = login(alice, { run: "r1", role: "miner" });
    const val = login(alice, { run: "r1", role: "validator" });
    const none = new Set<string>();
    assert.deepEqual(decide(miner, { registered: false }, none), {
      admit: false,
      reason: "unregistered",
      detail: "hotkey holds no uid on the run's subnet",
    });
    assert.deepEqual(decide(miner, { registered: true, uid: 4, validatorPermit: false }, none), {
      admit: true,
      hotkey: alice.address,
      role: "miner",
      uid: 4,
    });
    // A permit does not turn a miner login into a validator: the role asked for is the most granted.
    assert.equal(
      decide(miner, { registered: true, uid: 4, validatorPermit: true }, none).admit && "miner",
      "miner",
    );
    assert.equal(decide(val, { registered: true, uid: 4, validatorPermit: false }, none).admit, false);
    assert.equal(
      (decide(val, { registered: true, uid: 4, validatorPermit: false }, none) as { reason: string }).reason,
      "not_validator",
    );
    assert.deepEqual(decide(val, { registered: true, uid: 4, validatorPermit: true }, none), {
      admit: true,
      hotkey: alice.address,
      role: "validator",
      uid: 4,
    });
    assert.equal(
      decide(val, { registered: true, uid: 4, validatorPermit: false }, new Set([alice.address])).admit,
      true,
    );
    // A listing never stands in for registration.
    assert.equal(decide(val, { registered: false }, new Set([alice.address])).admit, false);
  });

  test("standing from storage values", () => {
    assert.deepEqual(standingFrom(null, [true]), { registered: false });
    assert.deepEqual(standingFrom(undefined, []), { registered: false });
    assert.deepEqual(standingFrom(1, [true, true]), { registered: true, uid: 1, validatorPermit: true });
    assert.deepEqual(standingFrom(0, [false]), { registered: true, uid: 0, validatorPermit: false });
    assert.deepEqual(standingFrom(3, [true]), { registered: true, uid: 3, validatorPermit: false });
  });
});
