/**
 * The operator's small controller runtime. Typical use:
 *
 *   const mgr = new Manager({ kubeConfig, httpAddress: ":8080", logger,
 *     leaderElection: { leaseName: "covenant-operator", leaseNamespace: "covenant-system" } });
 *   const runs = mgr.informer<TrainingRun>(TRAINING_RUNS);
 *   const pods = mgr.informer<V1Pod>(CORE.pods, { labelSelector: "app.kubernetes.io/managed-by=covenant-operator" });
 *   mgr.addController({ name: "peer", for: peers, owns: [pods],
 *     async reconcile(req, ctx) {
 *       const peer = peers.store.getByName(req.namespace, req.name);
 *       if (!peer) return;                                   // deleted: owned pods are garbage-collected
 *       await applyObject(ctx.client, CORE.pods, desiredPod(peer), { fieldManager: ctx.fieldManager });
 *       await applyStatus(ctx.client, PEERS, statusOf(peer), { fieldManager: ctx.fieldManager });
 *       ctx.recorder.normal(peer, "PodCreated", `created pod ${name}`);
 *       return { requeueAfterMs: 30_000 };
 *     } });
 *   process.exitCode = (await mgr.run({ handleSignals: true })) === "signal" ? 0 : 1;
 */
export { applyObject, applyStatus, validateApplyObject, type ApplyOptions } from "./apply.ts";
export { ExponentialBackoff, MaxOf, TokenBucket, defaultRateLimiter, type RateLimiter } from "./backoff.ts";
export { Store } from "./cache.ts";
export {
  ApiError,
  KubeClient,
  PATCH_TYPES,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  type KubeClientOptions,
  type KubeList,
  type KubeStatus,
  type ListOptions,
  type PatchType,
  type WatchEvent,
} from "./client.ts";
export {
  Controller,
  DEFAULT_RECONCILE_TIMEOUT_MS,
  ReconcileTimeoutError,
  ownerOf,
  type ControllerSpec,
  type EventSource,
  type ReconcileContext,
  type ReconcileRequest,
  type ReconcileResult,
  type Watch,
} from "./controller.ts";
export {
  AggregatingEventRecorder,
  aggregationKey,
  eventName,
  type CoreEvent,
  type EventRecorder,
  type EventType,
} from "./events.ts";
export { Informer, stripManagedFields, type EventHandlers, type InformerOptions } from "./informer.ts";
export {
  CORE,
  apiVersionOf,
  groupOf,
  isGroupKind,
  keyOf,
  objectKey,
  parseObjectKey,
  parseQueueKey,
  queueKey,
  resourceLabel,
  resourcePath,
  type ResourceRef,
} from "./keys.ts";
export {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_PERIOD_MS,
  LeaderElector,
  type LeaderElectionOptions,
} from "./leader.ts";
export { createLogger, parseLogLevel, silentLogger, type LogLevel, type Logger } from "../../protocol/log.ts";
export { Manager, parseAddress, type ManagerOptions, type StopReason } from "./manager.ts";
export { WorkQueue, type WorkQueueOptions } from "./queue.ts";
export { DEFAULT_RATE_LIMIT, TokenBucketLimiter, type Clock, type RateLimit } from "./ratelimit.ts";
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.ts";
export { matchesSelector, parseSelector, type LabelSelector } from "./selector.ts";
