import assert from "node:assert/strict";
import { test } from "node:test";
import { createUser } from "@nats-io/nkeys";
import { accountsConfig, peerPermissions, runAccount } from "./auth.ts";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const nkey = () => createUser().getPublicKey();

/** NATS subject matching: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
const allowed = (allow: string[], subject: string) => allow.some((a) => matches(a, subject));

test("a miner publishes only under its own hotkey", () => {
  const p = peerPermissions("run-a", { hotkey: ALICE, role: "miner" }).publish.allow;
  assert.ok(allowed(p, `covenant.run-a.round.7.submit.${ALICE}`));
  assert.ok(!allowed(p, `covenant.run-a.round.7.submit.${BOB}`));
  assert.ok(allowed(p, `covenant.run-a.heartbeat.${ALICE}`));
  assert.ok(!allowed(p, `covenant.run-a.heartbeat.${BOB}`));
  assert.ok(allowed(p, `$O.covenant-run-a-p-${ALICE}.C.abc`));
  assert.ok(!allowed(p, `$O.covenant-run-a-p-${BOB}.C.abc`));
  assert.ok(!allowed(p, `covenant.run-a.round.7.selection.${ALICE}`), "miners never select");
  assert.ok(!allowed(p, "$KV.covenant-run-a-state.membership"));
  assert.ok(!allowed(p, "$JS.API.STREAM.PURGE.covenant-run-a"));
  assert.ok(!allowed(p, "$JS.API.STREAM.DELETE.covenant-run-a"));
  assert.ok(!allowed(p, "$JS.API.STREAM.CREATE.x"));
  assert.ok(!allowed(p, `covenant.run-b.round.7.submit.${ALICE}`), "nothing of another run");
});

test("a validator also selects and checkpoints under its own hotkey", () => {
  const p = peerPermissions("run-a", { hotkey: ALICE, role: "validator" }).publish.allow;
  assert.ok(allowed(p, `covenant.run-a.round.3.selection.${ALICE}`));
  assert.ok(!allowed(p, `covenant.run-a.round.3.selection.${BOB}`));
  assert.ok(allowed(p, `$KV.covenant-run-a-state.checkpoint.${ALICE}`));
  assert.ok(!allowed(p, `$KV.covenant-run-a-state.checkpoint.${BOB}`));
  assert.ok(allowed(p, `$O.covenant-run-a-c-${ALICE}.M.x`));
  assert.ok(!allowed(p, `$O.covenant-run-a-c-${BOB}.M.x`));
});

test("the configuration is deterministic and refuses duplicate or malformed keys", () => {
  const op = nkey();
  const k1 = nkey();
  const k2 = nkey();
  const spec = {
    run: "run-a",
    operatorNkey: op,
    peers: [
      { hotkey: ALICE, role: "miner" as const, nkey: k1 },
      { hotkey: BOB, role: "validator" as const, nkey: k2 },
    ],
    maxFileBytes: 1 << 30,
    maxMemoryBytes: 1 << 20,
  };
  assert.equal(accountsConfig([spec]), accountsConfig([spec]));
  assert.match(accountsConfig([spec]), /^accounts: \{/);
  const users = runAccount(spec).users as { nkey: string; permissions?: unknown }[];
  assert.equal(users.length, 3);
  assert.equal(users[0]!.nkey, op);
  assert.equal(users[0]!.permissions, undefined, "the operator has full rights in the account");
  assert.throws(
    () => runAccount({ ...spec, peers: [spec.peers[0]!, { ...spec.peers[1]!, nkey: k1 }] }),
    /two users/,
  );
  assert.throws(() => runAccount({ ...spec, operatorNkey: "SUABC" }), /not a public NATS user nkey/);
  assert.throws(() => runAccount({ ...spec, peers: [{ hotkey: "bob.*", role: "miner", nkey: k1 }] }), /SS58/);
  assert.throws(() => accountsConfig([spec, spec]), /twice/);
});
