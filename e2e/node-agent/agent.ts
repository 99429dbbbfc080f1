// The node agent: a stand-in for the kubelet (named as such; nothing else here
// fakes Kubernetes). It registers GPU nodes, keeps their Ready condition fresh, and
// runs the containers of pods bound to them as local processes, reporting their
// state back in the pod status. Images are not pulled: a container's command is
// mapped to a local program by `commands`.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { tempDir } from "../stack/paths.ts";
import { freePort } from "../stack/ports.ts";
import { ManagedProcess } from "../stack/process.ts";
import { get } from "../stack/http.ts";
import { materialiseVolumes, resolveEnv, rewritePath } from "./volumes.ts";

export interface NodeSpec {
  name: string;
  labels?: Record<string, string>;
  /** GPUs advertised as nvidia.com/gpu; default 8. */
  gpus?: number;
}

export interface NodeAgentOptions {
  kubeConfig: KubeConfig;
  nodes: NodeSpec[];
  /** Container command[0] -> local argv prefix, e.g. covenant-worker -> [node, --import, tsx, worker/main.ts]. */
  commands: Record<string, string[]>;
  /** Environment added to every process (e.g. the demo's NATS URL). */
  extraEnv?: Record<string, string>;
  /** Environment added to one pod's process, e.g. per-peer credentials the demo wrote to files. */
  envFor?: (pod: V1Pod) => Record<string, string>;
  /** Status heartbeat period; default 5 s. */
  heartbeatMs?: number;
  /** Pod sync period; default 1 s. */
  syncMs?: number;
  /** Called with every line a container prints, for demos. */
  onOutput?: (pod: string, line: string) => void;
}

interface RunningPod {
  uid: string;
  process: ManagedProcess;
  /** Port that the container's named metrics/probe port maps to. */
  port?: number;
  ready: boolean;
  exitReported: boolean;
}

export const B200_LABELS = {
  "nvidia.com/gpu.product": "NVIDIA-B200",
  "nvidia.com/gpu.count": "8",
  "node.kubernetes.io/instance-type": "gpu-8xb200",
};

export class NodeAgent {
  private readonly core: CoreV1Api;
  private readonly pods = new Map<string, RunningPod>();
  private readonly tmp = tempDir("node-agent");
  private readonly notReady = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private syncing = false;
  private stopped = false;

  constructor(private readonly opts: NodeAgentOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
  }

  get dir(): string {
    return this.tmp.path;
  }

  async start(): Promise<void> {
    for (const n of this.opts.nodes) await this.register(n);
    await this.heartbeat();
    this.timers.push(
      setInterval(() => void this.heartbeat().catch(() => {}), this.opts.heartbeatMs ?? 5_000),
    );
    this.timers.push(setInterval(() => void this.sync().catch(() => {}), this.opts.syncMs ?? 1_000));
  }

  /** Simulates a node failure: stops heartbeats (Ready=False) and kills its processes. */
  async failNode(name: string): Promise<void> {
    this.notReady.add(name);
    await this.heartbeat();
    for (const [key, p] of this.pods) if (key.startsWith(`${name}/`)) await p.process.kill();
  }

  /** Local port of a running pod's first container port (its metrics/probe endpoint). */
  podPort(namespace: string, name: string): number | undefined {
    return this.find(namespace, name)?.port;
  }

  /** Process group of a running pod's container. */
  podPid(namespace: string, name: string): number | undefined {
    const p = this.find(namespace, name);
    return p?.process.running ? p.process.pid : undefined;
  }

