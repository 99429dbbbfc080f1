import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decode, type AuthorizationResponse, type User } from "@nats-io/jwt";
import { createAccount, createServer, createUser } from "@nats-io/nkeys";
import { peerPermissions } from "../protocol/bus/auth.ts";
import { encodeAdmission, encodeRefusal, expiresAt, peerUserClaims, refusalText } from "./claims.ts";
import type { ServerAsk } from "./request.ts";

const HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

describe("the answer to nats-server", () => {
  const issuer = createAccount();
  const ask: ServerAsk = {
    userNkey: createUser().getPublicKey(),
    serverId: createServer().getPublicKey(),
    serverName: "s1",
    clientHost: undefined,
    clientName: undefined,
  };

  test("a peer's user claims carry exactly its permissions from protocol/bus/auth.ts", () => {
    for (const role of ["miner", "validator"] as const) {
      const p = peerPermissions("r1", { hotkey: HOTKEY, role });
      assert.deepEqual(peerUserClaims({ run: "r1", hotkey: HOTKEY, role }), {
        pub: { allow: p.publish.allow },
        sub: { allow: p.subscribe.allow },
        allowed_connection_types: ["STANDARD", "WEBSOCKET"],
      });
    }
  });

  test("an admission is a response for this connection and server, with a user JWT for the run's account", async () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0, 700);
    const { token, exp } = await encodeAdmission(
      issuer,
      ask,
      { run: "r1", hotkey: HOTKEY, role: "validator" },
      300,
      now,
      () => 0,
    );
    assert.equal(exp, Date.UTC(2026, 0, 1) / 1000 + 300);
    const r = decode<AuthorizationResponse>(token);
    assert.equal(r.iss, issuer.getPublicKey());
    assert.equal(r.sub, ask.userNkey);
    assert.equal(r.aud, ask.serverId);
    assert.equal(r.nats.type, "authorization_response");
    assert.equal(r.nats.error, undefined);
    const u = decode<User>(r.nats.jwt!);
    assert.equal(u.iss, issuer.getPublicKey());
    assert.equal(u.sub, ask.userNkey);
    assert.equal(u.aud, "covenant-r1");
    assert.equal(u.name, HOTKEY);
    assert.equal(u.exp, exp);
    assert.equal(u.nats.type, "user");
    assert.equal(u.nats.issuer_account, undefined, "configuration mode allows no issuer_account");
    assert.deepEqual(
      u.nats.pub?.allow,
      peerPermissions("r1", { hotkey: HOTKEY, role: "validator" }).publish.allow,
    );
    assert.deepEqual(u.nats.sub?.allow, ["covenant.r1.>", "_INBOX.>"]);
  });

  test("a refusal carries the reason and no user JWT", async () => {
    const r = decode<AuthorizationResponse>(await encodeRefusal(issuer, ask, "unregistered", "no uid"));
    assert.equal(r.aud, ask.serverId);
    assert.equal(r.sub, ask.userNkey);
    assert.equal(r.nats.jwt, undefined);
    assert.equal(r.nats.error, "covenant admission refused (unregistered): no uid");
  });

  test("refusal text is one bounded line; expiry is in whole seconds", () => {
    assert.equal(refusalText("malformed", "a\nb\u0000c"), "covenant admission refused (malformed): a b c");
    assert.equal(refusalText("internal", "x".repeat(1000)).length, 256);
    assert.equal(expiresAt(10_999, 3), 13, "no jitter under 10 s");
    assert.equal(
      expiresAt(10_999, 300, () => 0),
      310,
    );
    assert.equal(
      expiresAt(10_999, 300, () => 0.5),
      295,
    );
    assert.equal(
      expiresAt(10_999, 300, () => 1),
      281,
      "at most a tenth earlier, never later",
    );
    assert.throws(() => expiresAt(0, 0), /ttl/);
    assert.throws(() => expiresAt(0, 1.5), /ttl/);
  });
});
