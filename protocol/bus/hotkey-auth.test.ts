import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady, sr25519Verify } from "@polkadot/util-crypto";
import {
  formatLoginParams,
  hotkeyAuthenticator,
  hotkeyLogin,
  loginMessage,
  parseLoginParams,
} from "./hotkey-auth.ts";

describe("hotkey login (client side of bus admission)", () => {
  let pair: KeyringPair;
  before(async () => {
    await cryptoWaitReady();
    pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice");
  });

  test("the login parameters round-trip and anything else is refused", () => {
    assert.equal(formatLoginParams({ run: "r1", role: "validator" }), "v1:r1:validator");
    assert.deepEqual(parseLoginParams("v1:r1:miner"), { run: "r1", role: "miner" });
    for (const bad of [
      "",
      "v1:r1",
      "v2:r1:miner",
      "v1:R1:miner",
      "v1:r1:admin",
      "v1:r1:miner:x",
      "v1::miner",
    ])
      assert.equal(parseLoginParams(bad), undefined, bad);
    assert.throws(() => formatLoginParams({ run: "Bad_Run", role: "miner" }), /DNS-1123/);
    assert.throws(() => formatLoginParams({ run: "r1", role: "admin" as "miner" }), /miner or validator/);
  });

  test("the signed message is domain-separated and names the run, the role and the nonce", () => {
    const m = new TextDecoder().decode(loginMessage({ run: "r1", role: "miner" }, "n0nce"));
    assert.equal(m, "covenant-nats-login:v1:r1:miner:n0nce");
    assert.throws(() => loginMessage({ run: "r1", role: "miner" }, ""), /nonce/);
  });

  test("the authenticator answers each nonce with a fresh signature of the hotkey", () => {
    const auth = hotkeyAuthenticator(pair, { run: "r1", role: "miner" });
    const a = auth("nonceA") as { user: string; pass: string; sig: string };
    assert.equal(a.user, pair.address);
    assert.equal(a.pass, "v1:r1:miner");
    assert.match(a.sig, /^0x[0-9a-f]{128}$/);
    const msg = loginMessage({ run: "r1", role: "miner" }, "nonceA");
    assert.equal(sr25519Verify(msg, a.sig, pair.publicKey), true);
    // The same signature does not verify for another nonce or another role.
    assert.equal(
      sr25519Verify(loginMessage({ run: "r1", role: "miner" }, "nonceB"), a.sig, pair.publicKey),
      false,
    );
    assert.equal(
      sr25519Verify(loginMessage({ run: "r1", role: "validator" }, "nonceA"), a.sig, pair.publicKey),
      false,
    );
  });

  test("no nonce from the server is an error, not an unsigned login", () => {
    const auth = hotkeyAuthenticator(pair, { run: "r1", role: "miner" });
    assert.throws(() => auth(undefined), /no nonce/);
    assert.throws(() => auth(""), /no nonce/);
  });

  test("only sr25519 keys and valid parameters make an authenticator", () => {
    const ed = new Keyring({ type: "ed25519", ss58Format: 42 }).addFromUri("//Alice");
    assert.throws(() => hotkeyLogin(ed, { run: "r1", role: "miner" }, "n"), /sr25519/);
    assert.throws(() => hotkeyAuthenticator(pair, { run: "", role: "miner" }), /DNS-1123/);
  });
});
