/**
 * The transport controller: on the run organiser's operator (`--provision-bus`), keeps each
 * TrainingRun's bus objects (stream, state bucket, payload and checkpoint buckets) as
 * planned in transportplan.ts, writes the run's TransportReady condition (its own field
 * manager, one status write per reconcile, Events after it), and holds the finalizer
 * `covenant.io/bus-objects` so that a deleted run's objects leave the bus before the run
 * leaves the API.
 *
 * Order in a live run's reconcile: plan (pure), finalizer (before anything exists on the
 * bus, so nothing can be left behind), observe the bus, apply what is missing or outdated,
 * remove buckets whose grace is over, status, Events. A bus that is down turns the
 * condition False at once (the connection pool tells when a connection drops) and is
 * retried with backoff; its return is noticed by the pool too, without a restart.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  API_VERSION,
  BUS_OBJECTS_FINALIZER,
  FieldManager,
  Reason,
  TRAINING_RUN_KIND,
  applyDefaults,
  covenantPeerSchema,
  trainingRunSchema,
  type CovenantPeer,
  type TrainingRun,
  type TrainingRunStatus,
} from "../../api/index.ts";
import { BusConnectionPool } from "../bus/pool.ts";
import { deleteStreams, diffBus, observeRunBus } from "../bus/inventory.ts";
import { applyBus } from "../bus/provision.ts";
import { HotkeyResolver } from "../chain/peer-hotkeys.ts";
import { busNames } from "../../protocol/names.ts";
import {
  applyObject,
  applyStatus,
  isNotFound,
  type Controller,
  type Informer,
  type Logger,
  type Manager,
  type ReconcileContext,
  type ReconcileResult,
} from "../kube/index.ts";
import { TRAINING_RUNS } from "./resources.ts";
import { statusChanged } from "./status.ts";
import type { SubnetDirectory } from "./subnet.ts";
import {
  cleanupOrder,
  desiredBus,
  hasBusFinalizer,
  isUnreachable,
  planDepartures,
  retryAfterMs,
  safeMessage,
  transportCondition,
  transportEvents,
  transportStatus,
  type CleanupOutcome,
  type PeerHotkey,
  type TransportOutcome,
} from "./transportplan.ts";

export interface TransportOptions {
  /** NATS user nkey seed of the operator: a user of each run's account with every permission. */
  natsSeed: string;
  /** CA bundle to verify tls:// servers with. */
  natsCaFile?: string;
  /** Copies of every stream and bucket (3 on the 3-server hub). */
  replicas: number;
  /** Overrides the grace of buckets of departed hotkeys (default: the payload retention). */
  departedGraceMs?: number;
  /** The chain bridges' view of each run's subnet; without it only this cluster's peers get buckets. */
  subnets?: SubnetDirectory;
  /** Re-check of a provisioned run (a bucket deleted by hand comes back within this). */
  resyncMs?: number;
  /** Deadline of each JetStream API request. */
  requestTimeoutMs?: number;
  now?: () => number;
}

type Informers = { runs: Informer<TrainingRun>; peers: Informer<CovenantPeer> };

