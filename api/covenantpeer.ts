/** CovenantPeer (covenant.io/v1alpha1): one 8-GPU peer a provider contributes to a run. */
import type { API_VERSION } from "./common.ts";
import {
  DNS_SUBDOMAIN,
  conditionsSchema,
  nodeSelectorSchema,
  secretKeyRefSchema,
  tolerationsSchema,
  type ObjectMeta,
} from "./common.ts";
import { PEER_ROLES } from "./reasons.ts";
import {
  boolean,
  enumeration,
  integer,
  number,
  object,
  required,
  string,
  withNumberBoundRules,
  type Infer,
} from "./schema.ts";

export const COVENANT_PEER_KIND = "CovenantPeer";

/** Longest peer name: the worker pod is named `<peer>-worker` and labelled with the peer name. */
export const MAX_PEER_NAME = 56;

export const runRefSchema = object(
  "The TrainingRun in the same namespace this peer trains.",
  {
    name: required(
      string("Name of the TrainingRun.", { minLength: 1, maxLength: 63, pattern: DNS_SUBDOMAIN }),
    ),
  },
  {
    rules: [
      { rule: "self == oldSelf", message: "spec.runRef is immutable: a peer cannot move to another run" },
    ],
  },
);

export const placementSchema = object(
  "Where the worker pod may run.",
  {
    gpuProductLabel: string("Node label that names the GPU model.", {
      default: "nvidia.com/gpu.product",
      maxLength: 316,
    }),
    gpuProduct: string('Required value of gpuProductLabel; "" places on any GPU node.', {
      default: "NVIDIA-B200",
      maxLength: 63,
    }),
    nodeSelector: nodeSelectorSchema,
    tolerations: tolerationsSchema,
  },
  { default: {} },
);

export const covenantPeerSpecSchema = object("Desired state of a CovenantPeer.", {
  runRef: required(runRefSchema),
  role: enumeration("What the peer does: miner trains, validator scores and sets weights.", PEER_ROLES, {
    default: "miner",
  }),
  hotkeySecretRef: required(secretKeyRefSchema("the peer's sr25519 hotkey seed", "hotkey")),
  gpus: integer("GPUs (nvidia.com/gpu) the worker pod requests.", {
    minimum: 1,
    maximum: 16,
    default: 8,
    format: "int32",
  }),
  placement: placementSchema,
  suspend: boolean("Remove this peer's worker pod while keeping the peer.", { default: false }),
});

export const covenantPeerStatusSchema = object("Observed state of a CovenantPeer.", {
  observedGeneration: integer("The .metadata.generation this status describes.", { minimum: 0 }),
  conditions: conditionsSchema,
  podName: string("Current worker pod.", { maxLength: 253 }),
  nodeName: string("Node the worker pod runs on.", { maxLength: 253 }),
  podReplacements: integer("Worker pods replaced because they failed or lost their node.", { minimum: 0 }),
  hotkey: string("SS58 address of the hotkey.", { maxLength: 64 }),
  uid: integer("Uid of the hotkey on the subnet.", { minimum: 0, maximum: 65535, format: "int32" }),
  stake: string("Stake on the subnet in RAO (decimal string: it exceeds 2^53).", {
    maxLength: 32,
    pattern: "^[0-9]+$",
  }),
  incentive: number("Incentive, 0..1.", { minimum: 0, maximum: 1 }),
  validatorPermit: boolean("Whether the hotkey holds a validator permit."),
  assignedShards: integer("Shards assigned to this peer in the current membership epoch.", { minimum: 0 }),
  lastSubmittedRound: integer("Last round this peer submitted a payload for.", { minimum: 0 }),
  lastSelectedRound: integer("Last round the validator selected this peer's payload.", { minimum: 0 }),
  score: number("Latest validator score."),
  missedRounds: integer("Consecutive rounds without a valid payload.", { minimum: 0 }),
});

export const covenantPeerSchema = withNumberBoundRules(
  object(
    "A CovenantPeer: one 8-GPU machine contributed to a TrainingRun.",
    {
      apiVersion: string("Versioned schema of this object.", { maxLength: 64 }),
      kind: string("Kind of this object.", { maxLength: 64 }),
      spec: required(covenantPeerSpecSchema),
      status: covenantPeerStatusSchema,
    },
    {
      rules: [
        {
          rule: `self.metadata.name.size() <= ${MAX_PEER_NAME}`,
          message: `metadata.name of a CovenantPeer must be at most ${MAX_PEER_NAME} characters (its pod is <name>-worker)`,
        },
      ],
    },
  ),
);

export type CovenantPeerSpec = Infer<typeof covenantPeerSpecSchema>;
export type CovenantPeerStatus = Infer<typeof covenantPeerStatusSchema>;

export interface CovenantPeer {
  apiVersion: typeof API_VERSION;
  kind: typeof COVENANT_PEER_KIND;
  metadata: ObjectMeta;
  spec: CovenantPeerSpec;
  status?: CovenantPeerStatus;
}
