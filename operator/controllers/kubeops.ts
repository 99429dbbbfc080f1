/** Small API operations the controllers need beyond the runtime's: deletion with a grace period. */
import type { V1Pod } from "@kubernetes/client-node";
import { CORE, isConflict, isNotFound, resourceLabel, resourcePath, type KubeClient } from "../kube/index.ts";

/**
 * Deletes a pod, guarded by its uid so that a replacement with the same name is never hit.
 * `force` sets grace period 0 (the pod's node is gone and cannot confirm the stop).
 * Answers false when the pod was already gone or replaced.
 */
export async function deletePod(client: KubeClient, pod: V1Pod, force: boolean): Promise<boolean> {
  const body: Record<string, unknown> = {
    kind: "DeleteOptions",
    apiVersion: "v1",
    propagationPolicy: "Background",
  };
  if (pod.metadata?.uid) body.preconditions = { uid: pod.metadata.uid };
  if (force) body.gracePeriodSeconds = 0;
  try {
    await client.request({
      method: "DELETE",
      path: resourcePath(CORE.pods, pod.metadata?.namespace, pod.metadata?.name),
      body,
      resource: resourceLabel(CORE.pods),
    });
    return true;
  } catch (e) {
    if (isNotFound(e) || isConflict(e)) return false;
    throw e;
  }
}
