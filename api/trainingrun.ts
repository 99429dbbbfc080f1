/** TrainingRun (covenant.io/v1alpha1): one model trained together by many peers. */
import type { API_VERSION } from "./common.ts";
import {
  conditionsSchema,
  nodeSelectorSchema,
  resourcesSchema,
  secretKeyRefSchema,
  tolerationsSchema,
  type ObjectMeta,
} from "./common.ts";
import { immutableRule } from "./changes.ts";
import { MODEL_PRESETS } from "./presets.ts";
import { RUN_PHASES } from "./reasons.ts";
import {
  array,
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

export const TRAINING_RUN_KIND = "TrainingRun";

const positiveInt = (description: string, max: number, dflt: number) =>
  integer(description, { minimum: 1, maximum: max, default: dflt });

export const modelSchema = object(
  "The model being trained: a LLaMA-3 style preset, optionally with overrides of its shape.",
  {
    preset: required(
      enumeration("Named model shape; llama3-tiny is for CPU tests and demos.", MODEL_PRESETS),
    ),
    layers: integer("Override: number of transformer blocks.", { minimum: 1, maximum: 256, format: "int32" }),
    hidden: integer("Override: model (embedding) width.", { minimum: 8, maximum: 65536, format: "int32" }),
    heads: integer("Override: attention heads.", { minimum: 1, maximum: 1024, format: "int32" }),
    kvHeads: integer("Override: key/value heads (grouped-query attention).", {
      minimum: 1,
      maximum: 1024,
      format: "int32",
    }),
    ffn: integer("Override: SwiGLU hidden width.", { minimum: 8, maximum: 262144, format: "int32" }),
    vocab: integer("Override: vocabulary size.", { minimum: 2, maximum: 1048576, format: "int32" }),
    ropeTheta: number("Override: RoPE base frequency.", { minimum: 1, maximum: 1e9 }),
    normEps: number("Override: RMSNorm epsilon.", { minimum: 1e-12, maximum: 0.1 }),
  },
  {
    rules: [
      immutableRule("spec.model"),
      {
        rule: "!has(self.hidden) || !has(self.heads) || self.hidden % self.heads == 0",
        message: "spec.model.hidden must be divisible by spec.model.heads",
        fieldPath: ".hidden",
      },
      {
        rule: "!has(self.heads) || !has(self.kvHeads) || self.heads % self.kvHeads == 0",
        message: "spec.model.heads must be divisible by spec.model.kvHeads",
        fieldPath: ".kvHeads",
      },
    ],
  },
);

export const dataSchema = object("Where the tokenized training data comes from.", {
  source: required(
    string("URI of the pre-tokenized shards, e.g. nats://bucket/prefix, https://host/path or file:///path.", {
      minLength: 1,
      maxLength: 2048,
      pattern: "^[a-z][a-z0-9+.-]*://.+$",
      rules: [immutableRule("spec.data.source")],
    }),
  ),
  shards: required(
    integer("Number of shards in the corpus.", {
      minimum: 1,
      maximum: 10000000,
      rules: [immutableRule("spec.data.shards")],
    }),
  ),
  sequenceLength: integer("Tokens per training sequence.", {
    minimum: 16,
    maximum: 131072,
    default: 2048,
    format: "int32",
    rules: [immutableRule("spec.data.sequenceLength")],
  }),
});

export const innerOptimizerSchema = object(
  "The optimizer each peer runs for its H inner steps.",
  {
    algorithm: enumeration("Inner optimizer.", ["AdamW"] as const, { default: "AdamW" }),
    learningRate: number("Peak learning rate.", {
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 1,
      default: 0.0004,
    }),
    beta1: number("AdamW beta1.", { minimum: 0, maximum: 0.9999, default: 0.9 }),
    beta2: number("AdamW beta2.", { minimum: 0, maximum: 0.99999, default: 0.95 }),
    epsilon: number("AdamW epsilon.", { minimum: 0, exclusiveMinimum: true, maximum: 0.001, default: 1e-8 }),
    weightDecay: number("Decoupled weight decay.", { minimum: 0, maximum: 1, default: 0.1 }),
    gradClip: number("Global gradient-norm clip; 0 disables it.", { minimum: 0, maximum: 1000, default: 1 }),
    batchSize: integer("Sequences per inner step per peer.", {
      minimum: 1,
      maximum: 65536,
      default: 8,
      format: "int32",
    }),
    schedule: object(
      "Learning-rate schedule over the run's inner steps.",
      {
        kind: enumeration("Shape of the schedule.", ["constant", "cosine", "linear"] as const, {
          default: "cosine",
        }),
        warmupSteps: integer("Linear warm-up steps.", { minimum: 0, maximum: 10000000, default: 0 }),
        minRatio: number("Final learning rate as a fraction of the peak.", {
          minimum: 0,
          maximum: 1,
          default: 0.1,
        }),
      },
      { default: {} },
    ),
  },
  { default: {} },
);

export const OUTER_OPTIMIZERS = ["sgd", "nesterov"] as const;
export type OuterOptimizer = (typeof OUTER_OPTIMIZERS)[number];

export const outerSchema = object(
  "The outer step every peer applies to the aggregated pseudo-gradients.",
  {
    learningRate: number("Outer learning rate lr of the outer step.", {
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 10,
      default: 1,
    }),
    optimizer: enumeration(
      "Outer optimizer. sgd (SparseLoCo): theta -= lr * g. nesterov (DiLoCo): v = momentum * v + g, " +
        "theta -= lr * (g + momentum * v), with the momentum buffer v held by every peer and in the " +
        "validator's checkpoints; a round that aggregates nothing leaves v unchanged (docs/worker.md).",
      OUTER_OPTIMIZERS,
      { default: "sgd" },
    ),
    momentum: number("Momentum of the nesterov outer optimizer (DiLoCo uses 0.9); ignored with sgd.", {
      minimum: 0,
      maximum: 0.999,
      default: 0.9,
    }),
    warmupRounds: integer("Rounds at the start of the run that aggregate nothing (null rounds).", {
      minimum: 0,
      maximum: 1000,
      default: 2,
      format: "int32",
    }),
  },
  { default: {} },
);

export const COMPRESSION_MODES = ["sparseloco", "none"] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];

