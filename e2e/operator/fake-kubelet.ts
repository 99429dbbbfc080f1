// Stands in for the kubelets of GPU nodes that are only Node objects: registers the nodes
// with 8 GPUs of a given product, marks pods bound to them Running and Ready, finishes
// deletions of their pods, and lets a test make a node NotReady or remove it.
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { CORE, KubeClient, isNotFound, type KubeList } from "../../operator/kube/index.ts";
import type { KubeConfig } from "@kubernetes/client-node";

export interface FakeNodeOptions {
  gpus?: number;
  product?: string;
}

export class FakeKubelet {
  readonly client: KubeClient;
  private readonly nodes = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;

  constructor(kc: KubeConfig) {
    this.client = KubeClient.fromKubeConfig(kc);
  }

  async addNode(name: string, o: FakeNodeOptions = {}): Promise<void> {
    const gpus = String(o.gpus ?? 8);
    const now = new Date().toISOString();
    const node: V1Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "nvidia.com/gpu.product": o.product ?? "NVIDIA-B200",
        },
      },
      spec: {},
    };
    await this.client.create(CORE.nodes, node);
    await this.client.patch(
      CORE.nodes,
      undefined,
      name,
      {
        status: {
          capacity: { cpu: "64", memory: "512Gi", pods: "110", "nvidia.com/gpu": gpus },
          allocatable: { cpu: "64", memory: "512Gi", pods: "110", "nvidia.com/gpu": gpus },
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "KubeletReady",
              message: "fake",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
      "merge",
      { subresource: "status" },
    );
    // Admission taints a new node not-ready; the node lifecycle controller (not running
    // here) would lift it once the node reports Ready.
    await this.client.patch(CORE.nodes, undefined, name, { spec: { taints: null } }, "merge");
    this.nodes.add(name);
  }

  /** Marks a node NotReady and unschedulable, as the node lifecycle controller would. */
  async failNode(name: string): Promise<void> {
    const now = new Date().toISOString();
    await this.client.patch(CORE.nodes, undefined, name, { spec: { unschedulable: true } }, "merge");
    await this.client.patch(
      CORE.nodes,
      undefined,
      name,
      {
        status: {
          conditions: [
            {
              type: "Ready",
              status: "Unknown",
              reason: "NodeStatusUnknown",
              message: "kubelet stopped posting",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
      "strategic",
      { subresource: "status" },
    );
    this.nodes.delete(name);
  }

  async removeNode(name: string): Promise<void> {
    this.nodes.delete(name);
    await this.client.delete(CORE.nodes, undefined, name);
  }

  /** Starts acting on pods every `intervalMs`. */
  start(intervalMs = 200): void {
    this.timer = setInterval(() => {
      if (!this.busy) this.busy = this.tick().finally(() => (this.busy = undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
  }

  private async tick(): Promise<void> {
    try {
      const pods = await this.client.list<V1Pod>(CORE.pods);
      for (const pod of (pods as KubeList<V1Pod>).items) await this.sync(pod);
    } catch {
      // the next tick tries again
    }
  }

  private async sync(pod: V1Pod): Promise<void> {
    const node = pod.spec?.nodeName;
    if (!node || !this.nodes.has(node)) return;
    const ns = pod.metadata?.namespace;
    const name = pod.metadata!.name!;
    try {
      if (pod.metadata?.deletionTimestamp) {
        // The containers stopped: confirm the deletion as a kubelet does.
        await this.client.request({
          method: "DELETE",
          path: `/api/v1/namespaces/${ns}/pods/${name}`,
          body: {
            kind: "DeleteOptions",
            apiVersion: "v1",
            gracePeriodSeconds: 0,
            preconditions: { uid: pod.metadata.uid },
          },
        });
        return;
      }
      if (pod.status?.phase === "Running") return;
      const now = new Date().toISOString();
      await this.client.patch(
        CORE.pods,
        ns,
        name,
        {
          status: {
            phase: "Running",
            startTime: now,
            conditions: [
              { type: "PodScheduled", status: "True", lastTransitionTime: now },
              { type: "Initialized", status: "True", lastTransitionTime: now },
              { type: "ContainersReady", status: "True", lastTransitionTime: now },
              { type: "Ready", status: "True", lastTransitionTime: now },
            ],
          },
        },
        "strategic",
        { subresource: "status" },
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
