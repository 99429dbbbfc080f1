import assert from "node:assert/strict";
import { test } from "node:test";
import {
  resolveRunConfig,
  roundConfigOf,
  type ConfigEpoch,
  type ResolvedRunConfig,
} from "../api/runconfig.ts";
import { makeRun } from "../operator/controllers/testing.ts";
import { roundConfigDigest } from "../protocol/configepoch.ts";
import {
  busLogin,
  localDataDir,
  parseArgs,
  parseRunConfig,
  RunConfigEpochs,
  runConfigProblems,
} from "./config.ts";

test("flags override the environment, which overrides the defaults", () => {
  const r = parseArgs(["--role", "miner", "--metrics-port=9500", "--config", "/c/run.json"], {
    COVENANT_ROLE: "validator",
    COVENANT_HOTKEY_FILE: "/k/hotkey",
    COVENANT_NATS_URL: "nats://n:4222",
  });
  assert.ok(r.ok === true);
  assert.equal(r.options.role, "miner");
  assert.equal(r.options.metricsPort, 9500);
  assert.equal(r.options.configFile, "/c/run.json");
  assert.equal(r.options.hotkeyFile, "/k/hotkey");
  assert.equal(r.options.natsUrl, "nats://n:4222");
});

test("defaults follow the operator's worker pod (COVENANT_METRICS_ADDR, mounted files)", () => {
  const r = parseArgs([], { COVENANT_ROLE: "validator", COVENANT_METRICS_ADDR: "0.0.0.0:9401" });
  assert.ok(r.ok === true);
  assert.equal(r.options.metricsPort, 9401);
  assert.equal(r.options.metricsHost, "0.0.0.0");
  assert.equal(r.options.configFile, "/etc/covenant/run/run.json");
  assert.equal(r.options.hotkeyFile, "/etc/covenant/hotkey/hotkey");
  const plain = parseArgs(["--role", "miner"], {});
  assert.ok(plain.ok === true && plain.options.metricsPort === 9400);
  assert.equal(plain.options.chain, true, "the chain is on unless turned off");
  const off = parseArgs(["--role", "miner"], { COVENANT_CHAIN: "off" });
  assert.ok(off.ok === true && off.options.chain === false);
});

test("bad arguments are named", () => {
  assert.deepEqual(parseArgs(["--role", "farmer"], {}), {
    ok: false,
    error: '--role must be miner or validator, got "farmer"',
  });
  assert.match(
    (parseArgs(["--role", "miner", "--bogus"], {}) as { error: string }).error,
    /unknown argument "--bogus"/,
  );
  assert.match(
    (parseArgs(["--role", "miner", "--metrics-port", "x"], {}) as { error: string }).error,
    /not a port/,
  );
  assert.match((parseArgs(["--role"], {}) as { error: string }).error, /needs a value/);
  assert.deepEqual(parseArgs(["--role", "miner", "--chain", "maybe"], {}), {
    ok: false,
    error: '--chain must be on or off, got "maybe"',
  });
  assert.deepEqual(parseArgs(["--help"], {}), { ok: "help" });
});

test("run configuration problems name the field", () => {
  assert.deepEqual(runConfigProblems(null), ["the run configuration is not a JSON object"]);
  const p = runConfigProblems({ kind: "ResolvedRunConfig", run: { name: "x" }, rounds: 0 });
  assert.ok(p.includes("rounds must be a positive integer"));
  assert.ok(p.includes("transport.natsUrl is missing"));
  assert.equal(localDataDir("file:///data/tok%20ens"), "/data/tok ens");
  assert.equal(localDataDir("https://x/y"), undefined);
});

