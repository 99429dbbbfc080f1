import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { createServer } from "@nats-io/nkeys";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady, encodeAddress } from "@polkadot/util-crypto";
import { canonicalHotkey, parseRequest } from "./request.ts";
import { authRequest, loginRequest } from "./testing.ts";

describe("parsing nats-server's authorization request", () => {
  let pair: KeyringPair;
  before(async () => {
    await cryptoWaitReady();
    pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Req");
  });

  test("a hotkey login is read with the server's identity and the nonce", async () => {
    const { jwt, server, userNkey } = await loginRequest(pair, { run: "r1", role: "validator" }, "nonce-123");
    const r = parseRequest(new TextEncoder().encode(jwt));
    assert.equal(r.ok, true);
    assert.ok(r.ok);
    assert.deepEqual(r.ask, {
      userNkey,
      serverId: server.getPublicKey(),
      serverName: "covenant-test",
      clientHost: "10.0.0.7",
      clientName: undefined,
    });
    assert.equal(r.login.hotkey, pair.address);
    assert.equal(r.login.run, "r1");
    assert.equal(r.login.role, "validator");
    assert.equal(r.login.nonce, "nonce-123");
    assert.match(r.login.signature, /^0x[0-9a-f]{128}$/);
  });

  test("anything that is not a JWT signed by the server it names is malformed, without an answer target", async () => {
    const { jwt } = await loginRequest(pair, { run: "r1", role: "miner" });
    const [h, c, s] = jwt.split(".") as [string, string, string];
    const tampered = `${h}.${c.slice(0, -4)}AAAA.${s}`;
    for (const bad of ["", "garbage", "a.b.c", tampered, "x".repeat(70_000)]) {
      const r = parseRequest(bad);
      assert.equal(r.ok, false);
      assert.ok(!r.ok);
      assert.equal(r.reason, "malformed");
      assert.equal(r.ask, undefined);
    }
    // Signed by one server but naming another as the asker.
    const other = createServer().getPublicKey();
    const { jwt: lying } = await loginRequest(pair, { run: "r1", role: "miner" }, "n", {
      edit: (claims) => ((claims.nats as { server_id: { id: string } }).server_id.id = other),
    });
    const r = parseRequest(lying);
    assert.ok(!r.ok);
    assert.equal(r.reason, "malformed");
    assert.equal(r.ask?.serverId, other);
    // Another claim type, or the wrong audience.
    for (const edit of [
      (c: { nats: unknown }) => ((c.nats as { type: string }).type = "user"),
      (c: { aud: string }) => (c.aud = "NATS"),
    ]) {
      const { jwt: j } = await loginRequest(pair, { run: "r1", role: "miner" }, "n", { edit: edit as never });
      const x = parseRequest(j);
      assert.ok(!x.ok);
      assert.equal(x.reason, "malformed");
    }
  });

  test("a login without the hotkey fields is malformed, and the server can still be answered", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ user: undefined }, /SS58/],
      [{ user: "alice" }, /SS58/],
      [{ user: encodeAddress(pair.publicKey, 0) }, /prefix 42/],
      [{ pass: "secret" }, /v1:<run>:<role>/],
      [{ pass: undefined }, /v1:<run>:<role>/],
      [{ sig: "abc" }, /signature/],
      [{ sig: undefined }, /signature/],
    ];
    for (const [opts, detail] of cases) {
      const { jwt, userNkey } = await loginRequest(pair, { run: "r1", role: "miner" }, "n", {
        connectOpts: opts,
      });
      const r = parseRequest(jwt);
      assert.ok(!r.ok, JSON.stringify(opts));
      assert.equal(r.reason, "malformed");
      assert.match(r.detail, detail);
      assert.equal(r.ask?.userNkey, userNkey);
    }
  });

  test("no nonce forwarded is its own reason", async () => {
    const { jwt } = await authRequest({
      connectOpts: { user: pair.address, pass: "v1:r1:miner", sig: "0x" + "ab".repeat(64) },
    });
    const r = parseRequest(jwt);
    assert.ok(!r.ok);
    assert.equal(r.reason, "no_nonce");
  });

  test("only the canonical prefix-42 spelling of a 32-byte key is a hotkey", () => {
    assert.equal(canonicalHotkey(pair.address), pair.address);
    assert.equal(canonicalHotkey(encodeAddress(pair.publicKey, 2)), undefined);
    assert.equal(canonicalHotkey(encodeAddress(new Uint8Array(33).fill(2), 42)), undefined);
    for (const bad of [undefined, "", "not-an-address", "5".repeat(100)])
      assert.equal(canonicalHotkey(bad), undefined);
  });
});
