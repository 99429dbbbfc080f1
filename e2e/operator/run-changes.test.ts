// Changes of a live TrainingRun against a real API server and scheduler, the operator running
// as its own process: a change of round-level fields becomes a config epoch in the run config
// (no pod is replaced); a new worker image replaces the pods one peer at a time
// (spec.rollout.maxUnavailable 1), never all at once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { KubernetesObject, V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import { Label, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { CORE, KubeClient } from "../../operator/kube/index.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { waitFor } from "../stack/wait.ts";
import { installCrds, mintOperatorUser } from "./cluster.ts";
import { FakeKubelet } from "./fake-kubelet.ts";
import { startOperator, type OperatorProcess } from "./operator-process.ts";

const NS = "changes";
const PEERS = ["p1", "p2", "p3", "p4"];
const WAIT = { timeoutMs: 90_000, intervalMs: 200 };
const IMAGE = "registry.example/covenant/worker@sha256:" + "b".repeat(64);

describe("changes of a live TrainingRun", () => {
  let kube: KubeStack;
  let admin: KubeClient;
  let kubelet: FakeKubelet;
  let operator: OperatorProcess | undefined;

  const livePods = async (): Promise<V1Pod[]> =>
    (
      await admin.list<V1Pod>(CORE.pods, {
        namespace: NS,
        labelSelector: `${Label.ManagedBy}=covenant-operator`,
      })
    ).items.filter((p) => !p.metadata?.deletionTimestamp);
  const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
  const getRun = () => admin.get<TrainingRun & KubernetesObject>(TRAINING_RUNS, NS, "run");
  const patchRun = (spec: Record<string, unknown>) =>
    admin.patch(TRAINING_RUNS, NS, "run", { spec }, "merge");

  before(async () => {
    kube = await startKube({ scheduler: true });
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    for (const name of ["covenant-system", NS])
      await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    const identity = await mintOperatorUser(kube, "covenant-system");
    kubelet = new FakeKubelet(kube.kubeConfig());
    for (const n of PEERS) await kubelet.addNode(`gpu-${n}`);
    kubelet.start();
    operator = await startOperator({
      kubeconfigPath: identity.kubeconfigPath,
      dir: kube.dir,
      identity: "op",
    });
    const run = makeRun("run", NS).obj() as unknown as KubernetesObject;
    delete run.metadata!.uid;
    await admin.create(TRAINING_RUNS, run);
    for (const name of PEERS) {
      await admin.create(CORE.secrets, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${name}-hotkey`, namespace: NS },
        stringData: { hotkey: `//${name}` },
      } as KubernetesObject);
      const o = makePeer(name, "run", NS).obj() as unknown as KubernetesObject;
      delete o.metadata!.uid;
      await admin.create(COVENANT_PEERS, o);
    }
    await waitFor(
      "every peer's pod Ready",
      async () => (await livePods()).filter(isReady).length === PEERS.length,
      WAIT,
    );
  });

  after(async () => {
    await kubelet?.stop();
    await operator?.process.stop();
    await kube?.stop();
  });

  test("a change of round-level fields is a new config epoch in the run config; no pod is replaced", async () => {
    const before = new Set((await livePods()).map((p) => p.metadata?.uid));
    const first = await waitFor("config epoch 1", async () => (await getRun()).status?.configEpoch, WAIT);
    assert.deepEqual([first.epoch, first.fromRound], [1, 0]);
    await patchRun({ innerSteps: 45, outer: { learningRate: 0.5 } });
    const second = await waitFor(
      "config epoch 2",
      async () => {
        const e = (await getRun()).status?.configEpoch;
        return e?.epoch === 2 ? e : undefined;
      },
      WAIT,
    );
    assert.equal(second.fromRound, 2, "two rounds after the round the run is at (0)");
    const cm = await admin.get<V1ConfigMap & KubernetesObject>(CORE.configMaps, NS, "run-run-config");
    const cfg = JSON.parse(cm.data!["run.json"]!) as {
      epochs: { epoch: number; fromRound: number; digest: string; config: { innerSteps: number } }[];
    };
    assert.deepEqual(
      cfg.epochs.map((e) => [e.epoch, e.fromRound, e.config.innerSteps]),
      [
        [1, 0, 30],
        [2, 2, 45],
      ],
    );
    assert.equal(cfg.epochs[1]!.digest, second.digest);
    await new Promise((r) => setTimeout(r, 3000));
    const after = await livePods();
    assert.deepEqual(new Set(after.map((p) => p.metadata?.uid)), before, "the same pods, none replaced");
    assert.ok(after.every(isReady));
  });

  test("a new worker image replaces the pods one peer at a time", async () => {
    const old = new Set((await livePods()).map((p) => p.metadata?.uid));
    await patchRun({ worker: { image: IMAGE } });
    let mostDown = 0;
    let waitedInRollout = false;
    await waitFor(
      "every pod replaced with the new image and Ready",
      async () => {
        const pods = await livePods();
        const up = new Set(pods.filter(isReady).map((p) => p.metadata?.labels?.[Label.Peer]));
        mostDown = Math.max(mostDown, PEERS.filter((p) => !up.has(p)).length);
        if (!waitedInRollout) {
          const peers = await admin.list<CovenantPeer & KubernetesObject>(COVENANT_PEERS, { namespace: NS });
          waitedInRollout = peers.items.some((p) =>
            p.status?.conditions?.some((c) => c.type === "UpToDate" && c.reason === "RolloutWaiting"),
          );
        }
        return (
          pods.length === PEERS.length &&
          pods.every((p) => isReady(p) && p.spec?.containers[0]?.image === IMAGE && !old.has(p.metadata?.uid))
        );
      },
      { timeoutMs: 120_000, intervalMs: 50 },
    );
    assert.ok(mostDown <= 1, `${mostDown} peers were without a Ready pod at once`);
    assert.ok(waitedInRollout, "peers waited for their turn (UpToDate=False, RolloutWaiting)");
  });
});
