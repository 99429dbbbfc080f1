/**
 * Planning of a run's config epochs: when the round-level fields of the spec change, a new
 * epoch takes effect CONFIG_EPOCH_MARGIN rounds after the round the run is at, so that every
 * worker has read it (from its mounted run config) before the boundary. Pure.
 */
import {
  CONFIG_EPOCH_MARGIN,
  MAX_CONFIG_EPOCHS,
  roundConfigOf,
  type ConfigEpoch,
  type RoundConfig,
  type TrainingRunStatus,
} from "../../api/index.ts";
import { changedFields, epochProblems, roundConfigDigest } from "../../protocol/configepoch.ts";

export { CONFIG_EPOCH_MARGIN };

export interface EpochPlan {
  epochs: ConfigEpoch[];
  /** The epoch this plan adds, if any. */
  added: ConfigEpoch | undefined;
  /** Round-level fields that changed with it (empty for a run's first epoch). */
  changed: string[];
  /**
   * The stored epochs are older than the status says (the ConfigMap cache lags behind the
   * run's): nothing is to be written until the cache catches up.
   */
  stale: boolean;
}

/** The epochs listed in a stored run config (run.json), or undefined when it holds none that are valid. */
export function storedEpochs(text: string | undefined): ConfigEpoch[] | undefined {
  if (!text) return undefined;
  try {
    const epochs = (JSON.parse(text) as { epochs?: unknown }).epochs;
    return epochProblems(epochs).length === 0 ? (epochs as ConfigEpoch[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The epochs after this reconcile. `previous` comes from the stored run config (undefined when
 * there is none or it is unreadable); `status` is what the run's status says of the latest
 * epoch, written after the ConfigMap.
 */
export function planConfigEpochs(
  previous: readonly ConfigEpoch[] | undefined,
  status: TrainingRunStatus["configEpoch"],
  spec: RoundConfig,
  round: number,
): EpochPlan {
  const config = roundConfigOf(spec);
  const digest = roundConfigDigest(config);
  const kept = [...(previous ?? [])];
  const last = kept.at(-1);
  if (last && status && status.epoch > last.epoch)
    return { epochs: kept, added: undefined, changed: [], stale: true };
  if (last?.digest === digest) return { epochs: kept, added: undefined, changed: [], stale: false };
  let added: ConfigEpoch;
  if (!last && status?.digest === digest) {
    // The stored config is gone: the epoch the status records is rebuilt.
    added = { epoch: status.epoch, fromRound: status.fromRound, digest, config };
  } else if (!last && !status) {
    added = { epoch: 1, fromRound: 0, digest, config };
  } else {
    const latest = last ?? status!;
    added = {
      epoch: latest.epoch + 1,
      fromRound: Math.max(round + CONFIG_EPOCH_MARGIN, latest.fromRound),
      digest,
      config,
    };
  }
  const epochs = [...kept, added].slice(-MAX_CONFIG_EPOCHS);
  return { epochs, added, changed: last ? changedFields(last.config, config) : [], stale: false };
}