export const compressionSchema = object(
  "Compression of pseudo-gradients. sparseloco: chunked top-k, quantized values, error feedback " +
    "(SparseLoCo). none: dense fp32 pseudo-gradients without error feedback, the DiLoCo and dense " +
    "baselines (wire format 3, docs/wire-format.md); the other fields are then ignored.",
  {
    mode: enumeration(
      "sparseloco (SparseLoCo, the default) or none (dense fp32 pseudo-gradients, no error feedback: " +
        "the baseline SparseLoCo is compared with; with nesterov outer steps it is DiLoCo). With none, " +
        "chunk, topK, valueBits, errorFeedbackDecay and wireFormat are ignored.",
      COMPRESSION_MODES,
      { default: "sparseloco" },
    ),
    chunk: integer(
      "Side of a chunk: 2-D weights are cut into chunk x chunk tiles, 1-D tensors into runs of chunk " +
        "(sparseloco only).",
      {
        minimum: 2,
        maximum: 256,
        default: 64,
        format: "int32",
      },
    ),
    topK: integer("Values kept per chunk; even and at most chunk*chunk (sparseloco only).", {
      minimum: 2,
      maximum: 65536,
      default: 64,
      format: "int32",
    }),
    valueBits: integer("Bits per kept value (sparseloco only).", {
      enum: [2, 4, 8],
      default: 2,
      format: "int32",
    }),
    errorFeedbackDecay: number(
      "Decay beta of the error-feedback buffer (e = beta*e + delta; sparseloco only).",
      {
        minimum: 0,
        maximum: 1,
        default: 0.95,
      },
    ),
    wireFormat: integer(
      "Wire format of sparseloco payloads: 1 (12-bit indices) or 2 (Elias-Fano indices). Dense payloads " +
        "(mode none) are always format 3.",
      { enum: [1, 2], default: 2, format: "int32" },
    ),
  },
  {
    default: {},
    rules: [
      immutableRule("spec.compression"),
      { rule: "self.topK % 2 == 0", message: "spec.compression.topK must be even", fieldPath: ".topK" },
      {
        rule: "self.topK <= self.chunk * self.chunk",
        message: "spec.compression.topK must be at most chunk*chunk (the size of a 2-D tile)",
        fieldPath: ".topK",
      },
    ],
  },
);

