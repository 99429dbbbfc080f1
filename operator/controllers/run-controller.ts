/**
 * The TrainingRun controller: writes the resolved run config (ConfigMap) and aggregates the
 * run's peers into its status (phase, ready peers, conditions). One status write at most,
 * Events after it.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import {
  API_VERSION,
  FieldManager,
  TRAINING_RUN_KIND,
  applyDefaults,
  covenantPeerSchema,
  runConfigMapName,
  trainingRunSchema,
  type TrainingRunStatus,
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
import type { ControllerOptions } from "./options.ts";
import type { Informers } from "./peer-controller.ts";
import { TRAINING_RUNS } from "./resources.ts";
import { planRun } from "./runplan.ts";
import { statusChanged } from "./status.ts";
import type { TrainingRun } from "../../api/index.ts";

const RUN_STATUS_FIELDS = [
  "observedGeneration",
  "conditions",
  "phase",
  "peers",
  "readyPeers",
  "validators",
  "parameters",
  "configMapName",
  "configHash",
  "configEpoch",
] as const;

export function addRunController(
  mgr: Manager,
  inf: Informers,
  opts: ControllerOptions,
): Controller<TrainingRun> {
  return mgr.addController<TrainingRun>({
    name: "trainingrun",
    fieldManager: FieldManager.TrainingRun,
    for: inf.runs,
    owns: [inf.configMaps as unknown as Informer<KubernetesObject>],
    watches: [
      {
        informer: inf.peers as unknown as Informer<KubernetesObject>,
        map: (p) => {
          const run = (p as { spec?: { runRef?: { name?: string } } }).spec?.runRef?.name;
          return run ? [{ namespace: p.metadata?.namespace, name: run }] : [];
        },
      },
    ],
    reconcile: (req, ctx) => reconcileRun(req, ctx, inf, opts),
  });
}

export async function reconcileRun(
  req: ReconcileRequest,
  ctx: ReconcileContext,
  inf: Informers,
  opts: ControllerOptions,
): Promise<ReconcileResult> {
  const ns = req.namespace ?? "default";
  const cached = inf.runs.store.getByName(ns, req.name);
  if (!cached || cached.metadata.deletionTimestamp) return; // the ConfigMap goes with its owner
  const run = applyDefaults(trainingRunSchema.json, cached);
  const peers = inf.peers.store
    .list(ns)
    .filter((p) => p.spec?.runRef?.name === req.name)
    .map((p) => applyDefaults(covenantPeerSchema.json, p));
  const configMap = inf.configMaps.store.getByName(ns, runConfigMapName(req.name));
  const plan = planRun({ run, peers, configMap, now: opts.now() });

  if (plan.configMap)
    await applyObject(ctx.client, CORE.configMaps, plan.configMap, { fieldManager: ctx.fieldManager });
  if (statusChanged<TrainingRunStatus>(run.status, plan.status, RUN_STATUS_FIELDS)) {
    await applyStatus(
      ctx.client,
      TRAINING_RUNS,
      {
        apiVersion: API_VERSION,
        kind: TRAINING_RUN_KIND,
        metadata: { name: req.name, namespace: ns },
        status: plan.status,
      },
      { fieldManager: ctx.fieldManager },
    );
  }
  for (const e of plan.events) ctx.recorder.event(cached, e.type, e.reason, e.message);
}
