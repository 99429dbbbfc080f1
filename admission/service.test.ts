import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { decode, type AuthorizationResponse, type User } from "@nats-io/jwt";
import { createAccount } from "@nats-io/nkeys";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Registry } from "prom-client";
import { createLogger } from "../protocol/log.ts";
import { ChainUnavailable, type StandingSource } from "./chain.ts";
import type { Standing } from "./decision.ts";
import { createAdmissionMetrics } from "./metrics.ts";
import { AdmissionService } from "./service.ts";
import { loginRequest } from "./testing.ts";

describe("the admission service's answers", () => {
  let alice: KeyringPair, bob: KeyringPair;
  const issuer = createAccount();
  before(async () => {
    await cryptoWaitReady();
    const k = new Keyring({ type: "sr25519", ss58Format: 42 });
    [alice, bob] = [k.addFromUri("//Alice"), k.addFromUri("//Bob")];
  });

  function setup(standing: (hotkey: string) => Promise<Standing>) {
    const registry = new Registry();
    const lines: Record<string, unknown>[] = [];
    const asked: string[] = [];
    const standings: StandingSource = {
      standing: (h) => {
        asked.push(h);
        return standing(h);
      },
    };
    const service = new AdmissionService({
      run: "r1",
      issuer,
      ttlSeconds: 60,
      standings,
      metrics: createAdmissionMetrics(registry),
      log: createLogger({
        level: "debug",
        write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
      }),
    });
    const count = async (result: string, reason: string) => {
      const m = (await registry.getSingleMetric("covenant_admission_decisions_total")!.get()).values;
      return m.find((v) => v.labels.result === result && v.labels.reason === reason)?.value ?? 0;
    };
    return { service, lines, asked, count, registry };
  }

  const registered = async (): Promise<Standing> => ({ registered: true, uid: 2, validatorPermit: false });

  test("a registered hotkey is admitted with a user JWT for its connection", async () => {
    const { service, lines, count } = setup(registered);
    const { jwt, userNkey } = await loginRequest(alice, { run: "r1", role: "miner" });
    const a = await service.answer(new TextEncoder().encode(jwt));
    assert.deepEqual(a.decision, { admit: true, hotkey: alice.address, role: "miner", uid: 2 });
    const r = decode<AuthorizationResponse>(new TextDecoder().decode(a.payload));
    assert.equal(r.sub, userNkey);
    assert.equal(decode<User>(r.nats.jwt!).name, alice.address);
    assert.equal(await count("admitted", "miner"), 1);
    assert.equal(lines.at(-1)?.msg, "admitted");
    assert.equal(lines.at(-1)?.hotkey, alice.address);
  });

  test("each refusal answers with its reason, is counted and logged, and never reaches the chain when forged", async () => {
    const { service, lines, asked, count } = setup(async () => ({ registered: false }));
    const unsigned = await loginRequest(alice, { run: "r1", role: "miner" }, "n1", {
      connectOpts: { sig: undefined },
    });
    // Bob signs, claiming to be Alice.
    const { jwt: bobSigned } = await loginRequest(bob, { run: "r1", role: "miner" }, "n1", {
      connectOpts: { user: alice.address },
    });
    const cases: [string, string][] = [
      [bobSigned, "bad_signature"],
      [(await loginRequest(alice, { run: "r2", role: "miner" })).jwt, "wrong_run"],
      [(await loginRequest(alice, { run: "r1", role: "miner" })).jwt, "unregistered"],
      [unsigned.jwt, "malformed"],
    ];
    for (const [jwt, reason] of cases) {
      const a = await service.answer(new TextEncoder().encode(jwt));
      assert.equal(a.decision.admit, false);
      const r = decode<AuthorizationResponse>(new TextDecoder().decode(a.payload));
      assert.match(r.nats.error!, new RegExp(`\\(${reason}\\)`));
      assert.equal(r.nats.jwt, undefined);
      assert.equal(await count("refused", reason), 1, reason);
      assert.equal(lines.at(-1)?.msg, "refused");
      assert.equal(lines.at(-1)?.reason, reason);
    }
    assert.deepEqual(asked, [alice.address], "only the genuine login was looked up");
    // No signature or JWT in any log line.
    for (const l of lines) assert.doesNotMatch(JSON.stringify(l), /0x[0-9a-f]{128}|eyJ/);
  });

  test("an unreadable request gets an empty answer (a refusal) and is counted", async () => {
    const { service, count } = setup(registered);
    for (const junk of ["", "not a jwt", "\u0000\u0001"]) {
      const a = await service.answer(new TextEncoder().encode(junk));
      assert.equal(a.payload.length, 0);
    }
    assert.equal(await count("refused", "malformed"), 3);
  });

  test("the chain being down refuses as chain_unreachable; a bug refuses as internal", async () => {
    const down = setup(async () => {
      throw new ChainUnavailable("not connected");
    });
    const { jwt } = await loginRequest(alice, { run: "r1", role: "miner" });
    const a = await down.service.answer(new TextEncoder().encode(jwt));
    assert.equal(a.decision.admit === false && a.decision.reason, "chain_unreachable");
    assert.equal(await down.count("refused", "chain_unreachable"), 1);

    const buggy = setup(async () => {
      throw new TypeError("boom");
    });
    const b = await buggy.service.answer(new TextEncoder().encode(jwt));
    assert.equal(b.decision.admit === false && b.decision.reason, "internal");
    const r = decode<AuthorizationResponse>(new TextDecoder().decode(b.payload));
    assert.match(r.nats.error!, /internal/);
    assert.doesNotMatch(r.nats.error!, /boom/, "internal details stay in the service's log");
    assert.equal(await buggy.count("refused", "internal"), 1);
  });

  test("every decision is timed", async () => {
    const { service, registry } = setup(registered);
    await service.answer(
      new TextEncoder().encode((await loginRequest(alice, { run: "r1", role: "miner" })).jwt),
    );
    const text = await registry.metrics();
    assert.match(text, /covenant_admission_decision_seconds_count\{result="admitted"\} 1/);
    // Every reason's series exists before its first event.
    assert.match(text, /covenant_admission_decisions_total\{result="refused",reason="chain_unreachable"\} 0/);
  });
});
