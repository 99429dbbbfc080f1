/**
 * Planning for a TrainingRun: the run, its peers and its config ConfigMap in; the ConfigMap
 * to apply, the status and the Events out. Pure and synchronous.
 *
 * Phase machine (level-triggered, recomputed every time):
 *   invalid spec                          -> Failed
 *   Completed before, or round >= rounds  -> Completed
 *   suspended                             -> the phase it had (state kept), Suspended=True
 *   ready peers < aggregation.minPeers    -> WaitingForPeers
 *   round < outer.warmupRounds            -> Warmup
 *   otherwise                             -> Training
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  Label,
  MANAGED_BY,
  Reason,
  RUN_CONFIG_FILE,
  RunCondition,
  PeerCondition,
  TRAINING_RUN_KIND,
  resolveRunConfig,
  runConfigMapName,
  type CovenantPeer,
  type RunPhase,
  type TrainingRun,
  type TrainingRunStatus,
} from "../../api/index.ts";
import { isTrue, mergeConditions, type DesiredCondition } from "./conditions.ts";
import { planConfigEpochs, storedEpochs } from "./configepoch.ts";
import { hashOf } from "./hash.ts";
import type { PlannedEvent } from "./peerplan.ts";

export interface RunObservation {
  run: TrainingRun;
  /** CovenantPeers whose runRef names this run. */
  peers: CovenantPeer[];
  configMap: V1ConfigMap | undefined;
  now: Date;
}

export interface RunPlan {
  /** ConfigMap to apply; undefined when the stored one is current or the spec is invalid. */
  configMap: V1ConfigMap | undefined;
  status: TrainingRunStatus;
  events: PlannedEvent[];
}

export const CONFIG_HASH_ANNOTATION = "covenant.io/config-hash";

export function planRun(o: RunObservation): RunPlan {
  const { run, peers, now } = o;
  const events: PlannedEvent[] = [];
  const prevPhase = run.status?.phase;
  const gen = run.metadata.generation;
  const round = run.status?.round ?? 0;
  const active = peers.filter((p) => !p.metadata.deletionTimestamp);
  const counted = active.filter((p) => !p.spec.suspend);
  const ready = counted.filter((p) => isTrue(p.status?.conditions, PeerCondition.Ready)).length;
  const validators = active.filter((p) => p.spec.role === "validator").length;
  const suspended = run.spec.suspend;

  const resolved = resolveRunConfig(run);
  let configMap: V1ConfigMap | undefined;
  const status: TrainingRunStatus = {
    observedGeneration: gen ?? 0,
    peers: active.length,
    readyPeers: ready,
    validators,
  };
  let phase: RunPhase;
  let phaseMessage: string;
  if (!resolved.ok) {
    phase = "Failed";
    phaseMessage = `invalid spec: ${resolved.problems.join("; ")}`;
  } else {
    status.configMapName = runConfigMapName(run.metadata.name);
    status.parameters = resolved.config.model.parameters;
    const stored = o.configMap?.data?.[RUN_CONFIG_FILE];
    const epochs = planConfigEpochs(storedEpochs(stored), run.status?.configEpoch, resolved.config, round);
    if (epochs.stale) {
      // The ConfigMap cache lags behind the status written after it: wait for it.
      if (run.status?.configHash) status.configHash = run.status.configHash;
      if (run.status?.configEpoch) status.configEpoch = run.status.configEpoch;
    } else {
      const config = { ...resolved.config, epochs: epochs.epochs };
      const text = JSON.stringify(config, null, 2) + "\n";
      const hash = hashOf(config);
      const latest = epochs.epochs.at(-1)!;
      status.configHash = hash;
      status.configEpoch = { epoch: latest.epoch, digest: latest.digest, fromRound: latest.fromRound };
      if (o.configMap?.metadata?.annotations?.[CONFIG_HASH_ANNOTATION] !== hash || stored !== text) {
        configMap = runConfigMap(run, text, hash);
        events.push({
          type: "Normal",
          reason: Reason.ConfigWritten,
          message: `wrote ConfigMap ${status.configMapName} (${hash})`,
        });
      }
      const added = epochs.added;
      if (added && added.epoch > 1) {
        events.push({
          type: "Normal",
          reason: Reason.ConfigEpoch,
          message:
            `config epoch ${added.epoch} (${added.digest.slice(0, 12)}) takes effect at round ${added.fromRound}` +
            (epochs.changed.length ? `: ${epochs.changed.join(", ")}` : ""),
        });
      }
    }
    const minPeers = run.spec.aggregation.minPeers;
    if (prevPhase === "Completed" || round >= run.spec.rounds) {
      phase = "Completed";
      phaseMessage = `completed ${run.spec.rounds} rounds`;
    } else if (suspended) {
      phase = prevPhase && prevPhase !== "Failed" ? prevPhase : "WaitingForPeers";
      phaseMessage = "suspended";
    } else if (ready < minPeers) {
      phase = "WaitingForPeers";
      phaseMessage = `${ready} of ${minPeers} required peers ready`;
    } else if (round < run.spec.outer.warmupRounds) {
      phase = "Warmup";
      phaseMessage = `warm-up round ${round} of ${run.spec.outer.warmupRounds}`;
    } else {
      phase = "Training";
      phaseMessage = `round ${round} of ${run.spec.rounds} with ${ready} ready peers`;
    }
  }
  status.phase = phase;
  if (phase !== prevPhase) {
    events.push({
      type: phase === "Failed" ? "Warning" : "Normal",
      reason: phase,
      message: `phase ${prevPhase ?? "(none)"} -> ${phase}: ${phaseMessage}`,
    });
  }
  const wasSuspended = isTrue(run.status?.conditions, RunCondition.Suspended);
  if (suspended && !wasSuspended)
    events.push({
      type: "Normal",
      reason: Reason.Suspended,
      message: "run suspended: worker pods are removed",
    });
  if (!suspended && wasSuspended)
    events.push({ type: "Normal", reason: Reason.Resumed, message: "run resumed" });

  status.conditions = mergeConditions(
    run.status?.conditions,
    runConditions(phase, phaseMessage, suspended, counted.length, ready),
    gen,
    now,
  );
  return { configMap, status, events };
}

