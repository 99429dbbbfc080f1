// The run-progress controller: one BusProgressWatcher per TrainingRun, and the
// run's round, round timing and membership written to its status with its own
// field manager (the TrainingRun controller owns the phase and conditions, and
// derives Completed from the round this controller writes). With membership on, it
// also keeps the run's membership (operator/membership): who is active, published in
// the run's state bucket, with each peer's round status.
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBus } from "../../protocol/bus/connection.ts";
import { API_VERSION, TRAINING_RUN_KIND, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Counter } from "prom-client";
import { applyStatus, type Controller, type Informer, type Logger, type Manager } from "../kube/index.ts";
import { TRAINING_RUNS } from "../controllers/resources.ts";
import { HotkeyResolver } from "../chain/peer-hotkeys.ts";
import { MembershipKeeper } from "../membership/keeper.ts";
import { busNames } from "../../protocol/names.ts";
import { planProgress, progressChanged } from "./plan.ts";
import { BusProgressWatcher } from "./watcher.ts";

export const PROGRESS_FIELD_MANAGER = "covenant-progress-controller";

export interface ProgressOptions {
  /** NATS user nkey seed of the operator (the runs' accounts grant it read access). */
  natsSeed: string;
  /** CA of the bus's TLS certificates (a TLS hub); plain text without it. */
  natsCaFile?: string;
  /** Safety-net resync of each run's status. */
  resyncMs?: number;
  /**
   * Keep each run's membership (publish it in the run's state bucket). Exactly one operator
   * per run may: the run's home operator.
   */
  membership?: boolean;
  /** Counts the membership changes this operator publishes. */
  membershipChanges?: Counter<"run" | "change">;
}

export function addProgressController(
  mgr: Manager,
  inf: { runs: Informer<TrainingRun>; peers: Informer<CovenantPeer> },
  opts: ProgressOptions,
  log: Logger,
): Controller<TrainingRun> {
  const { runs } = inf;
  const connections = new Map<string, Promise<NatsConnection>>();
  const watchers = new Map<string, { url: string; watcher: BusProgressWatcher; kv?: KV }>();
  const membershipClient = mgr.client.withCaller("membership");
  const keeper = opts.membership
    ? new MembershipKeeper({
        client: membershipClient,
        recorder: mgr.recorder,
        log,
        peers: inf.peers,
        hotkeys: new HotkeyResolver(membershipClient),
        changes: opts.membershipChanges,
      })
    : undefined;
  mgr.onStop(async () => {
    for (const { watcher } of watchers.values()) watcher.stop();
    watchers.clear();
    for (const c of connections.values()) await (await c.catch(() => undefined))?.close();
  });
  const connection = (url: string) => {
    let c = connections.get(url);
    if (!c) {
      c = connectBus({
        servers: url,
        name: "covenant-operator",
        nkeySeed: opts.natsSeed,
        tls: opts.natsCaFile ? { caFile: opts.natsCaFile } : undefined,
        waitOnFirstConnect: false,
      });
      c.catch(() => connections.delete(url));
      connections.set(url, c);
    }
    return c;
  };
  const controller: Controller<TrainingRun> = mgr.addController<TrainingRun>({
    name: "run-progress",
    fieldManager: PROGRESS_FIELD_MANAGER,
    for: runs,
    watches: [
      {
        // A peer's readiness, registration or suspension can change the run's membership.
        informer: inf.peers as unknown as Informer<KubernetesObject>,
        map: (p) => {
          const run = (p as unknown as CovenantPeer).spec?.runRef?.name;
          return run ? [{ namespace: p.metadata?.namespace, name: run }] : [];
        },
      },
    ],
    reconcile: async (req, ctx) => {
      const key = `${req.namespace}/${req.name}`;
      const run = runs.store.getByName(req.namespace ?? "default", req.name);
      const url = run?.spec?.transport?.natsUrl;
      const existing = watchers.get(key);
      if (!run || run.metadata.deletionTimestamp || !url || existing?.url !== url) {
        existing?.watcher.stop();
        watchers.delete(key);
        keeper?.forget(key);
      }
      if (!run || run.metadata.deletionTimestamp || !url) return;
      let entry = watchers.get(key);
      if (!entry) {
        const watcher = new BusProgressWatcher(
          await connection(url),
          req.name,
          () => controller.enqueue(req.namespace, req.name),
          (err) => log.warn("progress watch failed", { run: key, error: String(err) }),
        );
        entry = { url, watcher };
        watchers.set(key, entry);
        try {
          await watcher.start();
        } catch (err) {
          // The run's stream may not be provisioned yet: try again shortly.
          watcher.stop();
          watchers.delete(key);
          throw err;
        }
      }
      const next = planProgress(run, entry.watcher.progress);
      if (progressChanged(run.status, next)) {
        await applyStatus(
          ctx.client,
          TRAINING_RUNS,
          {
            apiVersion: API_VERSION,
            kind: TRAINING_RUN_KIND,
            metadata: { name: req.name, namespace: req.namespace },
            status: next,
          },
          { fieldManager: ctx.fieldManager },
        );
      }
      let requeueAfterMs = opts.resyncMs ?? 30_000;
      // Membership is decided only on a complete picture of what the bus has stored.
      if (keeper && entry.watcher.caughtUp && run.status?.phase !== "Completed") {
        entry.kv ??= await new Kvm(jetstream(await connection(url))).open(busNames(req.name).stateBucket);
        const recheck = await keeper.reconcile(run, entry.kv, entry.watcher.progress);
        if (recheck !== undefined) requeueAfterMs = Math.min(requeueAfterMs, Math.max(250, recheck + 50));
      }
      return { requeueAfterMs };
    },
  });
  return controller;
}
