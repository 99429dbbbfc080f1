// Leader election between separate operator processes on one Lease, under an identity
// that may only touch leases: exactly one leads; a SIGKILLed leader is replaced within
// 20 s; a SIGTERMed leader releases the lease so that the standby takes over at once.
// test-limit: 420 s (its tests' own timeouts, plus setup)
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { CORE, KubeClient, Manager } from "../../operator/kube/index.ts";
import type { Lease } from "../../operator/kube/leader.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { repoRoot } from "../stack/paths.ts";
import { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";

const NS = "covenant-system";

interface Candidate {
  identity: string;
  proc: ManagedProcess;
  url: string;
}

/**
 * Keeps the event loop alive while waiting on a child's exit: the stack unrefs its children,
 * so awaiting only their exit would let the test runner see an empty loop and cancel.
 */
function hold<T>(p: Promise<T>): Promise<T> {
  const t = setInterval(() => {}, 1000);
  return p.finally(() => clearInterval(t));
}

async function isLeader(c: Candidate): Promise<boolean> {
  const res = await fetch(`${c.url}/metrics`);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith("covenant_leader_election_is_leader{"));
  return line?.trim().endsWith(" 1") ?? false;
}

describe("leader election", { timeout: 300_000 }, () => {
  let kube: KubeStack;
  let admin: KubeClient;
  let kubeconfigPath: string;
  const candidates: Candidate[] = [];

  before(async () => {
    kube = await startKube();
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    // Least privilege: leases in one namespace, nothing else.
    const rbac = { group: "rbac.authorization.k8s.io", version: "v1", namespaced: true };
    await admin.create({ ...rbac, plural: "roles", kind: "Role" }, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { namespace: NS, name: "leader-election" },
      rules: [
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
      ],
    } as never);
    await admin.create({ ...rbac, plural: "rolebindings", kind: "RoleBinding" }, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { namespace: NS, name: "leader-election" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "leader-election" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "covenant-operator" }],
    } as never);
    kubeconfigPath = (await kube.mintUser("covenant-operator")).kubeconfigPath;
  });
  after(async () => {
    for (const c of candidates) await hold(c.proc.stop());
    await kube?.stop();
  });

  async function launch(identity: string): Promise<Candidate> {
    const portFile = join(kube.dir, `${identity}.url`);
    const proc = ManagedProcess.start({
      name: identity,
      command: process.execPath,
      args: [
        "--import",
        "tsx",
        join(repoRoot, "e2e/runtime/elector-main.ts"),
        kubeconfigPath,
        identity,
        NS,
        portFile,
      ],
      logFile: join(kube.dir, `${identity}.log`),
      cwd: repoRoot,
    });
    const url = await proc.untilReady(
      waitFor(`${identity} listening`, () => existsSync(portFile) && readFileSync(portFile, "utf8"), {
        timeoutMs: 60_000,
      }),
    );
    const c = { identity, proc, url };
    candidates.push(c);
    return c;
  }

  const holder = async () =>
    (await admin.get<Lease>(CORE.leases, NS, "covenant-operator")).spec?.holderIdentity;

  async function leaders(cs: Candidate[]): Promise<string[]> {
    const out: string[] = [];
    for (const c of cs) if (c.proc.running && (await isLeader(c))) out.push(c.identity);
    return out;
  }

  test("exactly one of two processes leads; after SIGKILL the other takes over within 20 s", async () => {
    const [a, b] = await Promise.all([launch("candidate-a"), launch("candidate-b")]);
    const first = await waitFor("a leader", async () => (await leaders([a, b]))[0], { timeoutMs: 30_000 });
    // Stays exactly one over several retry periods.
    for (let i = 0; i < 6; i++) {
      assert.deepEqual(await leaders([a, b]), [first]);
      assert.equal(await holder(), first);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const [leader, standby] = first === a.identity ? [a, b] : [b, a];
    const ready = await fetch(`${standby.url}/readyz`);
    assert.equal(ready.status, 200, "a standby with synced caches is ready");

    const killedAt = Date.now();
    await hold(leader.proc.kill());
    await waitFor("the standby to lead", async () => (await leaders([standby])).length === 1, {
      timeoutMs: 25_000,
      intervalMs: 100,
    });
    const takeoverMs = Date.now() - killedAt;
    console.log(`takeover after SIGKILL: ${takeoverMs} ms`);
    assert.ok(takeoverMs < 20_000, `takeover took ${takeoverMs} ms`);
    assert.equal(await holder(), standby.identity);
    const lease = await admin.get<Lease>(CORE.leases, NS, "covenant-operator");
    assert.equal(lease.spec?.leaseDurationSeconds, 15);
    assert.ok((lease.spec?.leaseTransitions ?? 0) >= 1);
  });

  test("a leader stopped with SIGTERM releases the lease and the standby leads at once", async () => {
    const current = candidates.find((c) => c.proc.running)!;
    const next = await launch("candidate-c");
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await leaders([current, next]), [current.identity], "the newcomer waits as a standby");

    const stoppedAt = Date.now();
    await hold(current.proc.stop());
    const log = current.proc.logTail(50);
    assert.match(log, /"msg":"released lease"/, log);
    assert.match(log, /"msg":"manager stopped".*"reason":"signal"/, log);
    await waitFor("the standby to lead", async () => (await leaders([next])).length === 1, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    const takeoverMs = Date.now() - stoppedAt;
    console.log(`takeover after SIGTERM: ${takeoverMs} ms`);
    assert.ok(takeoverMs < 5_000, `takeover after release took ${takeoverMs} ms`);
    assert.equal(await holder(), next.identity);
  });

  test("a leader whose lease is taken stops leading and its manager stops with lost-leadership", async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const leaseName = "short-lease";
    const mgr = new Manager({
      kubeConfig,
      leaderElection: {
        leaseName,
        leaseNamespace: NS,
        identity: "in-process",
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 500,
      },
    });
    const done = mgr.run();
    await waitFor("in-process leads", () => mgr.isLeader() && mgr.isReady(), { timeoutMs: 10_000 });
    // Someone else writes the lease (as an operator with the same lease name elsewhere might).
    const lease = await admin.get<Lease>(CORE.leases, NS, leaseName);
    const now = new Date().toISOString().replace(/Z$/, "000Z"); // MicroTime
    await admin.replace(CORE.leases, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "intruder", leaseDurationSeconds: 60, renewTime: now },
    });
    const t0 = Date.now();
    const reason = await hold(done);
    const ms = Date.now() - t0;
    assert.equal(reason, "lost-leadership");
    assert.equal(mgr.isLeader(), false);
    assert.ok(ms < 5000, `stepped down after ${ms} ms (renew deadline 2 s)`);
    const after = await admin.get<Lease>(CORE.leases, NS, leaseName);
    assert.equal(after.spec?.holderIdentity, "intruder", "a leader that lost the lease does not release it");
  });
});