export const aggregationSchema = object(
  "How the selected pseudo-gradients are combined each round.",
  {
    gatherPeers: positiveInt("Peers G whose payloads are aggregated each round.", 256, 20),
    reserves: integer("Extra peers selected to replace late or invalid ones.", {
      minimum: 0,
      maximum: 256,
      default: 10,
    }),
    minPeers: positiveInt("Ready peers needed before rounds run.", 256, 1),
    normClip: enumeration("Per-peer norm clipping before the mean.", ["median", "none"] as const, {
      default: "median",
      rules: [immutableRule("spec.aggregation.normClip")],
    }),
  },
  {
    default: {},
    rules: [
      {
        rule: "self.minPeers <= self.gatherPeers + self.reserves",
        message: "spec.aggregation.minPeers must not exceed gatherPeers + reserves",
        fieldPath: ".minPeers",
      },
    ],
  },
);

export const chainSchema = object("The subtensor chain that holds identities and rewards.", {
  endpoint: required(
    string("WebSocket JSON-RPC endpoint of a subtensor node.", { pattern: "^wss?://.+$", maxLength: 2048 }),
  ),
  netuid: required(
    integer("Subnet id.", {
      minimum: 0,
      maximum: 65535,
      format: "int32",
      rules: [immutableRule("spec.chain.netuid")],
    }),
  ),
  register: boolean(
    "Workers register their hotkey on the subnet by burning (burned_register) when it holds no uid.",
    { default: false },
  ),
});

export const transportSchema = object("The NATS JetStream cluster that carries payloads.", {
  natsUrl: required(
    string("NATS server URL(s), comma separated.", { pattern: "^(nats|tls|ws|wss)://.+$", maxLength: 2048 }),
  ),
  credentialsSecretRef: secretKeyRefSchema("NATS credentials (a .creds file)", "nats.creds"),
  caSecretRef: secretKeyRefSchema(
    "the CA (PEM) that signed the NATS servers' TLS certificates (a tls:// hub); mounted read-only into the worker pods",
    "ca.crt",
  ),
});

export const workerSchema = object("The worker pods every peer of this run runs.", {
  image: required(
    string("Worker image pinned by digest: repository@sha256:<64 hex>.", {
      minLength: 1,
      maxLength: 512,
      rules: [
        {
          rule: "self.matches('^[^@\\\\s]+@sha256:[0-9a-f]{64}$')",
          message: "spec.worker.image must be pinned by digest, as repository@sha256:<64 lowercase hex>",
        },
      ],
    }),
  ),
  command: array(
    "Command of the worker container; default [covenant-worker].",
    string("An argument.", { maxLength: 4096 }),
    {
      maxItems: 32,
      listType: "atomic",
    },
  ),
  args: array("Extra arguments appended to the worker's.", string("An argument.", { maxLength: 4096 }), {
    maxItems: 64,
    listType: "atomic",
  }),
  resources: resourcesSchema,
  nodeSelector: nodeSelectorSchema,
  tolerations: tolerationsSchema,
  shmSize: string("Size limit of the memory-backed /dev/shm.", {
    default: "64Gi",
    maxLength: 32,
    pattern: "^[0-9]+(Ki|Mi|Gi|Ti)?$",
  }),
});

