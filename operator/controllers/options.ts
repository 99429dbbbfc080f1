/** Settings of the controllers, with the defaults the entry point starts from. */

export interface ControllerOptions {
  /** Extended resource the worker requests, one per GPU. */
  gpuResource: string;
  /** How long a worker pod's node may be NotReady before the pod is replaced elsewhere. */
  nodeNotReadyGraceMs: number;
  /** How often a peer waiting for its hotkey Secret checks again (Secrets are not watched). */
  recheckMs: number;
  /** How often a peer whose outdated pod waits for its turn in a rollout checks again. */
  rolloutRecheckMs: number;
  /** Port of the worker's metrics and health endpoints. */
  metricsPort: number;
  /** Uid and gid the worker runs as (non-root). */
  workerUid: number;
  /** Seconds a worker gets to finish its round when its pod is deleted. */
  terminationGraceSeconds: number;
  now: () => Date;
}

export const DEFAULT_CONTROLLER_OPTIONS: ControllerOptions = {
  gpuResource: "nvidia.com/gpu",
  nodeNotReadyGraceMs: 60_000,
  recheckMs: 15_000,
  rolloutRecheckMs: 5_000,
  metricsPort: 9400,
  workerUid: 65532,
  terminationGraceSeconds: 60,
  now: () => new Date(),
};

export function controllerOptions(partial: Partial<ControllerOptions> = {}): ControllerOptions {
  return { ...DEFAULT_CONTROLLER_OPTIONS, ...partial };
}
