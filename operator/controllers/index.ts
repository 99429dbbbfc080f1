/** The operator's controllers on the runtime: shared informers, then one controller per kind. */
import type { V1ConfigMap, V1Node, V1Pod } from "@kubernetes/client-node";
import { Label, MANAGED_BY, type CovenantPeer, type TrainingRun } from "../../api/index.ts";
import { CORE, type Manager } from "../kube/index.ts";
import { controllerOptions, type ControllerOptions } from "./options.ts";
import { addPeerController, type Informers } from "./peer-controller.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "./resources.ts";
import { addRunController } from "./run-controller.ts";

export { controllerOptions, DEFAULT_CONTROLLER_OPTIONS, type ControllerOptions } from "./options.ts";

export function registerControllers(mgr: Manager, partial: Partial<ControllerOptions> = {}) {
  const opts = controllerOptions(partial);
  const managed = `${Label.ManagedBy}=${MANAGED_BY}`;
  const inf: Informers = {
    runs: mgr.informer<TrainingRun>(TRAINING_RUNS),
    peers: mgr.informer<CovenantPeer>(COVENANT_PEERS),
    pods: mgr.informer<V1Pod>(CORE.pods, { labelSelector: `${managed},${Label.Component}=worker` }),
    nodes: mgr.informer<V1Node>(CORE.nodes),
    configMaps: mgr.informer<V1ConfigMap>(CORE.configMaps, {
      labelSelector: `${managed},${Label.Component}=run-config`,
    }),
  };
  return { informers: inf, peer: addPeerController(mgr, inf, opts), run: addRunController(mgr, inf, opts) };
}
