/** Where the covenant kinds live in the API, for the controller runtime. */
import { COVENANT_PEER, GROUP, TRAINING_RUN, VERSION } from "../../api/index.ts";
import type { ResourceRef } from "../kube/index.ts";

export const TRAINING_RUNS: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: TRAINING_RUN.plural,
  kind: TRAINING_RUN.kind,
  namespaced: true,
};

export const COVENANT_PEERS: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: COVENANT_PEER.plural,
  kind: COVENANT_PEER.kind,
  namespaced: true,
};
