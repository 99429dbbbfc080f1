import assert from "node:assert/strict";
import { test } from "node:test";
import { errors } from "@nats-io/nats-core";
import { createUser } from "@nats-io/nkeys";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import type { BusClient } from "../protocol/bus/client.ts";
import {
  busClientOptions,
  busDidNotAnswer,
  busProblem,
  connectWithRetry,
  nkeySeedIn,
  pause,
  retryDelayMs,
} from "./bus-login.ts";
import type { LoginTarget } from "./bus-login.ts";
import type { Log } from "./log.ts";

async function target(over: Partial<LoginTarget> = {}): Promise<LoginTarget> {
  await cryptoWaitReady();
  return {
    servers: "tls://hub-0:4222,tls://hub-1:4222",
    run: "tiny",
    netuid: 3,
    role: "miner",
    pair: new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//Alice"),
    login: { kind: "hotkey" },
    ...over,
  };
}

function recorder(): Log & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

test("client options: a hotkey login signs the nonce, an nkey login presents the seed; the CA verifies TLS", async () => {
  const hot = busClientOptions(await target({ caFile: "/ca.pem" }));
  assert.equal(hot.name, "miner-5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  assert.equal(hot.nkeySeed, undefined, "no NATS credentials in a hotkey login");
  assert.deepEqual(hot.tls, { caFile: "/ca.pem" });
  const fields = hot.authenticator!("nonce-1") as { user: string; pass: string; sig: string };
  assert.equal(fields.user, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
  assert.equal(fields.pass, "v1:tiny:miner");
  assert.match(fields.sig, /^0x[0-9a-f]{128}$/);
  const nkey = busClientOptions(await target({ login: { kind: "nkey", credsFile: "/s/n" } }), "SUSEED");
  assert.equal(nkey.authenticator, undefined);
  assert.equal(nkey.nkeySeed, "SUSEED");
  assert.equal(nkey.tls, undefined, "without --bus-ca the transport's defaults apply");
});

test("refusals and failures are explained without secrets", async () => {
  const t = await target();
  const refused = busProblem(new errors.AuthorizationError("Authorization Violation"), t);
  assert.equal(
    refused,
    "the bus refused the login of hotkey 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY as miner: " +
      "authorization violation (the run's admission service refused it or did not answer in time: " +
      "is the hotkey registered on netuid 3? The service's covenant_admission_decisions_total counts refusals by reason)",
  );
  assert.match(
    busProblem(new errors.AuthorizationError("Authorization Violation"), { ...t, role: "validator" }),
    /registered on netuid 3 with a validator permit/,
  );
  const nkey = { ...t, login: { kind: "nkey" as const, credsFile: "/s/peer.creds" } };
  assert.equal(
    busProblem(new errors.AuthorizationError("Authorization Violation"), nkey),
    "the bus refused the login of the NATS user in /s/peer.creds: authorization violation (is this user in the run's account?)",
  );
  assert.match(
    busProblem(new errors.UserAuthenticationExpiredError("User Authentication Expired"), t),
    /^the bus login of hotkey 5Grwva\w+ as miner expired and was not renewed/,
  );
  assert.match(
    busProblem(new Error("the NATS server sent no nonce: it is not configured for hotkey admission"), t),
    /not set up for hotkey logins .*--bus-auth nkey/,
  );
  assert.match(
    busProblem(new Error("self-signed certificate in certificate chain"), t),
    /^TLS with the bus at tls:\/\/hub-0:4222,tls:\/\/hub-1:4222 failed: .*is --bus-ca the CA/,
  );
  assert.equal(busProblem(undefined, t), "the bus connection at tls://hub-0:4222,tls://hub-1:4222 closed");
  assert.equal(
    busProblem(new Error("connection refused"), t),
    "the bus connection at tls://hub-0:4222,tls://hub-1:4222 failed: connection refused",
  );
});

test("backoff: 1 s doubling to 60 s, spread by +-20 %", () => {
  const mid = () => 0.5;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 50].map((a) => retryDelayMs(a, mid)),
    [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000],
  );
  assert.equal(
    retryDelayMs(0, () => 0),
    800,
  );
  assert.equal(
    retryDelayMs(9, () => 1),
    72000,
  );
});

