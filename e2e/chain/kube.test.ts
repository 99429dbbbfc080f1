/**
 * The chain bridge with its Kubernetes sink against a real API server (CRDs from crds/, the
 * operator's least-privilege identity) and the local chain: CovenantPeer Registered with its
 * uid, replacement to Registered=False with a PeerDeregistered Event, and the TrainingRun
 * ChainSynced condition through a chain outage and back.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Condition, CovenantPeer } from "../../api/index.ts";
import { ChainBridge } from "../../operator/chain/bridge.ts";
import { KubeChainSink } from "../../operator/chain/kube.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { AggregatingEventRecorder } from "../../operator/kube/index.ts";
import { KubeClient } from "../../operator/kube/client.ts";
import { CORE } from "../../operator/kube/keys.ts";
import { installCrds, mintOperatorUser } from "../operator/cluster.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { waitFor } from "../stack/wait.ts";
import { devKeyring } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";

const NS = "chain-test";
const NETUID = 3;

interface CoreEvent extends KubernetesObject {
  reason: string;
  type: string;
  message: string;
  involvedObject: { name?: string; kind?: string };
}

function withoutServerFields<T extends KubernetesObject>(o: T): T {
  delete o.metadata!.uid;
  delete o.metadata!.generation;
  return o;
}

describe("chain bridge on a real API server", () => {
  let kube: KubeStack;
  let lc: LocalChain;
  let admin: KubeClient;
  let bridge: ChainBridge;
  let recorder: AggregatingEventRecorder;
  let control: RawRpc;

  const cond = (list: Condition[] | undefined, type: string) => list?.find((c) => c.type === type);
  const peer = (name: string) => admin.get<CovenantPeer>(COVENANT_PEERS, NS, name);
  const run = () =>
    admin.get<KubernetesObject & { status?: { conditions?: Condition[] } }>(TRAINING_RUNS, NS, "run");
  const events = async (name: string) =>
    (await admin.list<CoreEvent>(CORE.events, { namespace: NS })).items.filter(
      (e) => e.involvedObject.name === name,
    );

  before(async () => {
    lc = await startLocalChain({ netuid: NETUID, neurons: 8, validators: 2, blockTimeMs: 200 });
    control = await RawRpc.connect(lc.url);
    kube = await startKube();
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    await admin.create(CORE.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "covenant-system" },
    });
    const identity = await mintOperatorUser(kube, "covenant-system");

    const runObj = makeRun("run", NS)
      .set("spec.chain.endpoint", lc.url)
      .set("spec.chain.netuid", NETUID)
      .obj();
    await admin.create(TRAINING_RUNS, withoutServerFields(runObj));
    for (const [name, secret] of [
      ["peer-a", "//covenant/2/hot"],
      ["peer-b", "//covenant/unregistered/hot"],
    ] as const) {
      await admin.create(CORE.secrets, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${name}-hotkey`, namespace: NS },
        data: { hotkey: Buffer.from(secret).toString("base64") },
      } as KubernetesObject);
      await admin.create(COVENANT_PEERS, withoutServerFields(makePeer(name, "run", NS).obj()));
    }

    const client = KubeClient.fromKubeConfig(identity.kubeConfig());
    recorder = new AggregatingEventRecorder(client, { component: "covenant-chain-bridge" });
    const errors: unknown[] = [];
    bridge = new ChainBridge({
      run: `${NS}/run`,
      endpoint: runObj.spec.chain.endpoint,
      netuid: runObj.spec.chain.netuid,
      sink: new KubeChainSink({ client, recorder, namespace: NS, run: "run" }),
      backoff: { baseMs: 200, maxMs: 1_000 },
      tickMs: 250,
      onError: (e) => errors.push(e),
    });
    bridge.start();
  });

  after(async () => {
    control?.close();
    await bridge?.stop();
    await recorder?.flush();
    await lc?.stop();
    await kube?.stop();
  });

  it("writes uid, stake and Registered=True for a registered hotkey and NotRegistered otherwise", async () => {
    await waitFor(
      "peer-a Registered",
      async () => cond((await peer("peer-a")).status?.conditions, "Registered")?.status === "True",
    );
    const a = await peer("peer-a");
    assert.equal(a.status?.uid, 2);
    assert.equal(a.status?.hotkey, devKeyring().addFromUri("//covenant/2/hot").address);
    assert.equal(a.status?.stake, String(1002n * 1_000_000_000n));
    await waitFor(
      "peer-b status",
      async () => cond((await peer("peer-b")).status?.conditions, "Registered") !== undefined,
    );
    const b = cond((await peer("peer-b")).status?.conditions, "Registered")!;
    assert.deepEqual([b.status, b.reason], ["False", "NotRegistered"]);
    await waitFor(
      "ChainSynced True",
      async () => cond((await run()).status?.conditions, "ChainSynced")?.status === "True",
    );
    await recorder.flush();
    assert.ok((await events("peer-a")).some((e) => e.reason === "PeerRegistered" && e.type === "Normal"));
  });

  it("turns a replaced uid into Registered=False with a PeerDeregistered Event", async () => {
    const other = devKeyring().addFromUri("//covenant/takeover/hot");
    await control.result("covenantTest_replaceNeuron", [NETUID, 2, other.address, other.address]);
    await waitFor(
      "peer-a deregistered",
      async () => cond((await peer("peer-a")).status?.conditions, "Registered")?.status === "False",
    );
    const a = await peer("peer-a");
    const r = cond(a.status?.conditions, "Registered")!;
    assert.equal(r.reason, "Deregistered");
    assert.equal(a.status?.uid, undefined, "the uid field is released");
    await recorder.flush();
    await waitFor("PeerDeregistered event", async () =>
      (await events("peer-a")).some((e) => e.reason === "PeerDeregistered" && e.type === "Warning"),
    );
  });

  it("sets ChainSynced=False while the chain is down and True again after it returns", async () => {
    await lc.pause();
    await waitFor("ChainSynced False", async () => {
      const c = cond((await run()).status?.conditions, "ChainSynced");
      return c?.status === "False" && c.reason === "ChainUnreachable";
    });
    await recorder.flush();
    await waitFor("ChainUnreachable event", async () =>
      (await events("run")).some((e) => e.reason === "ChainUnreachable"),
    );
    await lc.restart();
    await waitFor(
      "ChainSynced True again",
      async () => cond((await run()).status?.conditions, "ChainSynced")?.status === "True",
    );
    const c = cond((await run()).status?.conditions, "ChainSynced")!;
    assert.match(c.message ?? "", /following ws:\/\/127\.0\.0\.1:\d+ at block #\d+/);
  });
});
