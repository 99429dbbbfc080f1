/**
 * The CovenantPeer controller: reads the peer, its run, its pods and their nodes from the
 * caches, asks planPeer what to do, and does it (deletions, one apply, one status write,
 * then Events). Idempotent: it can stop at any line and the next reconcile converges.
 */
import type { KubernetesObject, V1ConfigMap, V1Node, V1Pod } from "@kubernetes/client-node";
import {
  API_VERSION,
  COVENANT_PEER_KIND,
  FieldManager,
  Label,
  applyDefaults,
  covenantPeerSchema,
  runConfigMapName,
  trainingRunSchema,
  type CovenantPeer,
  type CovenantPeerStatus,
  type TrainingRun,
} from "../../api/index.ts";
import {
  CORE,
  applyObject,
  applyStatus,
  type Controller,
  type Informer,
  type Manager,
  type ReconcileContext,
  type ReconcileRequest,
  type ReconcileResult,
} from "../kube/index.ts";
import { deletePod } from "./kubeops.ts";
import type { ControllerOptions } from "./options.ts";
import { planPeer } from "./peerplan.ts";
import type { RolloutPeer } from "./rollout.ts";
import { COVENANT_PEERS } from "./resources.ts";
import { statusChanged } from "./status.ts";
import { desiredWorkerPod, specHashOf, workerSelector } from "./workerpod.ts";

export interface Informers {
  runs: Informer<TrainingRun>;
  peers: Informer<CovenantPeer>;
  pods: Informer<V1Pod>;
  nodes: Informer<V1Node>;
  configMaps: Informer<V1ConfigMap>;
}

const PEER_STATUS_FIELDS = [
  "observedGeneration",
  "conditions",
  "podName",
  "nodeName",
  "podReplacements",
] as const;

export function addPeerController(
  mgr: Manager,
  inf: Informers,
  opts: ControllerOptions,
): Controller<CovenantPeer> {
  const peersOfRun = (o: KubernetesObject, runName?: string) => {
    const run = runName ?? o.metadata?.name;
    return inf.peers.store
      .list(o.metadata?.namespace)
      .filter((p) => p.spec?.runRef?.name === run)
      .map((p) => ({ namespace: p.metadata.namespace, name: p.metadata.name }));
  };
  return mgr.addController<CovenantPeer>({
    name: "peer",
    workers: 4,
    fieldManager: FieldManager.CovenantPeer,
    for: inf.peers,
    owns: [inf.pods as unknown as Informer<KubernetesObject>],
    watches: [
      { informer: inf.runs as unknown as Informer<KubernetesObject>, map: (o) => peersOfRun(o) },
      {
        informer: inf.configMaps as unknown as Informer<KubernetesObject>,
        map: (o) => {
          const run = o.metadata?.labels?.[Label.Run];
          return run ? peersOfRun(o, run) : [];
        },
      },
      {
        // A node event concerns the peers whose pods run there.
        informer: inf.nodes as unknown as Informer<KubernetesObject>,
        map: (node) =>
          inf.pods.store
            .list()
            .filter((p) => p.spec?.nodeName === node.metadata?.name && p.metadata?.labels?.[Label.Peer])
            .map((p) => ({ namespace: p.metadata?.namespace, name: p.metadata!.labels![Label.Peer]! })),
      },
      {
        // Pods whose peer is gone (no owner to map to) still wake the peer's key.
        informer: inf.pods as unknown as Informer<KubernetesObject>,
        map: (p) => {
          const peer = p.metadata?.labels?.[Label.Peer];
          return peer ? [{ namespace: p.metadata?.namespace, name: peer }] : [];
        },
      },
    ],
    reconcile: (req, ctx) => reconcilePeer(req, ctx, inf, opts),
  });
}