test("config epochs: the epoch in force for a round, new epochs from a re-read, configs by digest", () => {
  const r = resolveRunConfig(makeRun("run").defaulted());
  assert.ok(r.ok);
  const base = r.config;
  const held = new RunConfigEpochs(base);
  assert.equal(held.epochs.length, 1, "a config without epochs is one epoch from round 0");
  assert.equal(held.at(50).config.innerSteps, 30);
  const e1 = held.epochs[0]!;
  const config = { ...roundConfigOf(base), innerSteps: 60 };
  const e2: ConfigEpoch = { epoch: 2, fromRound: 12, digest: roundConfigDigest(config), config };
  const next: ResolvedRunConfig = { ...base, innerSteps: 60, epochs: [e1, e2] };
  assert.deepEqual(runConfigProblems(next), []);
  assert.deepEqual(held.update(next), [e2]);
  assert.deepEqual(held.update(next), [], "nothing new the second time");
  assert.equal(held.at(11).config.innerSteps, 30);
  assert.equal(held.at(12).config.innerSteps, 60);
  assert.equal(held.at(12).epoch.epoch, 2);
  assert.equal(held.byDigest(e2.digest)?.innerSteps, 60);
  assert.equal(held.byDigest(e1.digest)?.innerSteps, 30);
  assert.equal(held.byDigest("0".repeat(64)), undefined);
  // A re-read that dropped old epochs keeps them: rounds being replayed need their config.
  held.update({ ...next, epochs: [e2] });
  assert.equal(held.at(3).config.innerSteps, 30);
  // A bad epoch list is named; a broken file is refused as a whole.
  const forged = { ...next, epochs: [e1, { ...e2, config: { ...config, innerSteps: 61 } }] };
  assert.match(runConfigProblems(forged).join(), /epochs\[1\]\.digest does not match/);
  const bad = { ...next, epochs: [e1, { ...e2, config: { ...config, innerSteps: 0 }, digest: "" }] };
  bad.epochs[1]!.digest = roundConfigDigest(bad.epochs[1]!.config);
  assert.match(runConfigProblems(bad).join(), /epoch 2: innerSteps must be a positive integer/);
  assert.equal(parseRunConfig("{").ok, false);
  const ok = parseRunConfig(JSON.stringify(next));
  assert.ok(ok.ok && ok.config.epochs?.length === 2);
});

test("bus login: hotkey without a credentials file, nkey with one, or as --bus-auth says", () => {
  const transport = { natsUrl: "tls://hub:4222" };
  const parse = (argv: string[], env: Record<string, string> = {}) => {
    const r = parseArgs(["--role", "miner", ...argv], env);
    assert.ok(r.ok === true, JSON.stringify(r));
    return r.options;
  };
  // A provider with only its hotkey Secret and the bus address.
  assert.deepEqual(busLogin(parse([]), { transport }), { ok: true, login: { kind: "hotkey" } });
  // Credentials by flag, environment, or the run configuration (a credentials Secret) mean nkey.
  assert.deepEqual(busLogin(parse(["--nats-creds", "/s/n.creds"]), { transport }), {
    ok: true,
    login: { kind: "nkey", credsFile: "/s/n.creds" },
  });
  assert.deepEqual(busLogin(parse([], { COVENANT_NATS_CREDS: "/e/seed" }), { transport }), {
    ok: true,
    login: { kind: "nkey", credsFile: "/e/seed" },
  });
  const mounted = { transport: { ...transport, credentialsFile: "/etc/covenant/nats/creds" } };
  assert.deepEqual(busLogin(parse([]), mounted), {
    ok: true,
    login: { kind: "nkey", credsFile: "/etc/covenant/nats/creds" },
  });
  // An explicit choice wins over a file that happens to be there.
  assert.deepEqual(busLogin(parse(["--bus-auth", "hotkey"]), mounted), {
    ok: true,
    login: { kind: "hotkey" },
  });
  assert.deepEqual(busLogin(parse([], { COVENANT_BUS_AUTH: "nkey" }), { transport }), {
    ok: false,
    error: "--bus-auth nkey needs a NATS credentials file (--nats-creds or COVENANT_NATS_CREDS)",
  });
  assert.equal(parse(["--bus-ca=/ca/hub.pem"]).busCa, "/ca/hub.pem");
  assert.equal(parse([], { COVENANT_BUS_CA: "/ca/env.pem" }).busCa, "/ca/env.pem");
  assert.deepEqual(parseArgs(["--role", "miner", "--bus-auth", "password"], {}), {
    ok: false,
    error: '--bus-auth must be hotkey or nkey, got "password"',
  });
});