export function addTransportController(
  mgr: Manager,
  inf: Informers,
  opts: TransportOptions,
  log: Logger,
): Controller<TrainingRun> {
  const now = opts.now ?? Date.now;
  const resolver = new HotkeyResolver(mgr.client.withCaller("transport"));
  /** Per run: when each dropped bucket was first seen, and failures in a row (backoff). */
  const departed = new Map<string, Map<string, number>>();
  const failures = new Map<string, number>();
  /** The last failure logged per run: a bus that stays down is logged once, not at every retry. */
  const lastError = new Map<string, string>();
  const forget = (key: string) => {
    departed.delete(key);
    failures.delete(key);
    lastError.delete(key);
  };
  const logFailure = (ctx: ReconcileContext, key: string, msg: string, fields: Record<string, unknown>) => {
    const text = `${msg}: ${String(fields.error)}`;
    if (lastError.get(key) === text) ctx.log.debug(msg, fields);
    else ctx.log.warn(msg, fields);
    lastError.set(key, text);
  };

  const runsOn = (servers: string) =>
    inf.runs.store.list().filter((r) => r.spec?.transport?.natsUrl === servers);
  const pool = new BusConnectionPool({
    seed: opts.natsSeed,
    caFile: opts.natsCaFile,
    name: "covenant-operator-transport",
    onChange: (servers) => {
      log.info("bus connection changed", { up: pool.isUp(servers), runs: runsOn(servers).length });
      for (const r of runsOn(servers)) controller.enqueue(r.metadata.namespace, r.metadata.name);
    },
  });
  mgr.onStop(() => pool.close());

  const busOf = async (servers: string): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> => {
    const nc = await pool.get(servers);
    return { nc, jsm: await jetstreamManager(nc, { timeout: opts.requestTimeoutMs ?? 5_000 }) };
  };

  const peerHotkeys = async (run: TrainingRun): Promise<PeerHotkey[]> => {
    const out: PeerHotkey[] = [];
    for (const p of inf.peers.store.list(run.metadata.namespace)) {
      if (p.spec?.runRef?.name !== run.metadata.name || p.metadata.deletionTimestamp) continue;
      const peer = applyDefaults(covenantPeerSchema.json, p);
      const hotkey = await resolver.of(peer);
      if (hotkey) out.push({ hotkey, role: peer.spec.role === "validator" ? "validator" : "miner" });
    }
    return out;
  };

  const writeStatus = async (ctx: ReconcileContext, run: TrainingRun, status: TrainingRunStatus) => {
    if (!statusChanged<TrainingRunStatus>(run.status, status, ["conditions"])) return;
    await applyStatus(
      ctx.client,
      TRAINING_RUNS,
      {
        apiVersion: API_VERSION,
        kind: TRAINING_RUN_KIND,
        metadata: { name: run.metadata.name, namespace: run.metadata.namespace },
        status,
      },
      { fieldManager: ctx.fieldManager },
    );
  };

  /** Counts one more failure in a row and answers the delay before the next try. */
  const backoffMs = (key: string): number => {
    const n = (failures.get(key) ?? 0) + 1;
    failures.set(key, n);
    return retryAfterMs(n);
  };

  /** A live run: make the bus match the plan. */
  const provision = async (
    key: string,
    cached: TrainingRun,
    ctx: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const run = applyDefaults(trainingRunSchema.json, cached);
    const servers = run.spec.transport.natsUrl;
    const subnet = opts.subnets?.get(key);
    const desired = desiredBus(run, await peerHotkeys(run), subnet, {
      replicas: opts.replicas,
      departedGraceMs: opts.departedGraceMs,
    });
    let outcome: TransportOutcome;
    let requeueAfterMs: number | undefined = opts.resyncMs ?? 60_000;
    if ("error" in desired) {
      // Nothing is created for a run that cannot be planned; a spec change re-plans it.
      outcome = { kind: "invalid", message: desired.error };
      requeueAfterMs = undefined;
    } else {
      if (!hasBusFinalizer(cached)) await addFinalizer(ctx, cached);
      try {
        const { nc, jsm } = await busOf(servers);
        const have = await observeRunBus(jsm, run.metadata.name);
        const diff = diffBus(desired.plan, have);
        if (diff.apply) await applyBus(nc, diff.apply);
        const dep = planDepartures(
          diff.extra,
          departed.get(key),
          now(),
          desired.graceMs,
          subnet !== undefined,
        );
        departed.set(key, dep.since);
        await deleteStreams(jsm, dep.remove);
        outcome = {
          kind: "provisioned",
          desired,
          subnet,
          created: diff.create,
          updated: diff.update,
          removed: dep.remove,
          waiting: dep.since.size,
        };
        failures.delete(key);
        lastError.delete(key);
        if (diff.create.length || diff.update.length || dep.remove.length)
          ctx.log.info("provisioned the run's bus", {
            created: diff.create.length,
            updated: diff.update.length,
            removed: dep.remove.length,
            payloadBuckets: desired.plan.payloadBuckets.length,
            checkpointBuckets: desired.plan.checkpointBuckets.length,
          });
        if (dep.nextInMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs, dep.nextInMs + 50);
      } catch (err) {
        const unreachable = isUnreachable(err, pool.isUp(servers));
        const message = safeMessage(err);
        outcome = { kind: unreachable ? "unreachable" : "failed", message };
        logFailure(ctx, key, "provisioning the run's bus failed", { unreachable, error: message });
        requeueAfterMs = backoffMs(key);
      }
    }
    await writeStatus(ctx, run, transportStatus(run, transportCondition(outcome), new Date(now())));
    for (const e of transportEvents(outcome, run.status))
      ctx.recorder.event(cached, e.type, e.reason, e.message);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  };

  /** A run being deleted: remove everything of it from the bus, then the finalizer. */
  const cleanup = async (
    key: string,
    cached: TrainingRun,
    ctx: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const servers = cached.spec?.transport?.natsUrl;
    const name = cached.metadata.name;
    let outcome: CleanupOutcome;
    try {
      const { jsm } = await busOf(servers);
      let have = await observeRunBus(jsm, name);
      if (have.size) {
        await deleteStreams(jsm, cleanupOrder(have.keys(), busNames(name).stream));
        have = await observeRunBus(jsm, name);
      }
      if (have.size)
        throw new Error(
          `${have.size} streams of the run are still on the bus: ${[...have.keys()].join(", ")}`,
        );
      await removeFinalizer(ctx, cached);
      ctx.recorder.event(
        cached,
        "Normal",
        Reason.BusObjectsDeleted,
        "deleted the run's stream and buckets from the bus",
      );
      forget(key);
      return;
    } catch (err) {
      outcome = {
        kind: isUnreachable(err, pool.isUp(servers)) ? "unreachable" : "failed",
        message: safeMessage(err),
      };
      logFailure(ctx, key, "deleting the run's bus objects failed; the finalizer stays", {
        error: outcome.message,
      });
    }
    const c = transportCondition(outcome, true);
    const prev = cached.status?.conditions?.find((x) => x.type === c.type);
    await writeStatus(ctx, cached, transportStatus(cached, c, new Date(now())));
    if (prev?.reason !== c.reason || prev.message !== c.message)
      ctx.recorder.event(cached, "Warning", c.reason, c.message);
    return { requeueAfterMs: backoffMs(key) };
  };

  const controller: Controller<TrainingRun> = mgr.addController<TrainingRun>({
    name: "run-transport",
    fieldManager: FieldManager.Transport,
    for: inf.runs,
    watches: [
      {
        // A peer's hotkey or role decides which buckets the run needs.
        informer: inf.peers as unknown as Informer<KubernetesObject>,
        map: (p) => {
          const run = (p as unknown as CovenantPeer).spec?.runRef?.name;
          return run ? [{ namespace: p.metadata?.namespace, name: run }] : [];
        },
      },
    ],
    reconcile: async (req, ctx) => {
      const ns = req.namespace ?? "default";
      const key = `${ns}/${req.name}`;
      const cached = inf.runs.store.getByName(ns, req.name);
      if (!cached) return forget(key);
      if (cached.metadata.deletionTimestamp) {
        if (!hasBusFinalizer(cached)) return forget(key);
        return cleanup(key, cached, ctx);
      }
      return provision(key, cached, ctx);
    },
  });
  opts.subnets?.onChange((run) => {
    const [ns, name] = run.split("/", 2) as [string, string];
    controller.enqueue(ns, name);
  });
  return controller;
}

