import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createAccount, createUser } from "@nats-io/nkeys";
import { readSeedFile, seedFromText } from "./keys.ts";

describe("reading nkey seeds", () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-admission-keys-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const user = createUser();
  const account = createAccount();
  const seed = (k: { getSeed(): Uint8Array }) => new TextDecoder().decode(k.getSeed());

  test("a bare seed or a .creds file, of the kind asked for", () => {
    assert.equal(seedFromText(`${seed(user)}\n`, "user")?.getPublicKey(), user.getPublicKey());
    const creds = `-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed(user)}\n------END USER NKEY SEED------\n`;
    assert.equal(seedFromText(creds, "user")?.getPublicKey(), user.getPublicKey());
    assert.equal(seedFromText(seed(account), "account")?.getPublicKey(), account.getPublicKey());
    assert.equal(seedFromText(seed(account), "user"), undefined);
    assert.equal(seedFromText(seed(user), "account"), undefined);
  });

  test("errors name the file, never the content", () => {
    const file = join(dir, "wrong.nk");
    writeFileSync(file, seed(user));
    assert.throws(
      () => readSeedFile(file, "account"),
      (e: Error) => e.message.includes(file) && !e.message.includes(seed(user)),
    );
    assert.throws(() => readSeedFile(join(dir, "missing"), "user"), /cannot read .*ENOENT/);
    assert.equal(readSeedFile(file, "user").getPublicKey(), user.getPublicKey());
  });
});
