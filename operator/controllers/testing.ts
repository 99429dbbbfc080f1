/**
 * Fluent builders of test objects: `makeRun("r").suspend().obj()`. `.obj()` gives the
 * manifest a user would write; `.defaulted()` the object as the API server stores it.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import {
  API_VERSION,
  COVENANT_PEER_KIND,
  TRAINING_RUN_KIND,
  applyDefaults,
  covenantPeerSchema,
  trainingRunSchema,
  type CovenantPeer,
  type TrainingRun,
} from "../../api/index.ts";

export const TEST_IMAGE = "registry.example/covenant/worker@sha256:" + "0123456789abcdef".repeat(4);

type Json = Record<string, unknown>;

function setPath(obj: Json, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== "object" || cur[p] === null) cur[p] = {};
    cur = cur[p] as Json;
  }
  const last = parts[parts.length - 1] as string;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

abstract class Builder<T> {
  protected o: Json;
  constructor(o: Json) {
    this.o = o;
  }
  /** Sets any field by dotted path; `undefined` removes it. */
  set(path: string, value: unknown): this {
    setPath(this.o, path, value);
    return this;
  }
  namespace(ns: string): this {
    return this.set("metadata.namespace", ns);
  }
  uid(uid: string): this {
    return this.set("metadata.uid", uid);
  }
  generation(g: number): this {
    return this.set("metadata.generation", g);
  }
  status(s: Json): this {
    return this.set("status", s);
  }
  /** The manifest as written by a user. */
  obj(): T {
    return structuredClone(this.o) as T;
  }
  abstract defaulted(): T;
}

export class RunBuilder extends Builder<TrainingRun> {
  preset(p: string): this {
    return this.set("spec.model.preset", p);
  }
  rounds(n: number): this {
    return this.set("spec.rounds", n);
  }
  suspend(on = true): this {
    return this.set("spec.suspend", on);
  }
  image(image: string): this {
    return this.set("spec.worker.image", image);
  }
  minPeers(n: number): this {
    return this.set("spec.aggregation.minPeers", n);
  }
  defaulted(): TrainingRun {
    return applyDefaults(trainingRunSchema.json, this.obj());
  }
}

export class PeerBuilder extends Builder<CovenantPeer> {
  run(name: string): this {
    return this.set("spec.runRef.name", name);
  }
  role(role: string): this {
    return this.set("spec.role", role);
  }
  gpus(n: number): this {
    return this.set("spec.gpus", n);
  }
  suspend(on = true): this {
    return this.set("spec.suspend", on);
  }
  deleting(at = "2026-01-01T00:00:00Z"): this {
    return this.set("metadata.deletionTimestamp", at);
  }
  defaulted(): CovenantPeer {
    return applyDefaults(covenantPeerSchema.json, this.obj());
  }
}

export function makeRun(name: string, namespace = "default"): RunBuilder {
  return new RunBuilder({
    apiVersion: API_VERSION,
    kind: TRAINING_RUN_KIND,
    metadata: { name, namespace, uid: `uid-run-${name}`, generation: 1 },
    spec: {
      model: { preset: "llama3-tiny" },
      data: { source: "nats://covenant-data/tiny", shards: 64 },
      rounds: 100,
      chain: { endpoint: "ws://127.0.0.1:9944", netuid: 3 },
      transport: { natsUrl: "nats://127.0.0.1:4222" },
      worker: { image: TEST_IMAGE },
    },
  });
}

export function makePeer(name: string, run = "run", namespace = "default"): PeerBuilder {
  return new PeerBuilder({
    apiVersion: API_VERSION,
    kind: COVENANT_PEER_KIND,
    metadata: { name, namespace, uid: `uid-peer-${name}`, generation: 1 },
    spec: { runRef: { name: run }, hotkeySecretRef: { name: `${name}-hotkey` } },
  });
}

/** A GPU node as a node agent or kwok would register it. */
export function makeNode(
  name: string,
  opts: { ready?: boolean; since?: string; gpus?: number; product?: string } = {},
): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "kubernetes.io/hostname": name,
        "nvidia.com/gpu.product": opts.product ?? "NVIDIA-B200",
      },
    },
    spec: {},
    status: {
      capacity: { cpu: "64", memory: "1Ti", pods: "110", "nvidia.com/gpu": String(opts.gpus ?? 8) },
      allocatable: { cpu: "64", memory: "1Ti", pods: "110", "nvidia.com/gpu": String(opts.gpus ?? 8) },
      conditions: [
        {
          type: "Ready",
          status: (opts.ready ?? true) ? "True" : "False",
          reason: (opts.ready ?? true) ? "KubeletReady" : "KubeletNotReady",
          lastTransitionTime: (opts.since ?? "2026-01-01T00:00:00Z") as unknown as Date,
          lastHeartbeatTime: (opts.since ?? "2026-01-01T00:00:00Z") as unknown as Date,
        },
      ],
    },
  };
}

/** Marks a pod as the kubelet would: bound to a node, running or failed. */
export function withPodState(
  pod: V1Pod,
  state: { node?: string; phase?: string; ready?: boolean; deleting?: boolean; uid?: string },
): V1Pod {
  const p = structuredClone(pod);
  p.metadata = { ...p.metadata, uid: state.uid ?? p.metadata?.uid ?? `uid-pod-${p.metadata?.name}` };
  if (state.deleting) p.metadata.deletionTimestamp = "2026-01-01T00:00:00Z" as unknown as Date;
  if (state.node) p.spec = { ...p.spec!, nodeName: state.node };
  p.status = {
    phase: state.phase ?? (state.node ? "Running" : "Pending"),
    conditions: [
      { type: "PodScheduled", status: state.node ? "True" : "False" },
      { type: "Ready", status: state.ready ? "True" : "False" },
    ],
  };
  return p;
}
