import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { Reason, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import { findCondition } from "./conditions.ts";
import { controllerOptions } from "./options.ts";
import { planPeer, type PeerObservation } from "./peerplan.ts";
import { makeNode, makePeer, makeRun, withPodState } from "./testing.ts";
import { desiredWorkerPod } from "./workerpod.ts";

const NOW = new Date("2026-06-01T12:00:00Z");
const opts = controllerOptions({ now: () => NOW, nodeNotReadyGraceMs: 60_000 });
const run = makeRun("run").defaulted();
const peer = makePeer("alice").defaulted();
const pod = desiredWorkerPod(peer, run, opts);

function observe(over: Partial<PeerObservation> & { nodes?: V1Node[] } = {}): PeerObservation {
  const nodes = over.nodes ?? [makeNode("n1"), makeNode("n2")];
  return {
    peer: over.peer ?? peer,
    run: "run" in over ? over.run : run,
    runConfigReady: over.runConfigReady ?? true,
    hotkeySecretExists: over.hotkeySecretExists ?? true,
    pods: over.pods ?? [],
    node: (n) => nodes.find((x) => x.metadata?.name === n),
    rollout: over.rollout,
  };
}

const cond = (p: { status: { conditions?: unknown[] } }, t: string) =>
  findCondition(p.status.conditions as never, t);

describe("planPeer", () => {
  it("creates the pod when there is none", () => {
    const plan = planPeer(observe(), opts);
    assert.equal(plan.apply?.metadata?.name, "alice-worker");
    assert.equal(plan.deletions.length, 0);
    assert.equal(cond(plan, "Scheduled")?.reason, Reason.PodPending);
    assert.equal(plan.status.podName, "alice-worker");
    assert.deepEqual(
      plan.events.map((e) => e.reason),
      [Reason.PodCreated],
    );
  });

  it("does nothing to a healthy Ready pod and reports Ready", () => {
    const plan = planPeer(observe({ pods: [withPodState(pod, { node: "n1", ready: true })] }), opts);
    assert.equal(plan.apply, undefined);
    assert.equal(plan.deletions.length, 0);
    assert.equal(cond(plan, "Ready")?.status, "True");
    assert.equal(cond(plan, "Scheduled")?.status, "True");
    assert.equal(plan.status.nodeName, "n1");
    assert.equal(plan.events.length, 0);
    assert.equal(plan.requeueAfterMs, undefined);
  });

  it("says why a pod is not Ready: the image the kubelet cannot get, or another waiting reason", () => {
    const stuck = (reason: string, message?: string): V1Pod => {
      const p = withPodState(pod, { node: "n1", ready: false });
      p.status!.containerStatuses = [
        {
          name: "worker",
          image: "ignored-when-the-spec-names-it",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { waiting: { reason, message } },
        },
      ];
      return p;
    };
    const image = pod.spec!.containers[0]!.image!;
    const never = planPeer(observe({ pods: [stuck("ErrImageNeverPull", "image is not present")] }), opts);
    assert.equal(cond(never, "Ready")?.reason, Reason.ImageNotAvailable);
    assert.equal(
      cond(never, "Ready")?.message,
      `pod alice-worker: container worker (image ${image}) is waiting: ErrImageNeverPull (image is not present)`,
    );
    assert.equal(never.deletions.length, 0, "the pod is kept: a fixed image in the run replaces it");
    const crash = planPeer(observe({ pods: [stuck("CrashLoopBackOff")] }), opts);
    assert.equal(cond(crash, "Ready")?.reason, Reason.PodNotReady);
    assert.match(cond(crash, "Ready")?.message ?? "", /is waiting: CrashLoopBackOff$/);
    // Being created is not a problem to report.
    const creating = planPeer(observe({ pods: [stuck("ContainerCreating")] }), opts);
    assert.equal(cond(creating, "Ready")?.message, "pod alice-worker is not Ready yet");
  });

  it("keeps transition times when nothing changed (a second plan is identical)", () => {
    const o = observe({ pods: [withPodState(pod, { node: "n1", ready: true })] });
    const first = planPeer(o, opts);
    const later = controllerOptions({ now: () => new Date(NOW.getTime() + 5000) });
    const second = planPeer({ ...o, peer: { ...peer, status: first.status } as CovenantPeer }, later);
    assert.deepEqual(second.status, first.status);
  });

  it("replaces a failed pod at once", () => {
    const failed = withPodState(pod, { node: "n1", phase: "Failed" });
    const plan = planPeer(observe({ pods: [failed] }), opts);
    assert.equal(plan.deletions.length, 1);
    assert.equal(plan.deletions[0]?.reason, Reason.PodFailed);
    assert.equal(plan.deletions[0]?.force, true);
    assert.ok(plan.apply, "a new pod in the same reconcile");
    assert.equal(plan.status.podReplacements, 1);
  });

  it("carries the replacement count from pod to pod, not through the (possibly stale) status", () => {
    const failed = withPodState(pod, { node: "n1", phase: "Failed" });
    failed.metadata!.annotations = { ...failed.metadata?.annotations, "covenant.io/replacements": "2" };
    const stale = makePeer("alice").status({ podReplacements: 0 }).defaulted();
    const plan = planPeer(observe({ peer: stale, pods: [failed] }), opts);
    assert.equal(plan.apply?.metadata?.annotations?.["covenant.io/replacements"], "3");
    assert.equal(plan.status.podReplacements, 3);
    const later = planPeer(
      observe({ peer: stale, pods: [withPodState(plan.apply!, { node: "n2", ready: true })] }),
      opts,
    );
    assert.equal(later.status.podReplacements, 3);
  });

  it("counts a lost pod that the cache shows mid-way through its forced deletion", () => {
    // The API server marks a pod it deletes with grace 0 before removing it; a reconcile may
    // see that state with a stale peer status. The new pod must still carry the count.
    const stuck = withPodState(pod, { node: "gone", deleting: true });
    stuck.metadata!.annotations = { ...stuck.metadata?.annotations, "covenant.io/replacements": "1" };
    const stale = makePeer("alice").status({ podReplacements: 0 }).defaulted();
    const plan = planPeer(observe({ peer: stale, pods: [stuck] }), opts);
    assert.equal(plan.deletions[0]?.force, true);
    assert.equal(plan.apply?.metadata?.annotations?.["covenant.io/replacements"], "2");
    assert.equal(plan.status.podReplacements, 2);
  });

  it("never counts backwards when the pod carries less than the status", () => {
    const running = withPodState(pod, { node: "n1", ready: true });
    const counted = makePeer("alice").status({ podReplacements: 4 }).defaulted();
    const plan = planPeer(observe({ peer: counted, pods: [running] }), opts);
    assert.equal(plan.status.podReplacements, 4);
  });

  it("replaces a pod whose node is gone", () => {
    const plan = planPeer(observe({ pods: [withPodState(pod, { node: "gone", ready: true })] }), opts);
    assert.equal(plan.deletions[0]?.reason, Reason.NodeLost);
    assert.ok(plan.apply);
  });

  it("waits out the NotReady grace period, then replaces", () => {
    const since = new Date(NOW.getTime() - 20_000).toISOString();
    const nodes = [makeNode("n1", { ready: false, since }), makeNode("n2")];
    const bound = withPodState(pod, { node: "n1", ready: true });
    const early = planPeer(observe({ pods: [bound], nodes }), opts);
    assert.equal(early.deletions.length, 0);
    assert.equal(early.requeueAfterMs, 40_000);
    assert.equal(cond(early, "Ready")?.reason, Reason.NodeNotReady);
    const late = planPeer(
      observe({ pods: [bound], nodes }),
      controllerOptions({ now: () => new Date(NOW.getTime() + 41_000) }),
    );
    assert.equal(late.deletions[0]?.reason, Reason.NodeNotReady);
    assert.equal(late.deletions[0]?.force, true);
    assert.ok(late.apply);
  });

  it("force-deletes a terminating pod stuck on a lost node, and waits for the name", () => {
    const stuck = withPodState(pod, { node: "gone", deleting: true });
    const plan = planPeer(observe({ pods: [stuck] }), opts);
    assert.equal(plan.deletions[0]?.force, true);
    // A gracefully terminating pod on a healthy node keeps the name: wait.
    const leaving = withPodState(pod, { node: "n1", deleting: true });
    const wait = planPeer(observe({ pods: [leaving] }), opts);
    assert.equal(wait.apply, undefined);
    assert.equal(wait.deletions.length, 0);
    assert.ok(wait.requeueAfterMs !== undefined);
  });

  it("replaces a pod with an outdated spec gracefully", () => {
    const old = withPodState(pod, { node: "n1", ready: true });
    const newRun = makeRun("run")
      .image("x@sha256:" + "e".repeat(64))
      .defaulted();
    const plan = planPeer(observe({ pods: [old], run: newRun }), opts);
    assert.equal(plan.deletions[0]?.reason, Reason.SpecChanged);
    assert.equal(plan.deletions[0]?.force, false);
    assert.equal(plan.apply, undefined, "the new pod waits until the old one released the name");
  });

  it("an outdated Ready pod waits for its turn in the rollout, and says so", () => {
    const old = withPodState(pod, { node: "n1", ready: true });
    const newRun = makeRun("run")
      .image("x@sha256:" + "e".repeat(64))
      .defaulted();
    const rollout = (bob: { available: boolean; outdated: boolean }) => ({
      maxUnavailable: 1,
      peers: [
        { name: "alice", available: true, outdated: true },
        { name: "bob", ...bob },
      ],
    });
    // bob's replacement is not Ready yet: alice waits.
    const wait = planPeer(
      observe({ pods: [old], run: newRun, rollout: rollout({ available: false, outdated: false }) }),
      opts,
    );
    assert.equal(wait.deletions.length, 0);
    assert.equal(wait.requeueAfterMs, opts.rolloutRecheckMs);
    assert.equal(cond(wait, "UpToDate")?.status, "False");
    assert.equal(cond(wait, "UpToDate")?.reason, Reason.RolloutWaiting);
    assert.equal(cond(wait, "Ready")?.status, "True", "the waiting pod keeps working");
    // bob is Ready again: alice goes.
    const go = planPeer(
      observe({ pods: [old], run: newRun, rollout: rollout({ available: true, outdated: false }) }),
      opts,
    );
    assert.equal(go.deletions[0]?.reason, Reason.SpecChanged);
    // A pod that is not Ready is replaced at once, whatever the others do.
    const down = planPeer(
      observe({
        pods: [withPodState(pod, { node: "n1", ready: false })],
        run: newRun,
        rollout: {
          maxUnavailable: 1,
          peers: [
            { name: "alice", available: false, outdated: true },
            { name: "bob", available: false, outdated: false },
          ],
        },
      }),
      opts,
    );
    assert.equal(down.deletions[0]?.reason, Reason.SpecChanged);
    const current = planPeer(observe({ pods: [withPodState(pod, { node: "n1", ready: true })] }), opts);
    assert.equal(cond(current, "UpToDate")?.status, "True");
  });

  it("keeps exactly one of several pods, the Ready one", () => {
    const a = withPodState(
      { ...pod, metadata: { ...pod.metadata, name: "alice-old", uid: "a" } },
      { node: "n1" },
    );
    const b = withPodState(pod, { node: "n2", ready: true, uid: "b" });
    const plan = planPeer(observe({ pods: [a, b] }), opts);
    assert.deepEqual(
      plan.deletions.map((d) => [d.pod.metadata?.name, d.reason]),
      [["alice-old", Reason.DuplicatePod]],
    );
    assert.equal(plan.apply, undefined);
    assert.equal(plan.status.podName, "alice-worker");
  });

  const blocked: [string, Partial<PeerObservation>, string][] = [
    ["run missing", { run: undefined }, Reason.RunNotFound],
    ["run suspended", { run: makeRun("run").suspend().defaulted() }, Reason.Suspended],
    ["peer suspended", { peer: makePeer("alice").suspend().defaulted() }, Reason.Suspended],
    [
      "run completed",
      { run: { ...run, status: { phase: "Completed" } } as TrainingRun },
      Reason.RunNotActive,
    ],
  ];
  for (const [name, over, reason] of blocked) {
    it(`removes the pod and creates none when ${name}`, () => {
      const plan = planPeer(
        observe({ ...over, pods: [withPodState(pod, { node: "n1", ready: true })] }),
        opts,
      );
      assert.equal(plan.apply, undefined);
      assert.equal(plan.deletions.length, 1);
      assert.equal(plan.deletions[0]?.reason, reason);
      assert.equal(cond(plan, "Ready")?.reason, reason);
      assert.equal(plan.status.podName, undefined);
    });
  }

  it("waits for the run config and the hotkey Secret before creating, without touching a running pod", () => {
    const noConfig = planPeer(observe({ runConfigReady: false }), opts);
    assert.equal(noConfig.apply, undefined);
    assert.equal(cond(noConfig, "Ready")?.reason, Reason.RunConfigPending);
    assert.equal(noConfig.requeueAfterMs, opts.recheckMs);
    const noSecret = planPeer(observe({ hotkeySecretExists: false }), opts);
    assert.equal(noSecret.apply, undefined);
    assert.equal(cond(noSecret, "Scheduled")?.reason, Reason.HotkeySecretMissing);
    const running = planPeer(
      observe({ hotkeySecretExists: false, pods: [withPodState(pod, { node: "n1", ready: true })] }),
      opts,
    );
    assert.equal(running.deletions.length, 0);
  });

  it("records observedGeneration", () => {
    const plan = planPeer(observe({ peer: makePeer("alice").generation(7).defaulted() }), opts);
    assert.equal(plan.status.observedGeneration, 7);
    assert.ok(plan.status.conditions?.every((c) => c.observedGeneration === 7));
  });

  it("an unschedulable pod explains why", () => {
    const pending: V1Pod = withPodState(pod, {});
    pending.status!.conditions![0]!.message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.";
    const plan = planPeer(observe({ pods: [pending] }), opts);
    assert.match(cond(plan, "Scheduled")?.message ?? "", /Insufficient nvidia\.com\/gpu/);
  });
});
