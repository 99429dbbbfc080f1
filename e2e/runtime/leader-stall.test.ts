// Leader election when the API server stops answering one candidate: the leader reaches the
// real kube-apiserver through a proxy that then stalls (connections stay open, no bytes pass),
// a standby reaches it directly. The leader must step down at its renew deadline without
// waiting for its hung requests, strictly before the standby takes the lease over, and the
// standby must take it over within about a lease duration. Both electors run in this process,
// so the two callbacks are timed on one clock.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { CORE, KubeClient } from "../../operator/kube/index.ts";
import { LeaderElector, type Lease } from "../../operator/kube/leader.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { startStallProxy, type StallProxy } from "../stack/stall-proxy.ts";
import { waitFor } from "../stack/wait.ts";

const NS = "leader-stall";
const LEASE = "stall";
// Short timings keep the test quick; the safety margin is leaseDuration - renewDeadline.
const TIMINGS = { leaseDurationMs: 4000, renewDeadlineMs: 2500, retryPeriodMs: 500 };
/** Timers on two busy cores fire late; allowance for that in the upper bounds. */
const SLACK_MS = 500;

interface Candidate {
  identity: string;
  elector: LeaderElector;
  /** Resolves when its campaign/renew loop ends. */
  done: Promise<void>;
  /** performance.now() of onStartedLeading / onStoppedLeading, set by the callbacks. */
  at: { started?: number; stopped?: number };
}

/** An elector campaigning from now on. */
function candidate(identity: string, client: KubeClient): Candidate {
  const at: Candidate["at"] = {};
  const elector = new LeaderElector(client, {
    leaseName: LEASE,
    leaseNamespace: NS,
    identity,
    ...TIMINGS,
    onStartedLeading: () => (at.started = performance.now()),
    onStoppedLeading: () => (at.stopped = performance.now()),
  });
  return { identity, elector, at, done: elector.start() };
}

/** The same credentials and CA, with the server address replaced by the proxy's. */
function viaProxy(kc: KubeConfig, proxy: StallProxy): KubeConfig {
  const out = new KubeConfig();
  out.loadFromOptions({
    // The serving certificate has IP SAN 127.0.0.1, so TLS still verifies through the proxy.
    clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy.port}` })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("leader election with a stalled API server connection", { timeout: 240_000 }, () => {
  let kube: KubeStack | undefined;
  let proxy: StallProxy | undefined;
  let admin: KubeClient;
  const candidates: Candidate[] = [];

  before(async () => {
    kube = await startKube();
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    const server = new URL(kube.server);
    proxy = await startStallProxy({ host: server.hostname, port: Number(server.port) });
  });
  after(async () => {
    // Electors first (a release may still need the API server), then the proxy, then the stack.
    for (const c of candidates) await c.elector.release();
    await proxy?.close();
    await kube?.stop();
  });

  test("the leader steps down at its renew deadline, before the standby takes over", async () => {
    const viaStallable = KubeClient.fromKubeConfig(viaProxy(kube!.kubeConfig(), proxy!));
    const a = candidate("candidate-a", viaStallable);
    candidates.push(a);
    await waitFor("A to lead through the proxy", () => a.elector.isLeader(), { timeoutMs: 15_000 });
    const b = candidate("candidate-b", admin);
    candidates.push(b);
    // B sees A renew over several retry periods and stays a standby.
    await sleep(4 * TIMINGS.retryPeriodMs);
    assert.equal(b.elector.isLeader(), false);
    assert.equal(b.elector.leader(), a.identity);

    const stalledAt = performance.now();
    proxy!.stall();
    const started = await waitFor("B to lead", () => b.at.started, {
      timeoutMs: TIMINGS.leaseDurationMs + TIMINGS.renewDeadlineMs + 10_000,
      intervalMs: 50,
    });
    const stopped = a.at.stopped;
    assert.ok(stopped !== undefined, "A stepped down");
    const stopMs = stopped - stalledAt;
    const startMs = started - stalledAt;
    console.log(
      `after the stall: A stopped leading at +${stopMs.toFixed(0)} ms, B started at +${startMs.toFixed(0)} ms, ` +
        `${(started - stopped).toFixed(0)} ms without a leader`,
    );
    assert.ok(stopped < started, "never two leaders: A stopped before B started");
    // A's last successful renewal started before the stall, so its deadline falls within one
    // renew deadline of the stall, whatever its hung requests do.
    assert.ok(stopMs <= TIMINGS.renewDeadlineMs + SLACK_MS, `A stepped down ${stopMs} ms after the stall`);
    // B takes over once A's last renewal is a lease duration old, plus a retry period or so.
    assert.ok(
      startMs <= TIMINGS.leaseDurationMs + 2 * TIMINGS.retryPeriodMs + 2 * SLACK_MS,
      `B took over ${startMs} ms after the stall`,
    );
    assert.equal(a.elector.isLeader(), false);
    // A's loop ended although its requests through the stalled proxy never answered.
    const ended = await Promise.race([a.done.then(() => true), sleep(1000).then(() => false)]);
    assert.ok(ended, "A's elector loop still waits on its hung request");
    const lease = await admin.get<Lease>(CORE.leases, NS, LEASE);
    assert.equal(lease.spec?.holderIdentity, b.identity);
    assert.equal(lease.spec?.leaseTransitions, 1);
    // The proxy forwards again once resumed (A's client opens fresh connections).
    proxy!.resume();
    const seen = await viaStallable.get<Lease>(CORE.leases, NS, LEASE);
    assert.equal(seen.spec?.holderIdentity, b.identity);
  });
});
