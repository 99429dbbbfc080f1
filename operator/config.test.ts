import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseConfig, parseDuration, usage } from "./config.ts";
import { DEFAULT_RATE_LIMIT } from "./kube/ratelimit.ts";

describe("operator config", () => {
  it("has the usual defaults", () => {
    const c = parseConfig([], {});
    assert.equal(c.leaderElect, true);
    assert.equal(c.leaseDurationMs, 15_000);
    assert.equal(c.renewDeadlineMs, 10_000);
    assert.equal(c.retryPeriodMs, 2_000);
    assert.equal(c.httpAddress, ":8080");
    assert.equal(c.logLevel, "info");
    assert.equal(c.namespace, undefined);
    assert.equal(c.kubeconfig, undefined);
    assert.equal(c.nodeNotReadyGraceMs, 60_000);
  });

  it("limits its API requests, as flags or environment say, and refuses nonsense", () => {
    const d = parseConfig([], {});
    assert.deepEqual([d.kubeApiQps, d.kubeApiBurst], [DEFAULT_RATE_LIMIT.qps, DEFAULT_RATE_LIMIT.burst]);
    const c = parseConfig(["--kube-api-qps=0"], { COVENANT_KUBE_API_BURST: "7" });
    assert.deepEqual([c.kubeApiQps, c.kubeApiBurst], [0, 7]);
    assert.throws(() => parseConfig(["--kube-api-qps=-1"], {}), /--kube-api-qps -1: must be >= 0/);
    assert.throws(
      () => parseConfig(["--kube-api-burst=0.5"], {}),
      /--kube-api-burst 0.5: must be a whole number >= 1/,
    );
    assert.throws(() => parseConfig(["--kube-api-qps=fast"], {}), /expected a number/);
  });

  it("flags win over the environment", () => {
    const env = { COVENANT_LOG_LEVEL: "warn", COVENANT_WATCH_NAMESPACE: "a", KUBECONFIG: "/k" };
    const c = parseConfig(
      ["--log-level=debug", "--namespace", "b", "--no-leader-elect", "--lease-duration=30s"],
      env,
    );
    assert.equal(c.logLevel, "debug");
    assert.equal(c.namespace, "b");
    assert.equal(c.kubeconfig, "/k");
    assert.equal(c.leaderElect, false);
    assert.equal(c.leaseDurationMs, 30_000);
  });

  it("provisions the runs' buses only when asked, with the operator's NATS user", () => {
    const d = parseConfig([], {});
    assert.deepEqual(
      [d.provisionBus, d.busReplicas, d.busDepartedGraceMs, d.natsCa],
      [false, 1, 0, undefined],
    );
    const c = parseConfig(
      ["--nats-creds=/s/op.nk", "--provision-bus", "--bus-replicas=3", "--bus-departed-grace=10m"],
      { COVENANT_NATS_CA: "/s/ca.pem" },
    );
    assert.deepEqual(
      [c.provisionBus, c.busReplicas, c.busDepartedGraceMs, c.natsCa],
      [true, 3, 600_000, "/s/ca.pem"],
    );
  });

  it("parses durations", () => {
    assert.equal(parseDuration("500ms", "x"), 500);
    assert.equal(parseDuration("2m", "x"), 120_000);
    assert.equal(parseDuration("3", "x"), 3000);
    assert.throws(() => parseDuration("soon", "--x"), /--x "soon"/);
  });

  const bad: [string[], RegExp][] = [
    [["--frobnicate"], /unknown flag --frobnicate/],
    [["--log-level=loud"], /--log-level/],
    [["--leader-elect=maybe"], /--leader-elect "maybe"/],
    [["--renew-deadline=20s"], /retry-period < --renew-deadline < --lease-duration/],
    [["--http-address=8080"], /--http-address "8080"/],
    [["--namespace=a,b"], /one namespace/],
    [["--namespace"], /needs a value/],
    [["positional"], /unexpected argument/],
    [["--provision-bus"], /--provision-bus needs --nats-creds/],
    [["--bus-replicas=6"], /--bus-replicas 6: must be a whole number from 1 to 5/],
    [["--bus-replicas=0"], /--bus-replicas 0/],
  ];
  for (const [argv, re] of bad) {
    it(`refuses ${argv.join(" ")}`, () => {
      assert.throws(
        () => parseConfig(argv, {}),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
      );
    });
  }

  it("documents every flag", () => {
    assert.match(usage(), /--node-not-ready-grace/);
    assert.match(usage(), /COVENANT_LOG_LEVEL/);
  });
});
