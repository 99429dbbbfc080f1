// The node agent stands in for kubelets: GPU nodes the scheduler places pods on,
// containers run as local processes with their volumes and environment, and their
// state reported back to the API server.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { get } from "../stack/http.ts";
import { isAlive } from "../stack/proc.ts";
import { nodeTs, repoRoot } from "../stack/paths.ts";
import { waitFor } from "../stack/wait.ts";
import { B200_LABELS, NodeAgent } from "./agent.ts";

const gpuPod = (name: string): V1Pod => ({
  metadata: { name, namespace: "default" },
  spec: {
    restartPolicy: "Never",
    nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-B200" },
    containers: [
      {
        name: "main",
        image: "example.invalid/probe@sha256:" + "0".repeat(64),
        command: ["probe-server"],
        args: ["--config=/etc/probe/config.yaml"],
        env: [
          { name: "LISTEN_ADDR", value: "0.0.0.0:9400" },
          { name: "CONFIG_FILE", value: "/etc/probe/config.yaml" },
          { name: "SECRET_FILE", value: "/etc/secret/key" },
          { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        ],
        ports: [{ name: "metrics", containerPort: 9400 }],
        readinessProbe: { httpGet: { path: "/readyz", port: "metrics" } },
        resources: { requests: { "nvidia.com/gpu": "8" }, limits: { "nvidia.com/gpu": "8" } },
        volumeMounts: [
          { name: "config", mountPath: "/etc/probe", readOnly: true },
          { name: "secret", mountPath: "/etc/secret", readOnly: true },
        ],
      },
    ],
    volumes: [
      { name: "config", configMap: { name: "probe-config" } },
      { name: "secret", secret: { secretName: "probe-secret" } },
    ],
  },
});

describe("node agent", { timeout: 240_000 }, () => {
  let kube: KubeStack;
  let agent: NodeAgent;
  let core: CoreV1Api;
  before(async () => {
    kube = await startKube({ scheduler: true });
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    agent = new NodeAgent({
      kubeConfig: kube.kubeConfig(),
      nodes: [
        { name: "gpu-0", labels: B200_LABELS },
        { name: "gpu-1", labels: B200_LABELS },
      ],
      commands: {
        "probe-server": nodeTs(join(repoRoot, "e2e/node-agent/testdata/probe-server.ts")),
      },
      heartbeatMs: 2_000,
    });
    await agent.start();
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "probe-config" }, data: { "config.yaml": "rounds: 3\n" } },
    });
    await core.createNamespacedSecret({
      namespace: "default",
      body: {
        metadata: { name: "probe-secret" },
        data: { key: Buffer.from("0123456789").toString("base64") },
      },
    });
  });
  after(async () => {
    await agent?.stop();
    await kube?.stop();
  });

  test("registers Ready GPU nodes with 8 GPUs each", async () => {
    const nodes = await core.listNode();
    assert.deepEqual(nodes.items.map((n) => n.metadata?.name).sort(), ["gpu-0", "gpu-1"]);
    for (const n of nodes.items) {
      assert.equal(n.status?.allocatable?.["nvidia.com/gpu"], "8");
      assert.equal(n.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
    }
  });

  test("runs scheduled pods as processes with their volumes and environment; GPUs limit placement", async () => {
    for (const name of ["a", "b", "c"])
      await core.createNamespacedPod({ namespace: "default", body: gpuPod(name) });
    const ready = await waitFor(
      "two pods Ready",
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: "default" })).items;
        const r = pods.filter((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return r.length === 2 ? r : undefined;
      },
      { timeoutMs: 60_000 },
    );
    // One pod per node: each takes all 8 GPUs.
    assert.deepEqual(ready.map((p) => p.spec?.nodeName).sort(), ["gpu-0", "gpu-1"]);
    const pending = (await core.listNamespacedPod({ namespace: "default" })).items.find(
      (p) => !ready.some((r) => r.metadata?.name === p.metadata?.name),
    );
    assert.equal(pending?.status?.phase, "Pending");
    const unschedulable = pending?.status?.conditions?.find((c) => c.type === "PodScheduled");
    assert.match(unschedulable?.message ?? "", /nvidia\.com\/gpu/);

    const pod = ready[0]!;
    const port = agent.podPort("default", pod.metadata!.name!);
    assert.ok(port);
    const info = JSON.parse((await get(`http://127.0.0.1:${port}/info`)).body) as Record<string, unknown>;
    assert.equal(info.config, "rounds: 3\n");
    assert.equal(info.secretBytes, 10);
    assert.equal(info.node, pod.spec?.nodeName);
    assert.match(String((info.args as string[])[0]), /^--config=\/.+\/volumes\/config\/config\.yaml$/);
  });

  test("deleting a pod ends its process and removes it", async () => {
    const pid = agent.podPid("default", "a") ?? agent.podPid("default", "b");
    const name = agent.podPid("default", "a") ? "a" : "b";
    assert.ok(pid);
    await core.deleteNamespacedPod({ name, namespace: "default" });
    await waitFor("pod gone", async () => {
      const pods = (await core.listNamespacedPod({ namespace: "default" })).items;
      return !pods.some((p) => p.metadata?.name === name);
    });
    await waitFor("process ended", () => !isAlive(pid));
  });

  test("a failed node reports NotReady", async () => {
    await agent.failNode("gpu-1");
    const node = await core.readNode({ name: "gpu-1" });
    assert.equal(node.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
  });
});