function runConditions(
  phase: RunPhase,
  message: string,
  suspended: boolean,
  peers: number,
  ready: number,
): DesiredCondition[] {
  const terminal = phase === "Completed" || phase === "Failed";
  const reason = phase === "Failed" ? Reason.InvalidSpec : phase;
  const running = (phase === "Warmup" || phase === "Training") && !suspended;
  return [
    {
      type: RunCondition.Ready,
      status: running ? "True" : "False",
      reason: suspended && !terminal ? Reason.Suspended : reason,
      message,
    },
    {
      type: RunCondition.Progressing,
      status: !terminal && !suspended ? "True" : "False",
      reason: suspended && !terminal ? Reason.Suspended : reason,
      message,
    },
    peers > ready && !terminal && !suspended
      ? {
          type: RunCondition.Degraded,
          status: "True",
          reason: Reason.PeersNotReady,
          message: `${peers - ready} of ${peers} peers not ready`,
        }
      : {
          type: RunCondition.Degraded,
          status: "False",
          reason: Reason.AllPeersReady,
          message: `${ready} of ${peers} peers ready`,
        },
    suspended
      ? {
          type: RunCondition.Suspended,
          status: "True",
          reason: Reason.Suspended,
          message: "spec.suspend is true",
        }
      : {
          type: RunCondition.Suspended,
          status: "False",
          reason: Reason.NotSuspended,
          message: "spec.suspend is false",
        },
  ];
}

export function runConfigMap(run: TrainingRun, text: string, hash: string): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: runConfigMapName(run.metadata.name),
      namespace: run.metadata.namespace ?? "default",
      labels: {
        [Label.ManagedBy]: MANAGED_BY,
        [Label.Component]: "run-config",
        [Label.Run]: run.metadata.name,
      },
      annotations: { [CONFIG_HASH_ANNOTATION]: hash },
      ownerReferences: [
        {
          apiVersion: run.apiVersion,
          kind: TRAINING_RUN_KIND,
          name: run.metadata.name,
          uid: run.metadata.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: { [RUN_CONFIG_FILE]: text },
  };
}
