import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createAccount, createUser } from "@nats-io/nkeys";
import {
  AUTH_ACCOUNT,
  calloutServerBlocks,
  calloutServerConfig,
  type CalloutServerSpec,
} from "./server-config.ts";

const spec: CalloutServerSpec = {
  run: "r1",
  issuer: createAccount().getPublicKey(),
  calloutNkey: createUser().getPublicKey(),
  operatorNkey: createUser().getPublicKey(),
  maxFileBytes: 1000,
  maxMemoryBytes: 10,
};

describe("nats-server configuration for auth callout", () => {
  test("the AUTH account holds only the callout user, limited to answering requests", () => {
    const { accounts } = calloutServerBlocks(spec);
    assert.deepEqual(accounts[AUTH_ACCOUNT], {
      users: [
        {
          nkey: spec.calloutNkey,
          permissions: {
            publish: { allow: ["$SYS._INBOX.>"] },
            subscribe: { allow: ["$SYS.REQ.USER.AUTH"] },
          },
        },
      ],
    });
  });

  test("the run's account holds its JetStream limits and the operator, and no peer", () => {
    const { accounts } = calloutServerBlocks(spec);
    assert.deepEqual(accounts["covenant-r1"], {
      jetstream: { max_file: 1000, max_mem: 10 },
      users: [{ nkey: spec.operatorNkey }],
    });
    assert.deepEqual(Object.keys(accounts).sort(), [AUTH_ACCOUNT, "covenant-r1"]);
  });

  test("everyone but the callout user and the operator goes through the callout", () => {
    const { authorization } = calloutServerBlocks({ ...spec, authTimeoutSeconds: 3 });
    assert.deepEqual(authorization, {
      timeout: 3,
      auth_callout: {
        issuer: spec.issuer,
        account: AUTH_ACCOUNT,
        auth_users: [spec.calloutNkey, spec.operatorNkey],
      },
    });
    assert.equal((calloutServerBlocks(spec).authorization as { timeout: number }).timeout, 5);
  });

  test("the text is deterministic and parses as the blocks it came from", () => {
    const text = calloutServerConfig(spec);
    assert.equal(text, calloutServerConfig({ ...spec }));
    const m = /^accounts: ([\s\S]*)\nauthorization: ([\s\S]*)\n$/.exec(text);
    assert.ok(m);
    const b = calloutServerBlocks(spec);
    assert.deepEqual(JSON.parse(m[1]!), b.accounts);
    assert.deepEqual(JSON.parse(m[2]!), b.authorization);
    // No peer permissions are configured statically any more: they come with each admission.
    assert.equal(text.includes(".submit."), false);
  });

  test("bad keys, reused keys and bad timeouts are refused", () => {
    assert.throws(() => calloutServerBlocks({ ...spec, issuer: spec.calloutNkey }), /account nkey/);
    assert.throws(() => calloutServerBlocks({ ...spec, calloutNkey: spec.issuer }), /user nkey/);
    assert.throws(() => calloutServerBlocks({ ...spec, operatorNkey: spec.calloutNkey }), /own nkeys/);
    assert.throws(() => calloutServerBlocks({ ...spec, authTimeoutSeconds: 0 }), /timeout/);
    assert.throws(() => calloutServerBlocks({ ...spec, run: "Bad" }), /DNS-1123/);
  });
});