/**
 * Adds the finalizer by server-side apply under this controller's field manager: the
 * finalizers list is a set, so other finalizers are untouched and a repeat changes nothing.
 */
async function addFinalizer(ctx: ReconcileContext, run: TrainingRun): Promise<void> {
  await applyObject(
    ctx.client,
    TRAINING_RUNS,
    {
      apiVersion: API_VERSION,
      kind: TRAINING_RUN_KIND,
      metadata: {
        name: run.metadata.name,
        namespace: run.metadata.namespace,
        finalizers: [BUS_OBJECTS_FINALIZER],
      },
    } as KubernetesObject,
    { fieldManager: ctx.fieldManager },
  );
}

/**
 * Removes the finalizer with a JSON patch that tests the entry it removes, on a fresh read:
 * a stale index fails the test (and the reconcile is retried) instead of removing another
 * controller's finalizer. An object already gone is done.
 */
async function removeFinalizer(ctx: ReconcileContext, cached: TrainingRun): Promise<void> {
  const { namespace, name } = cached.metadata;
  const fresh = await ctx.client.getOrUndefined<TrainingRun & KubernetesObject>(
    TRAINING_RUNS,
    namespace,
    name,
  );
  const i = fresh?.metadata?.finalizers?.indexOf(BUS_OBJECTS_FINALIZER) ?? -1;
  if (!fresh || i < 0) return;
  try {
    await ctx.client.patch(
      TRAINING_RUNS,
      namespace,
      name,
      [
        { op: "test", path: `/metadata/finalizers/${i}`, value: BUS_OBJECTS_FINALIZER },
        { op: "remove", path: `/metadata/finalizers/${i}` },
      ],
      "json",
    );
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}
