/**
 * Planning for a CovenantPeer: observed state in, the pod deletions, the pod to apply, the
 * status and the Events out. Pure and synchronous; the controller only carries it out.
 *
 * The rules, in order:
 * - the peer wants a pod when its run exists and is active, neither is suspended, and the
 *   run config and hotkey Secret exist (missing ones block a new pod, not a running one);
 * - a pod that failed, whose node is gone, or whose node has been NotReady past the grace
 *   period is deleted at once (grace 0: nobody is left to stop it) and replaced;
 * - a pod whose spec hash differs from the desired one is deleted gracefully and recreated,
 *   a few peers of the run at a time (rollout.ts: spec.rollout.maxUnavailable);
 * - of several live pods one is kept (Ready first, then the oldest), the others deleted.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import {
  Annotation,
  PeerCondition,
  Reason,
  type CovenantPeer,
  type CovenantPeerStatus,
  type TrainingRun,
} from "../../api/index.ts";
import { mergeConditions, type DesiredCondition } from "./conditions.ts";
import type { ControllerOptions } from "./options.ts";
import { rolloutDecision, type RolloutPeer } from "./rollout.ts";
import { desiredWorkerPod, specHashOf, workerPodName } from "./workerpod.ts";

export interface PeerObservation {
  /** The peer as stored (defaults applied). */
  peer: CovenantPeer;
  run: TrainingRun | undefined;
  /** Whether the run's resolved config ConfigMap exists. */
  runConfigReady: boolean;
  hotkeySecretExists: boolean;
  /** Worker pods labelled with this peer, terminating ones included. */
  pods: V1Pod[];
  node(name: string): V1Node | undefined;
  /**
   * The run's peers in this namespace (this one included) for the rollout bound; absent, an
   * outdated pod is replaced at once.
   */
  rollout?: { peers: RolloutPeer[]; maxUnavailable: number };
}

export interface PodDeletion {
  pod: V1Pod;
  /** Delete with grace period 0: the pod's node cannot stop it. */
  force: boolean;
  reason: string;
  message: string;
}

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface PeerPlan {
  deletions: PodDeletion[];
  /** Pod to apply (create) when the peer has none. */
  apply: V1Pod | undefined;
  /** The status fields this controller owns. */
  status: CovenantPeerStatus;
  events: PlannedEvent[];
  requeueAfterMs: number | undefined;
}

type PodFate =
  | { keep: true; requeueMs?: number; outdated?: string }
  | { keep: false; force: boolean; reason: string; message: string; replacement: boolean };

const podCondition = (pod: V1Pod, type: string) => pod.status?.conditions?.find((c) => c.type === type);
const nodeReady = (node: V1Node) => node.status?.conditions?.find((c) => c.type === "Ready");
const time = (t: unknown): number => (t ? new Date(t as string).getTime() : 0);

/** Why the run does not want pods now, or undefined when it does. */
function runBlocker(run: TrainingRun | undefined, runName: string): DesiredCondition | undefined {
  if (!run) {
    return {
      type: "",
      status: "False",
      reason: Reason.RunNotFound,
      message: `TrainingRun "${runName}" not found`,
    };
  }
  if (run.spec.suspend) {
    return {
      type: "",
      status: "False",
      reason: Reason.Suspended,
      message: `TrainingRun "${runName}" is suspended`,
    };
  }
  const phase = run.status?.phase;
  if (phase === "Completed" || phase === "Failed") {
    return {
      type: "",
      status: "False",
      reason: Reason.RunNotActive,
      message: `TrainingRun "${runName}" is ${phase}`,
    };
  }
  return undefined;
}

