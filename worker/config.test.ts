import assert from "node:assert/strict";
import { test } from "node:test";
import { localDataDir, parseArgs, runConfigProblems } from "./config.ts";

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
