// test-limit: 600 s
// The chart for real: installed with Helm onto the stack's control plane and one real node
// (kubelet, containerd, CNI bridge), the operator runs as two containers of the image `make images`
// built, pinned by its digest, in a namespace enforcing Pod Security "restricted". Both replicas
// become Ready, one holds the Lease, the leader turns a TrainingRun and a CovenantPeer into the
// peer's worker pod, `helm test` passes, `helm upgrade` with a changed value rolls the Deployment,
// and `helm uninstall` removes the operator's objects and keeps the CRDs.
//
// The stack has no kube-proxy and no DNS, as a bare cluster would not. So:
// - the operator reaches the API server at the node's bridge address: the API server listens
//   there too (kube.ts bindAddress) with that address in its certificate (servingIps), and the
//   chart's extraEnv sets KUBERNETES_SERVICE_HOST/PORT to it (values.yaml, extraEnv);
// - `helm test`'s pod asks the operator's Service at its ClusterIP (the <SERVICE>_SERVICE_HOST
//   variable the kubelet gives it); for that one Service this test stands in for kube-proxy: the
//   ClusterIP is put on the node's bridge and a TCP proxy here forwards it to a Ready operator pod.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1Pod,
} from "@kubernetes/client-node";
import { Label, Reason } from "../../api/index.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { builtImage, type ImageRecord } from "../../images/digests.ts";
import { get } from "../stack/http.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { freeSubnet, gatewayOf, startNode, type KubeNode } from "../stack/node.ts";
import { binary, repoRoot, systemBinary } from "../stack/paths.ts";
import { waitFor } from "../stack/wait.ts";

const run = promisify(execFile);
const chart = join(repoRoot, "charts/covenant-operator");
const NS = "covenant-system";
const TRAIN = "train";
const RELEASE = "covenant";
const FULLNAME = "covenant-covenant-operator";
const SELECTOR = `app.kubernetes.io/name=covenant-operator,app.kubernetes.io/instance=${RELEASE}`;
const WAIT = { timeoutMs: 180_000, intervalMs: 500 };

/** A built image and its archive; throws naming `make images` when either is missing. */
function image(name: "covenant-operator" | "covenant-worker-cpu"): ImageRecord & { path: string } {
  const record = builtImage(name);
  const path = join(repoRoot, record.archive);
  if (!existsSync(path)) throw new Error(`${path} is missing: build the images with \`make images\``);
  return { ...record, path };
}

const isReady = (pod: V1Pod) =>
  pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** What a pod is doing, for messages: phase, container states, the scheduler's word. */
function describePod(pod: V1Pod): string {
  const containers = (pod.status?.containerStatuses ?? []).map((c) => {
    const [state, detail] = Object.entries(c.state ?? {})[0] ?? ["unknown", {}];
    const d = detail as { reason?: string; message?: string; exitCode?: number };
    return `${c.name} ${state}${d.reason ? ` ${d.reason}` : ""}${d.exitCode !== undefined ? ` exit ${d.exitCode}` : ""} restarts ${c.restartCount}`;
  });
  const unscheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status !== "True");
  return [
    `${pod.metadata?.name} ${pod.status?.phase ?? "?"} on ${pod.spec?.nodeName ?? "(no node)"}`,
    ...containers,
    ...(unscheduled ? [`unscheduled: ${unscheduled.message}`] : []),
  ].join("; ");
}

/**
 * kube-proxy for one Service, as far as pods on one node see it: the ClusterIP on the node's
 * bridge (pods route to it through the bridge's address), and a TCP proxy on ClusterIP:port that
 * forwards each connection to a Ready endpoint of the Service.
 */
