/**
 * The resolved run configuration: what a worker reads from its mounted ConfigMap
 * (`/etc/covenant/run/run.json`). Defaults applied, the model preset expanded into a shape,
 * file paths of mounted credentials filled in. Everything a worker needs, nothing secret.
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
