/**
 * What happens when a field of a live TrainingRun changes: one table, the source of the
 * immutability rules in the CRD (their messages say why), of the round-level config the
 * workers adopt at a round boundary (runconfig.ts), and of the table in docs/api.md.
 * docs/decisions/run-changes.md explains the choices.
 */

export const CHANGE_KINDS = {
  immutable: "refused by the API server: every peer must share it for the whole run",
  epoch:
    "adopted by every worker at the same round boundary (a config epoch, status.configEpoch), without new pods",
  rollout: "needs new worker pods: replaced at most spec.rollout.maxUnavailable at a time",
  operator: "read by the operator at its next reconcile; workers do not use it",
} as const;
export type ChangeKind = keyof typeof CHANGE_KINDS;

export interface FieldChange {
  /** Path of the field in the TrainingRun; the entry covers everything under it. */
  field: string;
  change: ChangeKind;
  why: string;
}

export const RUN_FIELD_CHANGES: readonly FieldChange[] = [
  {
    field: "spec.model",
    change: "immutable",
    why: "the weights of a run have one shape; start a new run to change it",
  },
  {
    field: "spec.data.source",
    change: "immutable",
    why: "every peer must train and be scored on the same corpus",
  },
  {
    field: "spec.data.shards",
    change: "immutable",
    why: "shard assignment and data order of every peer depend on it",
  },
  {
    field: "spec.data.sequenceLength",
    change: "immutable",
    why: "the sequences every peer samples and the validator evaluates are cut by it",
  },
  {
    field: "spec.rounds",
    change: "epoch",
    why: "when the workers stop; the learning-rate schedule spans rounds x innerSteps",
  },
  { field: "spec.innerSteps", change: "epoch", why: "each miner's H from the epoch's first round on" },
  {
    field: "spec.innerOptimizer",
    change: "epoch",
    why: "each miner rebuilds its inner optimizer with the new settings, keeping its moments and step",
  },
  {
    field: "spec.outer",
    change: "epoch",
    why:
      "every peer applies the outer step of a round with the config the validator's signed selection names; " +
      "a change of spec.outer.optimizer starts (nesterov, from zero) or drops (sgd) the outer momentum at that round",
  },
  {
    field: "spec.compression",
    change: "immutable",
    why: "every peer must encode and decode payloads the same way (sparse or dense, spec.compression.mode)",
  },
  {
    field: "spec.aggregation.gatherPeers",
    change: "epoch",
    why: "the validator selects with the epoch's settings",
  },
  {
    field: "spec.aggregation.reserves",
    change: "epoch",
    why: "the validator selects with the epoch's settings",
  },
  {
    field: "spec.aggregation.minPeers",
    change: "epoch",
    why: "the validator holds rounds for the epoch's quorum",
  },
  {
    field: "spec.aggregation.normClip",
    change: "immutable",
    why: "every peer must aggregate the same way, or their weights differ",
  },
  {
    field: "spec.roundDeadlineSeconds",
    change: "epoch",
    why: "the validator closes each round by the epoch's deadline",
  },
  {
    field: "spec.chain.endpoint",
    change: "rollout",
    why: "where a worker reaches the chain (it may differ by cluster); workers connect once",
  },
  {
    field: "spec.chain.netuid",
    change: "immutable",
    why: "identities, registration and weights of the run live on one subnet",
  },
  {
    field: "spec.chain.register",
    change: "rollout",
    why: "read by the worker's chain duties when they start",
  },
  {
    field: "spec.transport",
    change: "rollout",
    why: "where a worker reaches the run's bus (it may differ by cluster); workers connect once",
  },
  { field: "spec.worker", change: "rollout", why: "image, command and resources of the worker pods" },
  {
    field: "spec.checkpoints",
    change: "epoch",
    why: "the validator checkpoints by the epoch's settings",
  },
  { field: "spec.validator", change: "epoch", why: "the validator scores by the epoch's settings" },
  {
    field: "spec.membership",
    change: "operator",
    why: "the membership keeper reads the graces at every pass",
  },
  { field: "spec.rollout", change: "operator", why: "bounds the next pod replacements" },
  { field: "spec.suspend", change: "operator", why: "pods are removed or created again" },
];

/** The entry of a field (exact path). */
export function fieldChange(field: string): FieldChange {
  const c = RUN_FIELD_CHANGES.find((c) => c.field === field);
  if (!c) throw new Error(`${field} is not in RUN_FIELD_CHANGES`);
  return c;
}

/** The CEL rule that makes a field immutable, with the message saying why. */
export function immutableRule(field: string): { rule: string; message: string } {
  const c = fieldChange(field);
  if (c.change !== "immutable") throw new Error(`${field} is ${c.change}, not immutable`);
  return { rule: "self == oldSelf", message: `${field} is immutable: ${c.why}` };
}