async function serviceProxy(
  node: KubeNode,
  clusterIp: string,
  port: number,
  endpoints: () => Promise<string[]>,
): Promise<{ stop(): Promise<void> }> {
  const ip = (...args: string[]) => run(systemBinary("ip"), args, { timeout: 30_000 });
  await ip("addr", "add", `${clusterIp}/32`, "dev", node.bridge);
  const sockets = new Set<Socket>();
  let next = 0;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    endpoints().then(
      (ips) => {
        if (ips.length === 0) return client.destroy();
        const upstream = createConnection({ host: ips[next++ % ips.length]!, port });
        sockets.add(upstream);
        upstream.on("close", () => sockets.delete(upstream));
        upstream.on("error", () => client.destroy());
        client.pipe(upstream).pipe(client);
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, clusterIp, resolve);
  });
  return {
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ip("addr", "del", `${clusterIp}/32`, "dev", node.bridge).catch(() => {});
    },
  };
}

describe("the chart installed with Helm onto a real node", { timeout: 570_000 }, () => {
  const operatorImage = image("covenant-operator");
  const workerImage = image("covenant-worker-cpu");
  let kube: KubeStack | undefined;
  let node: KubeNode | undefined;
  let proxy: { stop(): Promise<void> } | undefined;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let helmEnv: Record<string, string>;
  const started = Date.now();
  const log = (msg: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);

  const helm = async (args: string[], timeoutMs = 240_000) => {
    try {
      return await run(binary("helm"), args, {
        env: { ...process.env, HELM_CACHE_HOME: join(repoRoot, "build/helm-cache"), ...helmEnv },
        timeout: timeoutMs,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`helm ${args.join(" ")} failed: ${e.stderr || e.message}\n${e.stdout ?? ""}`);
    }
  };
  const operatorPods = async () =>
    (await core.listNamespacedPod({ namespace: NS, labelSelector: SELECTOR })).items.filter(
      (p) => !p.metadata?.deletionTimestamp,
    );
  /** Every operator pod Ready, `count` of them, all of the Deployment's newest ReplicaSet. */
  const rolledOut = (count: number) =>
    waitFor(
      `${count} Ready operator pods of the Deployment's current ReplicaSet`,
      async () => {
        const d = await apps.readNamespacedDeployment({ name: FULLNAME, namespace: NS });
        const s = d.status;
        if ((s?.observedGeneration ?? 0) < (d.metadata?.generation ?? 1)) return undefined;
        if (s?.updatedReplicas !== count || s?.readyReplicas !== count || s?.replicas !== count)
          return undefined;
        const pods = await operatorPods();
        return pods.length === count && pods.every(isReady) ? pods : undefined;
      },
      WAIT,
    ).catch(async (err: Error) => {
      const pods = await operatorPods().catch(() => []);
      throw new Error(`${err.message}\n  ${pods.map(describePod).join("\n  ")}`);
    });
  const leaseHolder = async () =>
    (
      await kube!
        .kubeConfig()
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: "covenant-operator", namespace: NS })
    ).spec?.holderIdentity;
  /** The pod among `pods` that holds the leader Lease, once one does. */
  const leaseHeldByOneOf = (pods: V1Pod[], what: string) => {
    const names = pods.map((p) => p.metadata!.name!);
    return waitFor(
      what,
      async () => {
        const h = await leaseHolder();
        return h && names.includes(h) ? h : undefined;
      },
      WAIT,
    );
  };

  before(async () => {
    // The node's address is the API server's for pods: known first, so the certificate names it.
    const podCidr = await freeSubnet();
    const nodeIp = gatewayOf(podCidr);
    kube = await startKube({
      scheduler: true,
      controllerManager: true,
      bindAddress: "0.0.0.0",
      servingIps: [nodeIp],
      timeoutSec: 180,
    });
    log(`control plane up; API server for pods at https://${nodeIp}:${new URL(kube.server).port}`);
    node = await startNode(kube, {
      name: "node-a",
      podCidr,
      gpus: 2,
      // What a GPU node's feature discovery would label it: worker pods select the product.
      labels: { "nvidia.com/gpu.product": "NVIDIA-B200" },
      images: [operatorImage.path, workerImage.path],
      timeoutSec: 180,
    });
    log(`node up: ${JSON.stringify(node.timings)}`);
    const kc = kube.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    helmEnv = { KUBECONFIG: kube.kubeconfigPath };
    for (const name of [NS, TRAIN]) {
      await core.createNamespace({
        body: { metadata: { name, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
      });
    }
    // Pods wait for their namespace's service account, which the controller manager makes.
    for (const namespace of [NS, TRAIN]) {
      await waitFor(
        `service account default in ${namespace}`,
        () => core.readNamespacedServiceAccount({ name: "default", namespace }).then(() => true),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    }
  });

  after(async () => {
    // Stopped in reverse, each whatever the others did; the first failure is reported.
    const errors: unknown[] = [];
    try {
      await proxy?.stop();
    } catch (e) {
      errors.push(e);
    } finally {
      try {
        await node?.stop();
      } catch (e) {
        errors.push(e);
      } finally {
        try {
          await kube?.stop();
        } catch (e) {
          errors.push(e);
        }
      }
    }
    if (errors.length > 0) throw errors[0];
  });

  test("installs two operator containers from the local image; both Ready, one leads", async () => {
    const apiPort = new URL(kube!.server).port;
    const [repository] = operatorImage.ref.split("@");
    const extraEnv = [
      { name: "KUBERNETES_SERVICE_HOST", value: node!.ip },
      { name: "KUBERNETES_SERVICE_PORT", value: apiPort },
    ];
    const { stdout } = await helm([
      "install",
      RELEASE,
      chart,
      "--namespace",
      NS,
      "--set",
      "replicaCount=2",
      "--set",
      "leaderElection.enabled=true",
      "--set",
      `image.repository=${repository}`,
      "--set",
      `image.digest=${operatorImage.digest}`,
      "--set",
      "image.pullPolicy=Never",
      // No subtensor endpoint is reachable from here.
      "--set",
      "chain.enabled=false",
      "--set-json",
      `extraEnv=${JSON.stringify(extraEnv)}`,
    ]);
    assert.match(stdout, /STATUS: deployed/);
    // NOTES.txt tells a provider what to run next.
    for (const next of [
      /create secret generic \S+-hotkey/,
      /kubectl apply -f examples\/covenantpeer\.yaml/,
      /get cpeers/,
      /Covenant \/ Operator/,
    ])
      assert.match(stdout, next, "NOTES.txt");
    log("helm install done");

    const pods = await rolledOut(2);
    for (const p of pods) {
      assert.equal(p.spec?.nodeName, "node-a");
      assert.equal(p.spec?.containers[0]?.image, operatorImage.ref);
    }
    log(`operator pods Ready: ${pods.map((p) => p.metadata?.name).join(", ")}`);
    const holder = await leaseHeldByOneOf(pods, "the Lease held by one of the operator pods");
    const leader = pods.find((p) => p.metadata?.name === holder)!;
    // The test process reaches pod IPs over the node's bridge.
    const readyz = await get(`http://${leader.status!.podIP!}:8080/readyz`);
    assert.equal(readyz.status, 200, `leader ${holder} /readyz: ${readyz.body}`);
    log(`leader ${holder}: /readyz ${readyz.status}`);
  });

  test("the leader turns a TrainingRun and a CovenantPeer into the peer's worker pod", async () => {
    const crs = kube!.kubeConfig().makeApiClient(CustomObjectsApi);
    const create = async (ref: typeof TRAINING_RUNS, obj: { metadata?: { uid?: string } }) => {
      delete obj.metadata?.uid;
      await crs.createNamespacedCustomObject({
        group: ref.group,
        version: ref.version,
        namespace: TRAIN,
        plural: ref.plural,
        body: obj,
      });
    };
    await core.createNamespacedSecret({
      namespace: TRAIN,
      body: { metadata: { name: "peer-a-hotkey" }, stringData: { hotkey: "//Alice" } },
    });
    await create(TRAINING_RUNS, makeRun("run", TRAIN).image(workerImage.ref).obj());
    await create(COVENANT_PEERS, makePeer("peer-a", "run", TRAIN).gpus(1).obj());
    const peer = (await crs.getNamespacedCustomObject({
      group: COVENANT_PEERS.group,
      version: COVENANT_PEERS.version,
      namespace: TRAIN,
      plural: COVENANT_PEERS.plural,
      name: "peer-a",
    })) as { metadata: { uid: string } };

    const pod = await waitFor(
      "the worker pod of peer-a",
      async () =>
        (await core.listNamespacedPod({ namespace: TRAIN, labelSelector: `${Label.Peer}=peer-a` })).items[0],
      WAIT,
    );
    const owner = pod.metadata?.ownerReferences?.[0];
    assert.equal(owner?.kind, "CovenantPeer");
    assert.equal(owner?.name, "peer-a");
    assert.equal(owner?.uid, peer.metadata.uid);
    assert.equal(owner?.controller, true);
    assert.equal(pod.metadata?.labels?.[Label.ManagedBy], "covenant-operator");
    assert.equal(pod.spec?.containers[0]?.image, workerImage.ref);
    log(`worker pod ${pod.metadata?.name} created by the operator`);

    // Restricted admission let it in; the scheduler puts it on the node with its GPU, and the
    // worker starts. It has no bus or chain to reach here: the test only reports how it fares.
    const placed = await waitFor(
      "the worker pod scheduled and its container started or waiting",
      async () => {
        const p = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: TRAIN });
        return p.spec?.nodeName && (p.status?.containerStatuses?.length ?? 0) > 0 ? p : undefined;
      },
      WAIT,
    );
    assert.equal(placed.spec?.nodeName, "node-a");
    await new Promise((r) => setTimeout(r, 10_000));
    const later = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: TRAIN });
    log(`worker pod after 10 s: ${describePod(later)}`);
  });

  test("a worker image the node does not have: the peer's Ready condition names it and the kubelet's reason", async () => {
    const crs = kube!.kubeConfig().makeApiClient(CustomObjectsApi);
    const bad = `${workerImage.ref.split("@")[0]}@sha256:${"0".repeat(64)}`;
    await core.createNamespacedSecret({
      namespace: TRAIN,
      body: { metadata: { name: "peer-b-hotkey" }, stringData: { hotkey: "//Bob" } },
    });
    for (const [ref, obj] of [
      [TRAINING_RUNS, makeRun("bad-image", TRAIN).image(bad).obj()],
      [COVENANT_PEERS, makePeer("peer-b", "bad-image", TRAIN).gpus(1).obj()],
    ] as const) {
      delete (obj as { metadata?: { uid?: string } }).metadata?.uid;
      await crs.createNamespacedCustomObject({
        group: ref.group,
        version: ref.version,
        namespace: TRAIN,
        plural: ref.plural,
        body: obj,
      });
    }
    type Cond = { type: string; status: string; reason: string; message: string };
    const ready = await waitFor(
      "peer-b's Ready condition naming the image problem",
      async () => {
        const p = (await crs.getNamespacedCustomObject({
          group: COVENANT_PEERS.group,
          version: COVENANT_PEERS.version,
          namespace: TRAIN,
          plural: COVENANT_PEERS.plural,
          name: "peer-b",
        })) as { status?: { conditions?: Cond[] } };
        const c = p.status?.conditions?.find((x) => x.type === "Ready");
        return c?.reason === Reason.ImageNotAvailable ? c : undefined;
      },
      WAIT,
    );
    assert.equal(ready.status, "False");
    assert.ok(ready.message.includes(bad), ready.message);
    // The kubelet's reason: ErrImagePull or ImagePullBackOff (no registry is reachable), or
    // ErrImageNeverPull for a pod that may not pull.
    assert.match(ready.message, /is waiting: (ErrImagePull|ImagePullBackOff|ErrImageNeverPull) /);
    log(`peer-b Ready=False ${ready.reason}: ${ready.message}`);
  });

  test("`helm test` passes: the operator's /readyz through its Service", async () => {
    const svc = await core.readNamespacedService({ name: `${FULLNAME}-metrics`, namespace: NS });
    const endpoints = async () => (await operatorPods()).filter(isReady).map((p) => p.status!.podIP!);
    proxy = await serviceProxy(node!, svc.spec!.clusterIP!, 8080, endpoints);
    // The pod exits 0 only on a 200 from /readyz; once it passed, the hook's delete policy removes
    // it (so no --logs: there is nothing left to read).
    const { stdout } = await helm(["test", RELEASE, "--namespace", NS, "--timeout", "2m"], 180_000);
    assert.match(stdout, /TEST SUITE:\s+\S+-test-readyz/, stdout);
    assert.match(stdout, /Phase:\s+Succeeded/, stdout);
    log("helm test passed");
    // hook-succeeded: the test pod is gone.
    await waitFor(
      "the test pod deleted",
      async () =>
        !(await core.listNamespacedPod({ namespace: NS })).items.some((p) =>
          p.metadata?.name?.endsWith("-test-readyz"),
        ),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });

  test("`helm upgrade` with a changed value rolls the Deployment out", async () => {
    const replicaSets = async () =>
      (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: SELECTOR })).items;
    const before = await replicaSets();
    assert.equal(before.length, 1);
    const oldHash = before[0]!.metadata?.labels?.["pod-template-hash"];
    await helm([
      "upgrade",
      RELEASE,
      chart,
      "--namespace",
      NS,
      "--reuse-values",
      "--set",
      "logging.level=debug",
    ]);
    const pods = await rolledOut(2);
    for (const p of pods) {
      assert.notEqual(p.metadata?.labels?.["pod-template-hash"], oldHash);
      assert.ok(p.spec?.containers[0]?.args?.includes("--log-level=debug"));
    }
    const after = await replicaSets();
    assert.equal(after.length, 2, "the old ReplicaSet and a new one");
    const old = after.find((rs) => rs.metadata?.labels?.["pod-template-hash"] === oldHash);
    assert.equal(old?.spec?.replicas, 0, "the old ReplicaSet scaled to 0");
    const holder = await leaseHeldByOneOf(pods, "the Lease held by a new operator pod");
    log(`rolled out; leader now ${holder}`);
  });

  test("`helm uninstall` removes the operator's objects and keeps the CRDs", async () => {
    await helm(["uninstall", RELEASE, "--namespace", NS, "--wait", "--timeout", "2m"], 180_000);
    const rbac = kube!.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const gone = async (what: string, read: () => Promise<unknown>) => {
      await assert.rejects(read(), (e: { code?: number }) => e.code === 404, `${what} still exists`);
    };
    await gone("Deployment", () => apps.readNamespacedDeployment({ name: FULLNAME, namespace: NS }));
    await gone("Service", () => core.readNamespacedService({ name: `${FULLNAME}-metrics`, namespace: NS }));
    await gone("ServiceAccount", () => core.readNamespacedServiceAccount({ name: FULLNAME, namespace: NS }));
    await gone("ClusterRole", () => rbac.readClusterRole({ name: FULLNAME }));
    await gone("ClusterRoleBinding", () => rbac.readClusterRoleBinding({ name: FULLNAME }));
    await gone("Role", () => rbac.readNamespacedRole({ name: `${FULLNAME}-leader-election`, namespace: NS }));
    await gone("RoleBinding", () =>
      rbac.readNamespacedRoleBinding({ name: `${FULLNAME}-leader-election`, namespace: NS }),
    );
    await waitFor("the operator pods gone", async () => (await operatorPods()).length === 0, WAIT);
    const ext = kube!.kubeConfig().makeApiClient(ApiextensionsV1Api);
    const crds = (await ext.listCustomResourceDefinition()).items.map((c) => c.metadata?.name).sort();
    assert.deepEqual(crds, ["covenantpeers.covenant.io", "trainingruns.covenant.io"]);
    log("uninstalled; CRDs kept");
  });
});