export const checkpointsSchema = object(
  "When and how many checkpoints are kept.",
  {
    everyRounds: positiveInt("Rounds between checkpoints.", 100000, 10),
    keep: positiveInt("Checkpoints retained.", 1000, 3),
  },
  { default: {} },
);

export const validatorSchema = object(
  "Settings of the validator role.",
  {
    evaluatePeers: positiveInt("Peers scored per round.", 256, 20),
    sequences: positiveInt("Sequences of assigned and of random data per evaluation.", 1024, 8),
    setWeightsEveryRounds: positiveInt("Rounds between weight updates on chain.", 10000, 4),
    ratingFloor: number(
      "A payload is aggregated, and its peer earns weight on chain, only when the peer's rating is " +
        "positive and at least this fraction of the median positive rating of the round's candidates. " +
        "0 keeps only the positive-rating requirement (docs/security.md).",
      { minimum: 0, maximum: 1, default: 0.5 },
    ),
    minRoundScore: number(
      "A payload is aggregated only when its own round's score (relative loss improvement of a " +
        "median-clipped step on random data) exceeds this; 0: it must help the round it is sent for. " +
        "A lower score is forgiven as noise only when the step helps the submitter's own assigned data " +
        "and costs random data less than the median positive rating (docs/security.md).",
      { minimum: -1, maximum: 1, default: 0 },
    ),
    warmupRounds: integer(
      "Evaluated rounds during which a new peer is judged by its round score alone (against the " +
        "median positive round score of the other new peers) and earns no weight on chain.",
      { minimum: 0, maximum: 1000, default: 2, format: "int32" },
    ),
    copyThreshold: number(
      "Share of a payload's value mass explained by the round's earlier submissions (reused values, " +
        "or values that follow an earlier payload's levels at shared indices) that makes it a copy.",
      { minimum: 0.05, maximum: 1, default: 0.4 },
    ),
  },
  { default: {} },
);

export const membershipSchema = object(
  "When a peer is an active member of the run. A member leaves when a signal has been bad for " +
    "longer than its grace; every change bumps the membership epoch and moves data shards.",
  {
    podGraceSeconds: positiveInt("Seconds a member's worker pod may be not Ready.", 86400, 60),
    chainGraceSeconds: positiveInt("Seconds a member may be unregistered on the chain.", 86400, 120),
    heartbeatGraceSeconds: positiveInt("Seconds a member may go without a heartbeat on the bus.", 86400, 30),
    maxMissedRounds: positiveInt("Consecutive closed rounds a member may miss without submitting.", 1000, 3),
  },
  { default: {} },
);

export const rolloutSchema = object(
  "How changes that need new worker pods (spec.worker, spec.transport, spec.chain.endpoint and " +
    "spec.chain.register) reach this cluster's peers: outdated pods are replaced a few at a time.",
  {
    maxUnavailable: integer(
      "Peers of this run whose worker pod may be unavailable at once while outdated pods are " +
        "replaced. A peer that is down for another reason counts too, as in a Deployment.",
      { minimum: 1, maximum: 1024, default: 1, format: "int32" },
    ),
  },
  { default: {} },
);

export const trainingRunSpecSchema = object("Desired state of a TrainingRun.", {
  model: required(modelSchema),
  data: required(dataSchema),
  rounds: required(
    integer("Outer rounds to run before the run completes.", { minimum: 1, maximum: 1000000 }),
  ),
  innerSteps: integer("Inner optimizer steps H per round.", {
    minimum: 1,
    maximum: 10000,
    default: 30,
    format: "int32",
  }),
  innerOptimizer: innerOptimizerSchema,
  outer: outerSchema,
  compression: compressionSchema,
  aggregation: aggregationSchema,
  roundDeadlineSeconds: integer("Seconds a round may take before late payloads are ignored.", {
    minimum: 10,
    maximum: 86400,
    default: 1380,
    format: "int32",
  }),
  chain: required(chainSchema),
  transport: required(transportSchema),
  worker: required(workerSchema),
  checkpoints: checkpointsSchema,
  validator: validatorSchema,
  membership: membershipSchema,
  rollout: rolloutSchema,
  suspend: boolean("Stop the run: worker pods are removed, all state is kept.", { default: false }),
});