  private find(namespace: string, name: string): RunningPod | undefined {
    for (const [key, p] of this.pods) if (key.endsWith(`/${namespace}/${name}`)) return p;
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.pods.values()].map((p) => p.process.stop()));
    this.pods.clear();
    this.tmp.remove();
  }

  private async register(n: NodeSpec): Promise<void> {
    const gpus = String(n.gpus ?? 8);
    const node: V1Node = {
      metadata: {
        name: n.name,
        labels: { "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", ...n.labels },
        annotations: { "covenant.io/node-agent": "local processes, not a kubelet" },
      },
      spec: {},
    };
    try {
      await this.core.createNode({ body: node });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
    const capacity = { cpu: "224", memory: "2Ti", pods: "110", "nvidia.com/gpu": gpus };
    await this.patchNodeStatus(n.name, { capacity, allocatable: capacity });
  }

  private async heartbeat(): Promise<void> {
    const now = new Date().toISOString();
    for (const n of this.opts.nodes) {
      const ready = !this.notReady.has(n.name);
      if (!ready && this.stopped) continue;
      await this.patchNodeStatus(n.name, {
        conditions: [
          {
            type: "Ready",
            status: ready ? "True" : "False",
            reason: ready ? "NodeAgentReady" : "NodeAgentStopped",
            message: ready ? "node agent is running pods as local processes" : "node agent stopped this node",
            lastHeartbeatTime: now as unknown as Date,
            lastTransitionTime: now as unknown as Date,
          },
        ],
        addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
        nodeInfo: {
          architecture: "amd64",
          operatingSystem: "linux",
          kubeletVersion: "node-agent",
          kubeProxyVersion: "",
          containerRuntimeVersion: "local-process://",
          bootID: "",
          kernelVersion: "",
          machineID: "",
          osImage: "",
          systemUUID: "",
        },
      });
      if (ready) await this.liftNotReadyTaint(n.name);
    }
  }

  /**
   * Admission taints new nodes not-ready until the node lifecycle controller sees them Ready.
   * Tests may run without kube-controller-manager, so the agent lifts that taint itself once
   * it reports Ready (the controller, when running, does the same).
   */
  private async liftNotReadyTaint(name: string): Promise<void> {
    const node = await this.core.readNode({ name });
    const taints = node.spec?.taints ?? [];
    const kept = taints.filter((t) => t.key !== "node.kubernetes.io/not-ready");
    if (kept.length === taints.length) return;
    await this.core.patchNode(
      { name, body: { spec: { taints: kept } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  private async patchNodeStatus(name: string, status: Record<string, unknown>): Promise<void> {
    if (this.notReady.has(name) && status.conditions === undefined) return;
    await this.core.patchNodeStatus(
      { name, body: { status } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
  }

  /** Starts containers of newly bound pods, reports state, ends processes of deleted pods. */
  private async sync(): Promise<void> {
    if (this.syncing || this.stopped) return;
    this.syncing = true;
    try {
      const names = new Set(this.opts.nodes.map((n) => n.name).filter((n) => !this.notReady.has(n)));
      const list = await this.core.listPodForAllNamespaces();
      const seen = new Set<string>();
      for (const pod of list.items) {
        const node = pod.spec?.nodeName;
        if (!node || !names.has(node)) continue;
        const key = `${node}/${pod.metadata?.namespace}/${pod.metadata?.name}`;
        seen.add(key);
        const running = this.pods.get(key);
        if (pod.metadata?.deletionTimestamp) {
          if (running) await running.process.stop((pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
          this.pods.delete(key);
          await this.core
            .deleteNamespacedPod({
              name: pod.metadata.name!,
              namespace: pod.metadata.namespace!,
              gracePeriodSeconds: 0,
            })
            .catch(() => {});
          continue;
        }
        if (!running && (pod.status?.phase ?? "Pending") === "Pending") await this.startPod(key, pod);
        else if (running && running.uid === pod.metadata?.uid) await this.report(pod, running);
      }
      for (const [key, p] of this.pods) {
        if (!seen.has(key)) {
          await p.process.stop();
          this.pods.delete(key);
        }
      }
    } finally {
      this.syncing = false;
    }
  }

  private async startPod(key: string, pod: V1Pod): Promise<void> {
    const container = pod.spec?.containers[0];
    if (!container) return;
    const podDir = join(this.tmp.path, pod.metadata!.namespace!, pod.metadata!.name!);
    mkdirSync(podDir, { recursive: true });
    const fail = (message: string) =>
      this.setStatus(pod, "Failed", false, { reason: "NodeAgentError", message });
    const program = this.opts.commands[container.command?.[0] ?? ""];
    if (!program) return fail(`no local program for command ${JSON.stringify(container.command)}`);
    let map;
    try {
      map = await materialiseVolumes(this.core, pod, container, podDir);
    } catch (err) {
      return fail((err as Error).message);
    }
    const env = { ...resolveEnv(pod, container, map), ...this.opts.extraEnv, ...this.opts.envFor?.(pod) };
    // Ports are shared on this host: every container port gets a free local port.
    let port: number | undefined;
    if (container.ports?.length) {
      port = await freePort();
      for (const [k, v] of Object.entries(env)) {
        const p = container.ports[0]!.containerPort;
        if (v.endsWith(`:${p}`)) env[k] = `127.0.0.1:${port}`;
      }
    }
    const args = [...(container.command ?? []).slice(1), ...(container.args ?? [])].map((a) =>
      rewritePath(a, map),
    );
    const proc = ManagedProcess.start({
      name: `${pod.metadata!.name}`,
      command: program[0]!,
      args: [...program.slice(1), ...args],
      env: { ...env, HOME: podDir, TMPDIR: join(podDir, "volumes", "tmp") },
      logFile: join(podDir, "container.log"),
      cwd: podDir,
    });
    const running: RunningPod = { uid: pod.metadata!.uid!, process: proc, ready: false, exitReported: false };
    if (port !== undefined) running.port = port;
    this.pods.set(key, running);
    if (this.opts.onOutput) this.follow(pod.metadata!.name!, proc);
    await this.setStatus(pod, "Running", false);
  }

  private follow(name: string, proc: ManagedProcess): void {
    let offset = 0;
    const timer = setInterval(async () => {
      const { readFile } = await import("node:fs/promises");
      const text = await readFile(proc.logFile, "utf8").catch(() => "");
      const fresh = text.slice(offset);
      const end = fresh.lastIndexOf("\n");
      if (end >= 0) {
        for (const line of fresh.slice(0, end).split("\n")) this.opts.onOutput?.(name, line);
        offset += end + 1;
      }
      if (!proc.running) clearInterval(timer);
    }, 500);
    this.timers.push(timer);
  }

  private async report(pod: V1Pod, p: RunningPod): Promise<void> {
    if (!p.process.running) {
      if (p.exitReported) return;
      const exit = await p.process.exited;
      p.exitReported = true;
      const ok = exit.code === 0;
      await this.setStatus(pod, ok ? "Succeeded" : "Failed", false, {
        reason: ok ? "Completed" : "Error",
        message: `exited with ${exit.signal ?? `code ${exit.code}`}`,
        exitCode: exit.code ?? 137,
      });
      return;
    }
    const probe = pod.spec?.containers[0]?.readinessProbe?.httpGet;
    let ready = true;
    if (probe && p.port !== undefined) {
      ready = await get(`http://127.0.0.1:${p.port}${probe.path ?? "/"}`)
        .then((r) => r.status >= 200 && r.status < 400)
        .catch(() => false);
    }
    if (ready !== p.ready) {
      p.ready = ready;
      await this.setStatus(pod, "Running", ready);
    }
  }

  private async setStatus(
    pod: V1Pod,
    phase: "Running" | "Succeeded" | "Failed",
    ready: boolean,
    terminated?: { reason: string; message: string; exitCode?: number },
  ): Promise<void> {
    const now = new Date().toISOString();
    const name = pod.spec?.containers[0]?.name ?? "main";
    const status = {
      phase,
      hostIP: "127.0.0.1",
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: pod.status?.startTime ?? now,
      ...(terminated ? { reason: terminated.reason, message: terminated.message } : {}),
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: now },
        { type: "Initialized", status: "True", lastTransitionTime: now },
        { type: "ContainersReady", status: ready ? "True" : "False", lastTransitionTime: now },
        { type: "Ready", status: ready ? "True" : "False", lastTransitionTime: now },
      ],
      containerStatuses: [
        {
          name,
          image: pod.spec?.containers[0]?.image ?? "",
          imageID: "",
          ready,
          restartCount: 0,
          started: !terminated,
          state: terminated
            ? {
                terminated: {
                  exitCode: terminated.exitCode ?? 1,
                  reason: terminated.reason,
                  finishedAt: now,
                },
              }
            : { running: { startedAt: now } },
        },
      ],
    };
    await this.core
      .patchNamespacedPodStatus(
        { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      )
      .catch(() => {});
  }
}