export function planPeer(o: PeerObservation, opts: ControllerOptions): PeerPlan {
  const { peer } = o;
  const now = opts.now();
  const runName = peer.spec.runRef.name;
  const events: PlannedEvent[] = [];
  const deletions: PodDeletion[] = [];
  let requeueAfterMs: number | undefined;
  const requeue = (ms: number) => (requeueAfterMs = Math.min(requeueAfterMs ?? ms, ms));
  // The replacement count travels on the pods (an annotation), not through the cached
  // status, so a reconcile that reads a stale peer cannot count backwards.
  let replacedCount: number | undefined;

  let blocker = runBlocker(o.run, runName);
  if (!blocker && peer.spec.suspend) {
    blocker = { type: "", status: "False", reason: Reason.Suspended, message: "CovenantPeer is suspended" };
  }
  const desired = !blocker && o.run ? desiredWorkerPod(peer, o.run, opts) : undefined;

  // Classify every pod; terminating pods on a lost node are forced out.
  const live: V1Pod[] = [];
  const outdated = new Map<V1Pod, string>();
  let terminatingWithName = false;
  for (const pod of o.pods) {
    const fate = classifyPod(pod, o, opts, now, desired);
    if (pod.metadata?.deletionTimestamp) {
      if (!fate.keep && fate.force) {
        deletions.push({ pod, force: true, reason: fate.reason, message: fate.message });
        // A forced deletion passes through a terminating state that a cache may show: the
        // pod still counts, or its replacement would be created with a count one short.
        if (fate.replacement) replacedCount = Math.max(replacedCount ?? 0, replacementsOf(pod) + 1);
      } else if (pod.metadata.name === workerPodName(peer.metadata.name)) {
        terminatingWithName = true;
      }
      continue;
    }
    if (!fate.keep) {
      deletions.push({ pod, force: fate.force, reason: fate.reason, message: fate.message });
      if (fate.replacement) replacedCount = Math.max(replacedCount ?? 0, replacementsOf(pod) + 1);
      if (!fate.force && pod.metadata?.name === workerPodName(peer.metadata.name)) terminatingWithName = true;
      continue;
    }
    if (fate.requeueMs !== undefined) requeue(fate.requeueMs);
    if (fate.outdated !== undefined) outdated.set(pod, fate.outdated);
    live.push(pod);
  }

  if (blocker) {
    for (const pod of live) {
      deletions.push({ pod, force: !pod.spec?.nodeName, reason: blocker.reason, message: blocker.message });
    }
    live.length = 0;
  } else if (live.length > 1) {
    const sorted = [...live].sort(
      (a, b) =>
        Number(podCondition(b, "Ready")?.status === "True") -
          Number(podCondition(a, "Ready")?.status === "True") ||
        time(a.metadata?.creationTimestamp) - time(b.metadata?.creationTimestamp) ||
        (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""),
    );
    for (const pod of sorted.slice(1)) {
      deletions.push({ pod, force: false, reason: Reason.DuplicatePod, message: "more than one worker pod" });
    }
    live.splice(0, live.length, sorted[0] as V1Pod);
  }

  let current: V1Pod | undefined = live[0];
  let apply: V1Pod | undefined;
  let waiting: DesiredCondition | undefined;
  if (!blocker && desired && !current) {
    if (!o.runConfigReady) {
      waiting = {
        type: "",
        status: "False",
        reason: Reason.RunConfigPending,
        message: `waiting for the run config of TrainingRun "${runName}"`,
      };
      requeue(opts.recheckMs);
    } else if (!o.hotkeySecretExists) {
      waiting = {
        type: "",
        status: "False",
        reason: Reason.HotkeySecretMissing,
        message: `Secret "${peer.spec.hotkeySecretRef.name}" with the hotkey not found`,
      };
      requeue(opts.recheckMs);
    } else if (terminatingWithName) {
      // The old pod still holds the name; its deletion event wakes us, the requeue is a safety net.
      requeue(1000);
    } else {
      const count = Math.max(replacedCount ?? 0, peer.status?.podReplacements ?? 0);
      apply = { ...desired, metadata: { ...desired.metadata } };
      apply.metadata!.annotations = {
        ...desired.metadata?.annotations,
        [Annotation.Replacements]: String(count),
      };
      current = apply;
    }
  }

  for (const d of deletions) {
    events.push({
      type: d.reason === Reason.Suspended || d.reason === Reason.SpecChanged ? "Normal" : "Warning",
      reason: Reason.PodDeleted,
      message: `deleted pod ${d.pod.metadata?.name}: ${d.message}`,
    });
  }
  if (apply)
    events.push({
      type: "Normal",
      reason: Reason.PodCreated,
      message: `created pod ${apply.metadata?.name}`,
    });
  if (waiting) events.push({ type: "Warning", reason: waiting.reason, message: waiting.message });

  const conditions = peerConditions(blocker ?? waiting, current, apply !== undefined, o);
  if (current) {
    const stale = outdated.get(current);
    conditions.push(
      stale === undefined
        ? {
            type: PeerCondition.UpToDate,
            status: "True",
            reason: Reason.PodUpToDate,
            message: `pod ${current.metadata?.name} runs the current spec`,
          }
        : { type: PeerCondition.UpToDate, status: "False", reason: Reason.RolloutWaiting, message: stale },
    );
  }
  const status: CovenantPeerStatus = {
    observedGeneration: peer.metadata.generation ?? 0,
    conditions: mergeConditions(peer.status?.conditions, conditions, peer.metadata.generation, now),
    // Never backwards: the larger of what the pod carries and what the status already says.
    podReplacements: Math.max(
      current ? replacementsOf(current) : (replacedCount ?? 0),
      peer.status?.podReplacements ?? 0,
    ),
  };
  if (current?.metadata?.name) status.podName = current.metadata.name;
  if (current?.spec?.nodeName) status.nodeName = current.spec.nodeName;
  return { deletions, apply, status, events, requeueAfterMs };
}

