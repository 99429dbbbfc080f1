/**
 * The desired worker pod of a peer: one pure function from the peer, its run and the
 * controller options to a V1Pod, with a hash of its spec so that a changed spec is noticed.
 * The hash also covers the run config a worker reads only when it starts (podConfigOf:
 * where it reaches the bus and the chain), so a change there replaces the pods too; the
 * round-level config is not in it: workers adopt it by config epochs, without new pods.
 */
import type { V1Pod, V1Toleration } from "@kubernetes/client-node";
import {
  API_VERSION,
  Annotation,
  BUS_CA_DIR,
  BUS_CA_FILE,
  COVENANT_PEER_KIND,
  HOTKEY_DIR,
  HOTKEY_FILE,
  Label,
  MANAGED_BY,
  NATS_CREDS_DIR,
  NATS_CREDS_FILE,
  podConfigOf,
  RUN_CONFIG_DIR,
  RUN_CONFIG_FILE,
  runConfigMapName,
  type CovenantPeer,
  type Toleration,
  type TrainingRun,
} from "../../api/index.ts";
import { hashOf } from "./hash.ts";
import type { ControllerOptions } from "./options.ts";

export const WORKER_CONTAINER = "worker";
export const DEFAULT_WORKER_COMMAND = ["covenant-worker"];

/** The one pod name of a peer: deterministic, so a repeated create can never duplicate it. */
export const workerPodName = (peer: string): string => `${peer}-worker`;

export function workerLabels(peer: CovenantPeer): Record<string, string> {
  return {
    [Label.ManagedBy]: MANAGED_BY,
    [Label.Component]: "worker",
    [Label.Run]: peer.spec.runRef.name,
    [Label.Peer]: peer.metadata.name,
    [Label.Role]: peer.spec.role,
  };
}

/** Selector of every worker pod of a peer, whoever owns it. */
export const workerSelector = (peer: string): Record<string, string> => ({
  [Label.ManagedBy]: MANAGED_BY,
  [Label.Peer]: peer,
});

const toToleration = (t: Toleration): V1Toleration => ({ ...t });

export function desiredWorkerPod(peer: CovenantPeer, run: TrainingRun, opts: ControllerOptions): V1Pod {
  const ns = peer.metadata.namespace ?? "default";
  const worker = run.spec.worker;
  const placement = peer.spec.placement;
  const gpus = String(peer.spec.gpus);
  const nodeSelector: Record<string, string> = { ...worker.nodeSelector, ...placement.nodeSelector };
  if (placement.gpuProduct !== "") nodeSelector[placement.gpuProductLabel] = placement.gpuProduct;
  const tolerations: V1Toleration[] = [
    { key: opts.gpuResource, operator: "Exists", effect: "NoSchedule" },
    ...(worker.tolerations ?? []).map(toToleration),
    ...(placement.tolerations ?? []).map(toToleration),
  ];
  const natsRef = run.spec.transport.credentialsSecretRef;
  const caRef = run.spec.transport.caSecretRef;
  const env = [
    { name: "COVENANT_RUN", value: run.metadata.name },
    { name: "COVENANT_PEER", value: peer.metadata.name },
    { name: "COVENANT_ROLE", value: peer.spec.role },
    { name: "COVENANT_RUN_CONFIG", value: `${RUN_CONFIG_DIR}/${RUN_CONFIG_FILE}` },
    { name: "COVENANT_HOTKEY_FILE", value: `${HOTKEY_DIR}/${HOTKEY_FILE}` },
    { name: "COVENANT_METRICS_ADDR", value: `0.0.0.0:${opts.metricsPort}` },
    { name: "COVENANT_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "COVENANT_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "COVENANT_NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
  ];
  const volumeMounts = [
    { name: "shm", mountPath: "/dev/shm" },
    { name: "tmp", mountPath: "/tmp" },
    { name: "run-config", mountPath: RUN_CONFIG_DIR, readOnly: true },
    { name: "hotkey", mountPath: HOTKEY_DIR, readOnly: true },
  ];
  const volumes: NonNullable<V1Pod["spec"]>["volumes"] = [
    { name: "shm", emptyDir: { medium: "Memory", sizeLimit: worker.shmSize } },
    { name: "tmp", emptyDir: {} },
    { name: "run-config", configMap: { name: runConfigMapName(run.metadata.name), defaultMode: 0o444 } },
    {
      name: "hotkey",
      secret: {
        secretName: peer.spec.hotkeySecretRef.name,
        items: [{ key: peer.spec.hotkeySecretRef.key, path: HOTKEY_FILE }],
        defaultMode: 0o440,
      },
    },
  ];
  if (natsRef) {
    env.push({ name: "COVENANT_NATS_CREDS", value: `${NATS_CREDS_DIR}/${NATS_CREDS_FILE}` });
    volumeMounts.push({ name: "nats-creds", mountPath: NATS_CREDS_DIR, readOnly: true });
    volumes.push({
      name: "nats-creds",
      secret: {
        secretName: natsRef.name,
        items: [{ key: natsRef.key, path: NATS_CREDS_FILE }],
        defaultMode: 0o440,
      },
    });
  }
  // Without NATS credentials the worker logs in by its hotkey (admission by chain identity);
  // a hub serving TLS with its own CA names it here, for the worker's --bus-ca.
  if (caRef) {
    env.push({ name: "COVENANT_BUS_CA", value: `${BUS_CA_DIR}/${BUS_CA_FILE}` });
    volumeMounts.push({ name: "bus-ca", mountPath: BUS_CA_DIR, readOnly: true });
    volumes.push({
      name: "bus-ca",
      secret: {
        secretName: caRef.name,
        items: [{ key: caRef.key, path: BUS_CA_FILE }],
        defaultMode: 0o444,
      },
    });
  }
  const spec: V1Pod["spec"] = {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: opts.terminationGraceSeconds,
    nodeSelector,
    tolerations,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: opts.workerUid,
      runAsGroup: opts.workerUid,
      fsGroup: opts.workerUid,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: WORKER_CONTAINER,
        image: worker.image,
        imagePullPolicy: "IfNotPresent",
        command: worker.command && worker.command.length > 0 ? worker.command : DEFAULT_WORKER_COMMAND,
        args: [`--role=${peer.spec.role}`, ...(worker.args ?? [])],
        env,
        ports: [{ name: "metrics", containerPort: opts.metricsPort, protocol: "TCP" }],
        readinessProbe: {
          httpGet: { path: "/readyz", port: "metrics" },
          periodSeconds: 10,
          failureThreshold: 3,
        },
        resources: {
          requests: { ...worker.resources?.requests, [opts.gpuResource]: gpus } as Record<string, string>,
          limits: { ...worker.resources?.limits, [opts.gpuResource]: gpus } as Record<string, string>,
        },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
        volumeMounts,
      },
    ],
    volumes,
  };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: workerPodName(peer.metadata.name),
      namespace: ns,
      labels: workerLabels(peer),
      annotations: { [Annotation.PodSpecHash]: hashOf({ spec, runConfig: podConfigOf(run.spec) }) },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: COVENANT_PEER_KIND,
          name: peer.metadata.name,
          uid: peer.metadata.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec,
  };
}

export const specHashOf = (pod: V1Pod): string | undefined =>
  pod.metadata?.annotations?.[Annotation.PodSpecHash];
