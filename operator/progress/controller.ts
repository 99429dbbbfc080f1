// The run-progress controller: one BusProgressWatcher per TrainingRun, and the
// run's round, round timing and membership written to its status with its own
// field manager (the TrainingRun controller owns the phase and conditions, and
// derives Completed from the round this controller writes).
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { API_VERSION, TRAINING_RUN_KIND, type TrainingRun } from "../api/index.ts";
import { applyStatus, type Controller, type Informer, type Logger, type Manager } from "../kube/index.ts";
import { TRAINING_RUNS } from "../controllers/resources.ts";
import { planProgress, progressChanged } from "./plan.ts";
import { BusProgressWatcher } from "./watcher.ts";

export const PROGRESS_FIELD_MANAGER = "covenant-progress-controller";

export interface ProgressOptions {
  /** NATS user nkey seed of the operator (the runs' accounts grant it read access). */
  natsSeed: string;
  /** Safety-net resync of each run's status. */
  resyncMs?: number;
}

export function addProgressController(
  mgr: Manager,
  runs: Informer<TrainingRun>,
  opts: ProgressOptions,
  log: Logger,
): Controller<TrainingRun> {
  const connections = new Map<string, Promise<NatsConnection>>();
  const watchers = new Map<string, { url: string; watcher: BusProgressWatcher }>();
  const connection = (url: string) => {
    let c = connections.get(url);
    if (!c) {
      c = connect({
        servers: url,
        name: "covenant-operator",
        authenticator: nkeyAuthenticator(new TextEncoder().encode(opts.natsSeed)),
        maxReconnectAttempts: -1,
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
    reconcile: async (req, ctx) => {
      const key = `${req.namespace}/${req.name}`;
      const run = runs.store.getByName(req.namespace ?? "default", req.name);
      const url = run?.spec?.transport?.natsUrl;
      const existing = watchers.get(key);
      if (!run || run.metadata.deletionTimestamp || !url || existing?.url !== url) {
        existing?.watcher.stop();
        watchers.delete(key);
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
      return { requeueAfterMs: opts.resyncMs ?? 30_000 };
    },
  });
  return controller;
}
