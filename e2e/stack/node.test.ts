// test-limit: 600 s
// A real node (containerd, runc, CNI bridge, kubelet) joins the local control plane and runs
// pods from locally built images under Pod Security "restricted", with GPUs from the
// device-plugin stand-in; and when it stops, nothing of it is left on the machine.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { get } from "./http.ts";
import { startKube, type KubeStack } from "./kube.ts";
import { localImages, type LocalImages } from "./local-images.ts";
import { startNode, type KubeNode } from "./node.ts";
import { binary, repoRoot } from "./paths.ts";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);
const NS = "restricted";

/** The project's operator image, when `make images` has built it (not part of `make test`). */
function operatorImage(): { archive: string; ref: string } | undefined {
  try {
    const built = JSON.parse(readFileSync(join(repoRoot, "build/images/images.json"), "utf8")) as Record<
      string,
      { archive: string; ref: string }
    >;
    const op = built["covenant-operator"];
    return op && existsSync(join(repoRoot, op.archive))
      ? { archive: join(repoRoot, op.archive), ref: op.ref }
      : undefined;
  } catch {
    return undefined;
  }
}

/** A pod that Pod Security "restricted" admits: non-root, no capabilities, seccomp, read-only root. */
function restrictedPod(
  name: string,
  image: string,
  extra: { gpus?: number; command?: string[] } = {},
): V1Pod {
  const gpus = extra.gpus ? { "nvidia.com/gpu": String(extra.gpus) } : undefined;
  return {
    metadata: { name, namespace: NS },
    spec: {
      terminationGracePeriodSeconds: 2,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: "main",
          image,
          imagePullPolicy: "Never",
          ...(extra.command ? { command: extra.command } : {}),
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 },
          ...(gpus ? { resources: { requests: gpus, limits: gpus } } : {}),
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            readOnlyRootFilesystem: true,
          },
        },
      ],
    },
  };
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** The iptables chains named KUBE-* on the machine, IPv4 and IPv6 (a kubelet's own, when it makes them). */
async function kubeChains(): Promise<string[]> {
  const chains: string[] = [];
  for (const cmd of ["iptables-save", "ip6tables-save"]) {
    const { stdout } = await run(cmd).catch(() => ({ stdout: "" }));
    chains.push(
      ...stdout
        .split("\n")
        .filter((l) => /^:KUBE-/.test(l))
        .map((l) => `${cmd}: ${l.split(" ")[0]}`),
    );
  }
  return chains.sort();
}

/** Host kernel settings a kubelet writes unless prevented (node-ns.sh shows it its own). */
function kernelSettings(): string[] {
  return ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops"].map(
    (s) => `${s}=${readFileSync(`/proc/sys/${s}`, "utf8").trim()}`,
  );
}

/** Processes whose command line names the node's directory (containerd, kubelet, shims). */
function processesNaming(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(dir) && pid !== String(process.pid)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return found;
}

