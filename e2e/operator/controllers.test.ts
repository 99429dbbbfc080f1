// The operator against a real API server and scheduler, running as its own process under
// the least-privilege identity generated in config/rbac/: worker pods appear, come back,
// move off lost nodes, follow suspend, leave with their peer, survive operator crashes
// without duplicates, and a standby replica takes over leadership.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KubernetesObject, V1Lease, V1Pod } from "@kubernetes/client-node";
import { Label, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { CORE, KubeClient } from "../../operator/kube/index.ts";
import { startKube, type KubeStack, type UserCredentials } from "../stack/kube.ts";
import { get } from "../stack/http.ts";
import { waitFor } from "../stack/wait.ts";
import { installCrds, mintOperatorUser } from "./cluster.ts";
import { FakeKubelet } from "./fake-kubelet.ts";
import { startOperator, type OperatorProcess } from "./operator-process.ts";

const NS = "train";
const WAIT = { timeoutMs: 60_000, intervalMs: 200 };

describe("covenant-operator against a real control plane", () => {
  let kube: KubeStack;
  let admin: KubeClient;
  let kubelet: FakeKubelet;
  let identity: UserCredentials;
  let operator: OperatorProcess | undefined;
  const extra: OperatorProcess[] = [];

  const workerPods = async (peer?: string): Promise<V1Pod[]> => {
    const sel = peer ? `${Label.Peer}=${peer}` : `${Label.ManagedBy}=covenant-operator`;
    return (await admin.list<V1Pod>(CORE.pods, { namespace: NS, labelSelector: sel })).items;
  };
  const livePods = async (peer?: string) =>
    (await workerPods(peer)).filter((p) => !p.metadata?.deletionTimestamp);
  const getPeer = (name: string) => admin.get<CovenantPeer & KubernetesObject>(COVENANT_PEERS, NS, name);
  const getRun = (name: string) => admin.get<TrainingRun & KubernetesObject>(TRAINING_RUNS, NS, name);
  const readyPod = (peer: string) =>
    waitFor(
      `a Ready worker pod of ${peer}`,
      async () => {
        const pods = await livePods(peer);
        const ready = pods.filter((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return pods.length === 1 && ready.length === 1 ? ready[0] : undefined;
      },
      WAIT,
    );
  const createPeer = async (name: string, run: string, gpus?: number) => {
    await admin.create(CORE.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${name}-hotkey`, namespace: NS },
      stringData: { hotkey: "//Alice" },
    } as KubernetesObject);
    const b = makePeer(name, run, NS);
    if (gpus) b.gpus(gpus);
    const o = b.obj() as unknown as KubernetesObject;
    delete o.metadata!.uid;
    await admin.create(COVENANT_PEERS, o);
  };
  const createRun = async (name: string) => {
    const o = makeRun(name, NS).obj() as unknown as KubernetesObject;
    delete o.metadata!.uid;
    await admin.create(TRAINING_RUNS, o);
  };
  const start = async (id: string, waitReady = true) =>
    startOperator({
      kubeconfigPath: identity.kubeconfigPath,
      dir: kube.dir,
      identity: id,
      // Default leader-election timings (15 s / 10 s / 2 s): the fail-over bound is tested as shipped.
      args: ["--node-not-ready-grace=2s"],
      waitReady,
    });

  before(async () => {
    kube = await startKube({ scheduler: true });
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    await admin.create(CORE.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "covenant-system" },
    });
    // Pod Security "restricted" is enforced where the workers run.
    await admin.create(CORE.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
    });
    identity = await mintOperatorUser(kube, "covenant-system");
    kubelet = new FakeKubelet(kube.kubeConfig());
    for (const n of ["gpu-a", "gpu-b", "gpu-c"]) await kubelet.addNode(n);
    await kubelet.addNode("h100-node", { product: "NVIDIA-H100" });
    kubelet.start();
    operator = await start("op-1");
  });

  after(async () => {
    await kubelet?.stop();
    for (const p of [operator, ...extra]) await p?.process.stop();
    await kube?.stop();
  });

  test("the operator's identity has no more rights than its roles", async () => {
    const user = KubeClient.fromKubeConfig(identity.kubeConfig());
    await assert.rejects(user.list(CORE.secrets, { namespace: NS }), /403|forbidden/i);
    await assert.rejects(
      user.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "x" } }),
      /403|forbidden/i,
    );
  });

  test("a run and a peer give one worker pod with the expected spec, on a B200 node", async () => {
    await createRun("run");
    await createPeer("alice", "run");
    const pod = await readyPod("alice");
    assert.equal(pod.metadata?.name, "alice-worker");
    assert.notEqual(pod.spec?.nodeName, "h100-node");
    const c = pod.spec!.containers[0]!;
    assert.equal(c.resources?.requests?.["nvidia.com/gpu"], "8");
    assert.equal(pod.spec?.nodeSelector?.["nvidia.com/gpu.product"], "NVIDIA-B200");
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(pod.spec?.volumes?.find((v) => v.name === "shm")?.emptyDir?.medium, "Memory");
    assert.equal(pod.metadata?.ownerReferences?.[0]?.kind, "CovenantPeer");
    const cm = await admin.get(CORE.configMaps, NS, "run-run-config");
    assert.ok(
      (cm as unknown as { data: Record<string, string> }).data["run.json"]?.includes(
        '"preset": "llama3-tiny"',
      ),
    );

    const peer = await waitFor(
      "peer status Ready",
      async () => {
        const p = await getPeer("alice");
        const ready = p.status?.conditions?.find((x) => x.type === "Ready");
        return ready?.status === "True" && p.status?.nodeName === pod.spec?.nodeName ? p : undefined;
      },
      WAIT,
    );
    assert.equal(peer.status?.observedGeneration, peer.metadata.generation);
    const run = await waitFor(
      "run Warmup with one ready peer",
      async () => {
        const r = await getRun("run");
        return r.status?.phase === "Warmup" && r.status.readyPeers === 1 ? r : undefined;
      },
      WAIT,
    );
    assert.equal(run.status?.peers, 1);
    assert.equal(run.status?.conditions?.find((x) => x.type === "Ready")?.status, "True");
    const events = await admin.list(CORE.events, { namespace: NS });
    assert.ok(events.items.some((e) => (e as unknown as { reason: string }).reason === "PodCreated"));
  });

  test("a deleted pod comes back", async () => {
    const before = await readyPod("alice");
    await admin.delete(CORE.pods, NS, "alice-worker");
    const back = await waitFor(
      "a new pod",
      async () => {
        const p = await readyPod("alice");
        return p.metadata?.uid !== before.metadata?.uid ? p : undefined;
      },
      WAIT,
    );
    assert.equal(back.metadata?.name, "alice-worker");
  });

  test("a node that goes NotReady loses its pod to another node", async () => {
    const before = await readyPod("alice");
    const lost = before.spec!.nodeName!;
    await kubelet.failNode(lost);
    const moved = await waitFor(
      "pod on another node",
      async () => {
        const p = await readyPod("alice");
        return p.spec?.nodeName !== lost ? p : undefined;
      },
      WAIT,
    );
    assert.notEqual(moved.spec?.nodeName, "h100-node");
    const peer = await waitFor(
      "replacement counted",
      async () => {
        const p = await getPeer("alice");
        return (p.status?.podReplacements ?? 0) >= 1 && p.status?.nodeName === moved.spec?.nodeName
          ? p
          : undefined;
      },
      WAIT,
    );
    assert.ok(peer);
  });

  test("a deleted node loses its pod to another node", async () => {
    const before = await readyPod("alice");
    const gone = before.spec!.nodeName!;
    await kubelet.removeNode(gone);
    const moved = await waitFor(
      "pod on another node",
      async () => {
        const p = await readyPod("alice");
        return p.spec?.nodeName !== gone ? p : undefined;
      },
      WAIT,
    );
    assert.ok(moved);
    // Give the capacity back for the tests that follow.
    await kubelet.addNode("gpu-d");
    await kubelet.addNode("gpu-e");
  });

  test("suspending the run removes the pods and keeps the state; resuming brings them back", async () => {
    await admin.patch(TRAINING_RUNS, NS, "run", { spec: { suspend: true } }, "merge");
    await waitFor("no worker pods", async () => (await workerPods("alice")).length === 0, WAIT);
    const suspended = await waitFor(
      "run Suspended",
      async () => {
        const r = await getRun("run");
        return r.status?.conditions?.some((c) => c.type === "Suspended" && c.status === "True")
          ? r
          : undefined;
      },
      WAIT,
    );
    assert.equal(suspended.status?.phase, "Warmup", "the phase is kept");
    assert.equal(
      (await getPeer("alice")).status?.conditions?.find((c) => c.type === "Ready")?.reason,
      "Suspended",
    );
    await admin.patch(TRAINING_RUNS, NS, "run", { spec: { suspend: false } }, "merge");
    await readyPod("alice");
  });

  test("deleting the peer deletes its pod", async () => {
    await admin.delete(COVENANT_PEERS, NS, "alice");
    await waitFor("pod gone", async () => (await workerPods("alice")).length === 0, WAIT);
  });

  test("killing the operator mid-reconcile and restarting converges without duplicate pods", async (t) => {
    const names = ["p1", "p2", "p3", "p4", "p5", "p6"];
    for (let round = 0; round < 3; round++) {
      const batch = names.map((n) => `${n}-${round}`);
      const creating = Promise.all(batch.map((n) => createPeer(n, "run", 1)));
      // Kill at a different point of the work each round.
      await new Promise((r) => setTimeout(r, 150 + round * 350));
      await operator!.process.kill();
      await creating;
      const podsAtKill = (await workerPods()).filter((p) =>
        batch.includes(p.metadata!.labels![Label.Peer]!),
      ).length;
      t.diagnostic(`round ${round}: killed with ${podsAtKill} of ${batch.length} new pods created`);
      operator = await start(`op-restart-${round}`);
      for (const n of batch) await readyPod(n);
    }
    // Every peer has exactly one pod, and no stray pods exist.
    const all = await livePods();
    const byPeer = new Map<string, number>();
    for (const p of all)
      byPeer.set(p.metadata!.labels![Label.Peer]!, (byPeer.get(p.metadata!.labels![Label.Peer]!) ?? 0) + 1);
    assert.equal(all.length, 18);
    assert.ok(
      [...byPeer.values()].every((n) => n === 1),
      JSON.stringify([...byPeer]),
    );
    const run = await waitFor(
      "run counts 18 ready peers",
      async () => {
        const r = await getRun("run");
        return r.status?.readyPeers === 18 ? r : undefined;
      },
      WAIT,
    );
    assert.equal(run.status?.peers, 18);
  });

  test("with two replicas exactly one leads, and a standby takes over within 20 s of a kill", async (t) => {
    const standby = await start("op-standby", false);
    extra.push(standby);
    const leaseHolder = async () =>
      (await admin.get<V1Lease & KubernetesObject>(CORE.leases, "covenant-system", "covenant-operator")).spec
        ?.holderIdentity;
    await waitFor(
      "the first operator holds the lease",
      async () => (await leaseHolder()) === operator!.identity,
      WAIT,
    );
    const ready = async (p: OperatorProcess) => (await get(`${p.url}/readyz`)).status === 200;
    const leading = async (p: OperatorProcess) =>
      /covenant_leader_election_is_leader\{[^}]*\} 1/.test((await get(`${p.url}/metrics`)).body);
    assert.equal(await leading(operator!), true);
    assert.equal(await leading(standby), false);
    assert.equal(await ready(standby), true, "a synced standby is ready");
    const killedAt = Date.now();
    await operator!.process.kill();
    await waitFor(
      "standby leads",
      async () => (await leaseHolder()) === standby.identity && (await leading(standby)),
      {
        timeoutMs: 20_000,
        intervalMs: 100,
      },
    );
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 20_000, `took ${tookMs} ms`);
    t.diagnostic(`standby took over ${tookMs} ms after the leader was killed`);
    // The new leader reconciles: a new peer gets its pod.
    await createPeer("after-failover", "run", 1);
    await readyPod("after-failover");
  });
});
