/** covenant.io/v1alpha1: the TrainingRun and CovenantPeer APIs. */
export * from "./common.ts";
export * from "./covenantpeer.ts";
export * from "./presets.ts";
export * from "./reasons.ts";
export * from "./trainingrun.ts";
export { applyDefaults } from "./defaults.ts";
export { COVENANT_PEER, TRAINING_RUN, KINDS, crdFor } from "./crd.ts";
export * from "./runconfig.ts";
export * from "./changes.ts";