describe("a real node", { timeout: 540_000 }, () => {
  let kube: KubeStack;
  let node: KubeNode | undefined;
  let core: CoreV1Api;
  let images: LocalImages;
  const operator = operatorImage();
  const chainsBefore: string[] = [];
  const kernelBefore = kernelSettings();

  before(async () => {
    chainsBefore.push(...(await kubeChains()));
    images = await localImages();
    kube = await startKube({ scheduler: true, controllerManager: true, timeoutSec: 180 });
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const start = Date.now();
    node = await startNode(kube, {
      name: "node-a",
      gpus: 2,
      images: operator ? [operator.archive] : [],
      timeoutSec: 180,
    });
    console.log(`node started in ${Date.now() - start} ms: ${JSON.stringify(node.timings)}`);
    await core.createNamespace({
      body: { metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
    });
    // Pods wait for their namespace's service account, which the controller manager makes.
    await waitFor("default service account", () =>
      core.readNamespacedServiceAccount({ name: "default", namespace: NS }).then(() => true),
    );
  });

  after(async () => {
    await node?.stop();
    await kube?.stop();
  });

  test("joins Ready with its InternalIP, versions, and the stand-in's GPUs allocatable", async () => {
    const n = await core.readNode({ name: "node-a" });
    assert.ok(n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    assert.equal(n.status?.nodeInfo?.kubeletVersion, "v1.34.4");
    assert.match(n.status?.nodeInfo?.containerRuntimeVersion ?? "", /^containerd:\/\/1\./);
    assert.deepEqual(n.status?.addresses?.find((a) => a.type === "InternalIP")?.address, node!.ip);
    assert.equal(n.status?.allocatable?.["nvidia.com/gpu"], "2");
    assert.equal(n.spec?.taints?.length ?? 0, 0);
  });

  test("a device the stand-in reports Unhealthy leaves allocatable until it is Healthy again", async () => {
    const allocatable = (count: string) =>
      waitFor(
        `${count} nvidia.com/gpu allocatable`,
        async () =>
          (await core.readNode({ name: "node-a" })).status?.allocatable?.["nvidia.com/gpu"] === count,
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    node!.devicePlugin!.setHealthy("gpu-1", false);
    await allocatable("1");
    assert.equal((await core.readNode({ name: "node-a" })).status?.capacity?.["nvidia.com/gpu"], "2");
    node!.devicePlugin!.setHealthy("gpu-1", true);
    await allocatable("2");
  });

  test("Pod Security restricted refuses a pod that runs as root", async () => {
    const pod = restrictedPod("root", images.testServer.ref);
    pod.spec!.securityContext = {};
    await assert.rejects(
      core.createNamespacedPod({ namespace: NS, body: pod }),
      /violates PodSecurity .{0,8}restricted/,
    );
  });

  test("runs a restricted pod from a local image pinned by digest: Ready, logs, its GPU", async () => {
    const start = Date.now();
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod("server", images.testServer.ref, { gpus: 1 }),
    });
    const pod = await waitFor(
      "pod server Ready",
      async () => {
        const p = await core.readNamespacedPod({ name: "server", namespace: NS });
        return isReady(p) && p;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    console.log(`restricted pod Running and Ready ${Date.now() - start} ms after create`);
    assert.equal(pod.status?.phase, "Running");
    assert.equal(pod.spec?.nodeName, "node-a");
    assert.equal(pod.status?.containerStatuses?.[0]?.imageID, images.testServer.ref);

    // The pod is on the node's bridge subnet, reachable from the host.
    const res = await get(`http://${pod.status!.podIP}:8080/from-host`);
    assert.equal(res.body, "ok /from-host\n");

    // kubectl logs: API server -> kubelet (InternalIP, TLS both ways, authorized by the API server).
    const { stdout } = await run(binary("kubectl"), [
      `--kubeconfig=${kube.kubeconfigPath}`,
      "logs",
      "-n",
      NS,
      "server",
    ]);
    assert.match(stdout, /testserver: listening on port 8080/);
    assert.match(stdout, /testserver: GET \/healthz uid=65532/);
    assert.match(stdout, /testserver: GET \/from-host uid=65532/);

    // kubectl exec: a second server in the pod finds port 8080 taken by the first, so it ran in
    // the pod's network namespace, as the pod's user.
    const exec = await run(binary("kubectl"), [
      `--kubeconfig=${kube.kubeconfigPath}`,
      "exec",
      "-n",
      NS,
      "server",
      "--",
      "/testserver",
      "8080",
    ]).then(
      () => assert.fail("a second server bound the pod's port"),
      (err: { stderr?: string }) => err.stderr ?? "",
    );
    assert.match(exec, /testserver: listen: Address already in use/);

    assert.deepEqual(node!.devicePlugin?.allocations.length, 1);
    assert.equal(node!.devicePlugin?.allocations[0]?.length, 1);
  });

  test("a pod asking for more GPUs than are free stays Pending: Insufficient nvidia.com/gpu", async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod("greedy", images.testServer.ref, { gpus: 2 }),
    });
    const reason = await waitFor(
      "pod greedy unschedulable",
      async () => {
        const p = await core.readNamespacedPod({ name: "greedy", namespace: NS });
        const c = p.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False");
        return c?.message?.includes("Insufficient nvidia.com/gpu") && c.message;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.match(reason, /Insufficient nvidia\.com\/gpu/);
    const p = await core.readNamespacedPod({ name: "greedy", namespace: NS });
    assert.equal(p.status?.phase, "Pending");
    await core.deleteNamespacedPod({ name: "greedy", namespace: NS, gracePeriodSeconds: 0 });
  });

  test("a wrong image digest gets the kubelet's reason: ErrImageNeverPull", async () => {
    const missing = `${images.testServer.ref.split("@")[0]}@sha256:${"0".repeat(64)}`;
    await core.createNamespacedPod({ namespace: NS, body: restrictedPod("missing", missing) });
    const waiting = await waitFor(
      "pod missing waiting on its image",
      async () => {
        const p = await core.readNamespacedPod({ name: "missing", namespace: NS });
        const waiting = p.status?.containerStatuses?.[0]?.state?.waiting;
        return waiting?.reason !== "ContainerCreating" && waiting;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.equal(waiting.reason, "ErrImageNeverPull");
    assert.match(waiting.message ?? "", /not present/);
  });

  test(
    "runs the project's operator image (node -e) restricted and Ready, with its GPU",
    { skip: !operator && "build/images has no operator image (make images)" },
    async () => {
      const server =
        "require('http').createServer((q, s) => { console.log('operator image: ' + q.url); s.end('ok') }).listen(8080)";
      const start = Date.now();
      await core.createNamespacedPod({
        namespace: NS,
        body: restrictedPod("operator-image", operator!.ref, {
          command: ["/usr/local/bin/node", "-e", server],
          gpus: 1,
        }),
      });
      await waitFor(
        "pod operator-image Ready",
        async () => isReady(await core.readNamespacedPod({ name: "operator-image", namespace: NS })),
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      console.log(`operator image pod Running and Ready ${Date.now() - start} ms after create`);
      const { stdout } = await run(binary("kubectl"), [
        `--kubeconfig=${kube.kubeconfigPath}`,
        "logs",
        "-n",
        NS,
        "operator-image",
      ]);
      assert.match(stdout, /operator image: \/healthz/);
      const exec = await run(binary("kubectl"), [
        `--kubeconfig=${kube.kubeconfigPath}`,
        "exec",
        "-n",
        NS,
        "operator-image",
        "--",
        "/usr/local/bin/node",
        "-e",
        "console.log(process.getuid(), process.env.NVIDIA_VISIBLE_DEVICES ?? 'no GPU')",
      ]);
      // The device plugin stand-in's Allocate put the pod's GPU ID in its environment.
      assert.match(exec.stdout.trim(), /^65532 gpu-[01]$/);
    },
  );

  test("kill() is a lost node: the controller manager marks it NotReady", async () => {
    await node!.kill();
    assert.deepEqual(
      node!.processes.filter((p) => p.running).map((p) => p.name),
      ["node-ns node-a"],
      "only the namespace holder survives a kill",
    );
    await waitFor(
      "Node NotReady",
      async () => {
        const n = await core.readNode({ name: "node-a" });
        return n.status?.conditions?.some((c) => c.type === "Ready" && c.status !== "True");
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  });

  test("stop() leaves nothing behind", async () => {
    const { dir, bridge, cgroup } = node!;
    await node!.stop();
    node = undefined;
    assert.deepEqual(
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .filter((l) => l.includes(dir)),
      [],
      "mounts",
    );
    assert.equal(existsSync(`/sys/class/net/${bridge}`), false, "bridge");
    assert.deepEqual(
      readdirSync("/sys/fs/cgroup").filter((h) => existsSync(join("/sys/fs/cgroup", h, cgroup))),
      [],
      "cgroups",
    );
    assert.deepEqual(processesNaming(dir), [], "containerd, kubelet or shims still running");
    assert.deepEqual(await kubeChains(), chainsBefore, "KUBE-* iptables chains");
    assert.deepEqual(kernelSettings(), kernelBefore, "host kernel settings");
    assert.equal(existsSync(dir), false, "directory");
  });
});