function replacementsOf(pod: V1Pod): number {
  const n = Number(pod.metadata?.annotations?.[Annotation.Replacements] ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

function classifyPod(
  pod: V1Pod,
  o: PeerObservation,
  opts: ControllerOptions,
  now: Date,
  desired: V1Pod | undefined,
): PodFate {
  const name = pod.metadata?.name;
  const phase = pod.status?.phase;
  if (phase === "Failed" || phase === "Succeeded") {
    const why = pod.status?.message ?? pod.status?.reason ?? `phase ${phase}`;
    return {
      keep: false,
      force: true,
      reason: Reason.PodFailed,
      message: `pod ${name} ended (${why})`,
      replacement: true,
    };
  }
  const nodeName = pod.spec?.nodeName;
  if (nodeName) {
    const node = o.node(nodeName);
    if (!node) {
      return {
        keep: false,
        force: true,
        reason: Reason.NodeLost,
        message: `node ${nodeName} is gone`,
        replacement: true,
      };
    }
    const ready = nodeReady(node);
    if (ready && ready.status !== "True") {
      const since = time(ready.lastTransitionTime);
      const left = since + opts.nodeNotReadyGraceMs - now.getTime();
      if (left <= 0) {
        return {
          keep: false,
          force: true,
          reason: Reason.NodeNotReady,
          message: `node ${nodeName} NotReady for more than ${Math.round(opts.nodeNotReadyGraceMs / 1000)}s`,
          replacement: true,
        };
      }
      return { keep: true, requeueMs: left };
    }
  }
  if (desired && specHashOf(pod) !== specHashOf(desired)) {
    if (o.rollout && !pod.metadata?.deletionTimestamp) {
      const d = rolloutDecision(o.peer.metadata.name, o.rollout.peers, o.rollout.maxUnavailable);
      if (!d.replace) return { keep: true, requeueMs: opts.rolloutRecheckMs, outdated: d.message };
    }
    return {
      keep: false,
      force: !nodeName,
      reason: Reason.SpecChanged,
      message: `pod ${name} runs an outdated spec`,
      replacement: false,
    };
  }
  return { keep: true };
}

function peerConditions(
  notRunning: DesiredCondition | undefined,
  pod: V1Pod | undefined,
  justCreated: boolean,
  o: PeerObservation,
): DesiredCondition[] {
  if (!pod) {
    const why = notRunning ?? { status: "False" as const, reason: Reason.NoPod, message: "no worker pod" };
    return [
      { type: PeerCondition.Scheduled, status: "False", reason: why.reason, message: why.message },
      { type: PeerCondition.Ready, status: "False", reason: why.reason, message: why.message },
    ];
  }
  const name = pod.metadata?.name ?? "";
  const nodeName = pod.spec?.nodeName;
  if (justCreated || !nodeName) {
    const unsched = podCondition(pod, "PodScheduled");
    const message = unsched?.message
      ? `pod ${name}: ${unsched.message}`
      : `pod ${name} is waiting for a node`;
    return [
      { type: PeerCondition.Scheduled, status: "False", reason: Reason.PodPending, message },
      { type: PeerCondition.Ready, status: "False", reason: Reason.PodPending, message },
    ];
  }
  const scheduled: DesiredCondition = {
    type: PeerCondition.Scheduled,
    status: "True",
    reason: Reason.PodScheduled,
    message: `pod ${name} on node ${nodeName}`,
  };
  const node = o.node(nodeName);
  if (node && nodeReady(node)?.status !== "True") {
    return [
      scheduled,
      {
        type: PeerCondition.Ready,
        status: "False",
        reason: Reason.NodeNotReady,
        message: `node ${nodeName} is not Ready`,
      },
    ];
  }
  const ready = podCondition(pod, "Ready")?.status === "True";
  if (ready)
    return [
      scheduled,
      { type: PeerCondition.Ready, status: "True", reason: Reason.PodReady, message: `pod ${name} is Ready` },
    ];
  const stuck = waitingContainer(pod);
  return [
    scheduled,
    stuck
      ? {
          type: PeerCondition.Ready,
          status: "False",
          reason: IMAGE_PROBLEMS.has(stuck.reason) ? Reason.ImageNotAvailable : Reason.PodNotReady,
          message:
            `pod ${name}: container ${stuck.container} (image ${stuck.image}) is waiting: ${stuck.reason}` +
            (stuck.message ? ` (${stuck.message})` : ""),
        }
      : {
          type: PeerCondition.Ready,
          status: "False",
          reason: Reason.PodNotReady,
          message: `pod ${name} is not Ready yet`,
        },
  ];
}

/** The kubelet's reasons for a container it cannot start because of its image. */
const IMAGE_PROBLEMS = new Set([
  "ErrImageNeverPull",
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ImageInspectError",
  "RegistryUnavailable",
]);

/**
 * The first container (init containers first) the kubelet holds in a waiting state with a
 * reason other than plain creation: what a person needs to see instead of "not Ready".
 */
function waitingContainer(
  pod: V1Pod,
): { container: string; image: string; reason: string; message?: string } | undefined {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const s of statuses) {
    const w = s.state?.waiting;
    if (!w?.reason || w.reason === "ContainerCreating" || w.reason === "PodInitializing") continue;
    const spec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (c) => c.name === s.name,
    );
    return { container: s.name, image: spec?.image ?? s.image, reason: w.reason, message: w.message };
  }
  return undefined;
}