test("a refused login is retried with backoff, each refusal logged and reported, until it is in", async () => {
  const t = await target();
  const log = recorder();
  const reasons: string[] = [];
  const delays: number[] = [];
  const client = { fake: true } as unknown as BusClient;
  let calls = 0;
  const bus = await connectWithRetry({
    connect: () =>
      ++calls < 3
        ? Promise.reject(new errors.AuthorizationError("Authorization Violation"))
        : Promise.resolve(client),
    problem: (err) => busProblem(err, t),
    onProblem: (why) => reasons.push(why),
    log,
    signal: new AbortController().signal,
    delayMs: (attempt) => (delays.push(attempt), 5),
  });
  assert.equal(bus, client);
  assert.equal(calls, 3);
  assert.deepEqual(delays, [0, 1]);
  assert.equal(reasons.length, 2);
  assert.match(reasons[0]!, /^the bus refused the login of hotkey/);
  assert.equal(log.lines.length, 2);
  assert.match(log.lines[0]!, /^WARN the bus refused the login .*; trying again in 0\.0 s$/);
});

test("a stop ends the retries, and one during a pending attempt closes what connects later", async () => {
  const t = await target();
  const ac = new AbortController();
  let closed = 0;
  let connected: (b: BusClient) => void = () => undefined;
  const late = { close: async () => void closed++ } as unknown as BusClient;
  const waiting = connectWithRetry({
    connect: () => new Promise<BusClient>((resolve) => (connected = resolve)),
    problem: (err) => busProblem(err, t),
    onProblem: () => undefined,
    log: recorder(),
    signal: ac.signal,
  });
  ac.abort();
  assert.equal(await waiting, undefined);
  connected(late);
  await new Promise((r) => setImmediate(r));
  assert.equal(closed, 1, "the client that connected after the stop was closed");

  const stop = new AbortController();
  let attempts = 0;
  const retrying = connectWithRetry({
    connect: () => (attempts++, Promise.reject(new Error("connection refused"))),
    problem: (err) => busProblem(err, t),
    onProblem: () => undefined,
    log: recorder(),
    signal: stop.signal,
    delayMs: () => 60_000,
  });
  await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  assert.equal(await retrying, undefined, "a stop during the backoff ends it at once");
  assert.equal(attempts, 1);
});

test("pause: the whole wait, or until the signal", async () => {
  assert.equal(await pause(5, new AbortController().signal), true);
  const ac = new AbortController();
  const p = pause(60_000, ac.signal);
  ac.abort();
  assert.equal(await p, false);
  assert.equal(await pause(10, ac.signal), false);
});

test("the bus not answering is told apart from a refusal", () => {
  assert.equal(busDidNotAnswer(new Error("TimeoutError: timeout")), true);
  assert.equal(
    busDidNotAnswer(
      new Error(
        "publish covenant.r.round.8.submit.x failed after 5 attempts: JetStreamNotEnabled: jetstream is not enabled",
      ),
    ),
    true,
    "BusClient gave up its own retries of a transient error",
  );
  assert.equal(busDidNotAnswer(new Error("Permissions Violation for Publish to covenant.r.x")), false);
  assert.equal(busDidNotAnswer(new Error("selection of round 3 does not verify: bad signature")), false);
});

test("the nkey seed is found in a bare seed file and in a .creds file, and nowhere else", () => {
  const seed = createUser().getSeed();
  const text = new TextDecoder().decode(seed);
  assert.equal(nkeySeedIn(`${text}\n`), text);
  const creds =
    "-----BEGIN NATS USER JWT-----\neyJhbGciOi.e30.sig\n------END NATS USER JWT------\n\n" +
    `-----BEGIN USER NKEY SEED-----\n${text}\n------END USER NKEY SEED------\n`;
  assert.equal(nkeySeedIn(creds), text);
  assert.equal(nkeySeedIn("SUNOTASEED"), undefined);
  assert.equal(nkeySeedIn(""), undefined);
});
