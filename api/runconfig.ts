/**
 * The resolved run configuration: what a worker reads from its mounted ConfigMap
 * (`/etc/covenant/run/run.json`). Defaults applied, the model preset expanded into a shape,
 * file paths of mounted credentials filled in. Everything a worker needs, nothing secret.
 *
 * Its fields fall in three groups (api/changes.ts): immutable ones; round-level
 * ones (RoundConfig), which change only by config epochs (`epochs`) that every worker adopts
 * at the same round boundary; and pod-level ones (podConfigOf) a worker reads once, whose
 * change replaces the worker pods (rolled).
 */
import { parameterCount, resolveShape, shapeProblems, type ModelPreset, type ModelShape } from "./presets.ts";
import type { TrainingRun, TrainingRunSpec } from "./trainingrun.ts";

export const RUN_CONFIG_KIND = "ResolvedRunConfig";
export const RUN_CONFIG_FILE = "run.json";
export const RUN_CONFIG_DIR = "/etc/covenant/run";
export const HOTKEY_DIR = "/etc/covenant/hotkey";
export const HOTKEY_FILE = "hotkey";
export const NATS_CREDS_DIR = "/etc/covenant/nats";
export const NATS_CREDS_FILE = "nats.creds";
export const BUS_CA_DIR = "/etc/covenant/bus-ca";
export const BUS_CA_FILE = "ca.crt";

export interface ResolvedRunConfig {
  apiVersion: string;
  kind: typeof RUN_CONFIG_KIND;
  run: { name: string; namespace: string; uid: string; generation: number };
  model: ModelShape & { preset: ModelPreset; parameters: number };
  data: TrainingRunSpec["data"];
  rounds: number;
  innerSteps: number;
  innerOptimizer: TrainingRunSpec["innerOptimizer"];
  outer: TrainingRunSpec["outer"];
  compression: TrainingRunSpec["compression"];
  aggregation: TrainingRunSpec["aggregation"];
  roundDeadlineSeconds: number;
  chain: TrainingRunSpec["chain"];
  transport: { natsUrl: string; credentialsFile?: string };
  checkpoints: TrainingRunSpec["checkpoints"];
  validator: TrainingRunSpec["validator"];
  /**
   * The config epochs, oldest first (written by the operator; at most MAX_CONFIG_EPOCHS).
   * Absent: one epoch from round 0 with the round-level fields above.
   */
  epochs?: ConfigEpoch[];
}

/** The round-level fields: they change only at a round boundary, for every worker at once. */
export const ROUND_CONFIG_FIELDS = [
  "rounds",
  "innerSteps",
  "innerOptimizer",
  "outer",
  "aggregation",
  "roundDeadlineSeconds",
  "checkpoints",
  "validator",
] as const satisfies readonly (keyof ResolvedRunConfig)[];
export type RoundConfig = Pick<ResolvedRunConfig, (typeof ROUND_CONFIG_FIELDS)[number]>;

/** A config epoch: the round-level config in force from `fromRound` on (until a later epoch's). */
export interface ConfigEpoch {
  /** Numbered from 1. */
  epoch: number;
  fromRound: number;
  /** roundConfigDigest(config): SHA-256 hex of its canonical JSON. */
  digest: string;
  config: RoundConfig;
}

/**
 * Rounds between the round a change is seen in and the first round of its epoch. The kubelet
 * refreshes a mounted ConfigMap within about a minute; two rounds cover that for rounds of
 * minutes, and a worker that is later still never applies a round differently (the
 * validator's selection names the config digest and peers wait for it).
 */
export const CONFIG_EPOCH_MARGIN = 2;

/** Epochs kept in the run config: enough for a worker replaying rounds since a checkpoint. */
export const MAX_CONFIG_EPOCHS = 16;

export function roundConfigOf(c: RoundConfig): RoundConfig {
  const out: Record<string, unknown> = {};
  for (const k of ROUND_CONFIG_FIELDS) out[k] = structuredClone(c[k]);
  return out as RoundConfig;
}

/** The fields a worker reads once at start: a change needs new pods (in the pod spec hash). */
export function podConfigOf(spec: TrainingRunSpec): Record<string, unknown> {
  return {
    natsUrl: spec.transport.natsUrl,
    credentialsSecretRef: spec.transport.credentialsSecretRef,
    caSecretRef: spec.transport.caSecretRef,
    chainEndpoint: spec.chain.endpoint,
    chainRegister: spec.chain.register,
  };
}

/** The config map name of a run. */
export const runConfigMapName = (run: string): string => `${run}-run-config`;

export type ResolveResult = { ok: true; config: ResolvedRunConfig } | { ok: false; problems: string[] };

/** Resolves a defaulted TrainingRun; problems name the field when the spec cannot run. */
export function resolveRunConfig(run: TrainingRun): ResolveResult {
  const s = run.spec;
  const { preset, ...overrides } = s.model;
  const shape = resolveShape(preset, overrides);
  const problems = shapeProblems(shape);
  const c = s.compression;
  if (c.topK > c.chunk * c.chunk) problems.push(`spec.compression.topK (${c.topK}) exceeds chunk*chunk`);
  if (c.topK % 2 !== 0) problems.push(`spec.compression.topK (${c.topK}) must be even`);
  if (s.aggregation.minPeers > s.aggregation.gatherPeers + s.aggregation.reserves) {
    problems.push("spec.aggregation.minPeers must not exceed gatherPeers + reserves");
  }
  if (problems.length > 0) return { ok: false, problems };
  const transport: ResolvedRunConfig["transport"] = { natsUrl: s.transport.natsUrl };
  if (s.transport.credentialsSecretRef) transport.credentialsFile = `${NATS_CREDS_DIR}/${NATS_CREDS_FILE}`;
  return {
    ok: true,
    config: {
      apiVersion: run.apiVersion,
      kind: RUN_CONFIG_KIND,
      run: {
        name: run.metadata.name,
        namespace: run.metadata.namespace ?? "default",
        uid: run.metadata.uid ?? "",
        generation: run.metadata.generation ?? 0,
      },
      model: { preset, ...shape, parameters: parameterCount(shape) },
      data: s.data,
      rounds: s.rounds,
      innerSteps: s.innerSteps,
      innerOptimizer: s.innerOptimizer,
      outer: s.outer,
      compression: s.compression,
      aggregation: s.aggregation,
      roundDeadlineSeconds: s.roundDeadlineSeconds,
      chain: s.chain,
      transport,
      checkpoints: s.checkpoints,
      validator: s.validator,
    },
  };
}