export const shardSummarySchema = object("Summary of the current shard assignment.", {
  total: integer("Shards in the corpus.", { minimum: 0 }),
  assigned: integer("Shards assigned to active peers.", { minimum: 0 }),
  perPeerMin: integer("Fewest shards any active peer holds.", { minimum: 0 }),
  perPeerMax: integer("Most shards any active peer holds.", { minimum: 0 }),
});

export const trainingRunStatusSchema = object("Observed state of a TrainingRun.", {
  phase: enumeration("Where the run is in its life.", RUN_PHASES),
  observedGeneration: integer("The .metadata.generation this status describes.", { minimum: 0 }),
  conditions: conditionsSchema,
  round: integer("Current outer round.", { minimum: 0 }),
  roundStartedAt: string("When the current round started.", { format: "date-time", maxLength: 64 }),
  lastRoundSeconds: number("Duration of the last completed round.", { minimum: 0 }),
  peers: integer("CovenantPeers that reference this run.", { minimum: 0 }),
  readyPeers: integer("Peers whose worker pod is Ready.", { minimum: 0 }),
  validators: integer("Peers with the validator role.", { minimum: 0 }),
  parameters: integer("Trainable parameters of the resolved model.", { minimum: 0 }),
  configMapName: string("ConfigMap holding the resolved run configuration.", { maxLength: 253 }),
  configHash: string("Hash of the resolved run configuration.", { maxLength: 64 }),
  configEpoch: object(
    "The latest config epoch: the round-level fields (docs/api.md) every worker adopts at the same " +
      "round boundary, without new pods.",
    {
      epoch: required(
        integer("Numbered from 1; bumped whenever a round-level field changes.", { minimum: 1 }),
      ),
      digest: required(
        string(
          "SHA-256 (hex) of the epoch's round-level config; the validator names it in each round's selection.",
          { maxLength: 64 },
        ),
      ),
      fromRound: required(integer("First round the epoch applies to.", { minimum: 0 })),
    },
  ),
  membershipEpoch: integer("Bumped whenever the set of active peers changes.", { minimum: 0 }),
  activePeers: array(
    "Hotkeys of the active peers (membership of the current epoch).",
    string("A hotkey (SS58).", { maxLength: 64 }),
    {
      maxItems: 1024,
      listType: "atomic",
    },
  ),
  shards: shardSummarySchema,
});

export const trainingRunSchema = withNumberBoundRules(
  object(
    "A TrainingRun: one LLaMA-3 style model trained by many peers with SparseLoCo (or its DiLoCo and " +
      "dense baselines: spec.compression.mode, spec.outer.optimizer).",
    {
      apiVersion: string("Versioned schema of this object.", { maxLength: 64 }),
      kind: string("Kind of this object.", { maxLength: 64 }),
      spec: required(trainingRunSpecSchema),
      status: trainingRunStatusSchema,
    },
    {
      rules: [
        {
          rule: "self.metadata.name.size() <= 63",
          message:
            "metadata.name of a TrainingRun must be at most 63 characters (it is used as a label value)",
        },
      ],
    },
  ),
);

export type TrainingRunSpec = Infer<typeof trainingRunSpecSchema>;
export type TrainingRunStatus = Infer<typeof trainingRunStatusSchema>;
export type ModelSpec = Infer<typeof modelSchema>;
export type CompressionSpec = Infer<typeof compressionSchema>;
export type OuterSpec = Infer<typeof outerSchema>;
export type WorkerSpec = Infer<typeof workerSchema>;

export interface TrainingRun {
  apiVersion: typeof API_VERSION;
  kind: typeof TRAINING_RUN_KIND;
  metadata: ObjectMeta;
  spec: TrainingRunSpec;
  status?: TrainingRunStatus;
}