export async function reconcilePeer(
  req: ReconcileRequest,
  ctx: ReconcileContext,
  inf: Informers,
  opts: ControllerOptions,
): Promise<ReconcileResult> {
  const ns = req.namespace ?? "default";
  const cached = inf.peers.store.getByName(ns, req.name);
  const pods = inf.pods.store.listByLabels(workerSelector(req.name), ns);
  if (!cached) {
    // Deleted: owned pods go with the garbage collector; delete them here too, so that a
    // cluster without one (or a pod that lost its owner reference) converges as well.
    for (const pod of pods) {
      if (await deletePod(ctx.client, pod, !pod.spec?.nodeName)) {
        ctx.log.info("deleted worker pod of a deleted peer", { pod: pod.metadata?.name });
      }
    }
    return;
  }
  if (cached.metadata.deletionTimestamp) return;
  const peer = applyDefaults(covenantPeerSchema.json, cached);
  const runName = peer.spec.runRef.name;
  const cachedRun = inf.runs.store.getByName(ns, runName);
  const run = cachedRun ? applyDefaults(trainingRunSchema.json, cachedRun) : undefined;
  const runConfigReady = inf.configMaps.store.getByName(ns, runConfigMapName(runName)) !== undefined;
  // The Secret matters only when a pod has to be created; it is never read otherwise.
  const hasLivePod = pods.some((p) => !p.metadata?.deletionTimestamp);
  const hotkeySecretExists =
    hasLivePod ||
    (await ctx.client.getOrUndefined(CORE.secrets, ns, peer.spec.hotkeySecretRef.name)) !== undefined;

  const plan = planPeer(
    {
      peer,
      run,
      runConfigReady,
      hotkeySecretExists,
      pods,
      node: (n) => inf.nodes.store.getByName(undefined, n),
      // The other peers matter only when this peer's pod is outdated (rare): skip the work otherwise.
      rollout:
        run && hasOutdatedPod(peer, run, pods, opts)
          ? { peers: rolloutPeers(inf, run, opts), maxUnavailable: run.spec.rollout.maxUnavailable }
          : undefined,
    },
    opts,
  );

  for (const d of plan.deletions) {
    await deletePod(ctx.client, d.pod, d.force);
    ctx.log.info("deleted worker pod", { pod: d.pod.metadata?.name, reason: d.reason, force: d.force });
  }
  if (plan.apply && (await podExistsUncached(ctx, plan.apply))) {
    // The pod cache is behind the server (our own create has not arrived yet): a plan made
    // from it would re-apply the pod and write status from a stale picture. Its watch event
    // is on the way and wakes this key; the requeue is a safety net.
    ctx.log.debug("pod exists but is not cached yet; waiting for the cache", {
      pod: plan.apply.metadata?.name,
    });
    return { requeueAfterMs: 1000 };
  }
  if (plan.apply) {
    await applyObject(ctx.client, CORE.pods, plan.apply, { fieldManager: ctx.fieldManager });
    ctx.log.info("applied worker pod", { pod: plan.apply.metadata?.name });
  }
  if (statusChanged<CovenantPeerStatus>(peer.status, plan.status, PEER_STATUS_FIELDS)) {
    await applyStatus(
      ctx.client,
      COVENANT_PEERS,
      {
        apiVersion: API_VERSION,
        kind: COVENANT_PEER_KIND,
        metadata: { name: req.name, namespace: ns },
        status: plan.status,
      },
      { fieldManager: ctx.fieldManager },
    );
  }
  for (const e of plan.events) ctx.recorder.event(cached, e.type, e.reason, e.message);
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

function hasOutdatedPod(
  peer: CovenantPeer,
  run: TrainingRun,
  pods: V1Pod[],
  opts: ControllerOptions,
): boolean {
  const want = specHashOf(desiredWorkerPod(peer, run, opts));
  return pods.some((p) => !p.metadata?.deletionTimestamp && specHashOf(p) !== want);
}

/** The run's peers in its namespace as the rollout bound sees them (suspended ones take no part). */
function rolloutPeers(inf: Informers, run: TrainingRun, opts: ControllerOptions): RolloutPeer[] {
  const ns = run.metadata.namespace ?? "default";
  const out: RolloutPeer[] = [];
  for (const cached of inf.peers.store.list(ns)) {
    if (cached.spec?.runRef?.name !== run.metadata.name || cached.metadata.deletionTimestamp) continue;
    const peer = applyDefaults(covenantPeerSchema.json, cached);
    if (peer.spec.suspend) continue;
    const want = specHashOf(desiredWorkerPod(peer, run, opts));
    const live = inf.pods.store
      .listByLabels(workerSelector(peer.metadata.name), ns)
      .filter((p) => !p.metadata?.deletionTimestamp);
    out.push({
      name: peer.metadata.name,
      available: live.some((p) =>
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      ),
      outdated: live.some((p) => specHashOf(p) !== want),
    });
  }
  return out;
}

/** A read past the cache, made only before creating a pod (rare), so that a lagging cache never recreates one. */
async function podExistsUncached(ctx: ReconcileContext, pod: V1Pod): Promise<boolean> {
  const live = await ctx.client.getOrUndefined<V1Pod>(
    CORE.pods,
    pod.metadata?.namespace,
    pod.metadata!.name!,
  );
  return live !== undefined;
}
