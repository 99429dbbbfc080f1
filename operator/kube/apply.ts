/**
 * Server-side apply: PATCH with `application/apply-patch+yaml`, a field manager per
 * controller, and `force` so the controller takes the fields it declares (JSON is valid
 * YAML, so the body is the object as JSON).
 *
 * The applied object must carry apiVersion, kind and metadata.name (and namespace when the
 * resource is namespaced), and only the fields this manager owns: whatever it leaves out
 * that it applied before is removed.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient } from "./client.ts";
import { apiVersionOf, type ResourceRef } from "./keys.ts";

export interface ApplyOptions {
  /** The controller's field manager, e.g. `covenant-peer-controller`. */
  fieldManager: string;
  /** Take fields owned by other managers (default true). */
  force?: boolean;
}

export function validateApplyObject(r: ResourceRef, obj: KubernetesObject, fieldManager: string): void {
  const what = `apply ${r.kind}`;
  if (!fieldManager) throw new Error(`${what}: fieldManager must not be empty`);
  if (obj.apiVersion !== apiVersionOf(r)) {
    throw new Error(`${what}: apiVersion is "${obj.apiVersion ?? ""}", expected "${apiVersionOf(r)}"`);
  }
  if (obj.kind !== r.kind) throw new Error(`${what}: kind is "${obj.kind ?? ""}", expected "${r.kind}"`);
  if (!obj.metadata?.name) throw new Error(`${what}: metadata.name is required`);
  if (r.namespaced && !obj.metadata.namespace) {
    throw new Error(`${what} "${obj.metadata.name}": metadata.namespace is required`);
  }
}

/** Applies `obj` (spec, metadata) and answers the object as stored. */
export async function applyObject<T extends KubernetesObject>(
  client: KubeClient,
  r: ResourceRef,
  obj: T,
  opts: ApplyOptions,
): Promise<T> {
  validateApplyObject(r, obj, opts.fieldManager);
  return client.patch<T>(r, obj.metadata!.namespace, obj.metadata!.name!, obj, "apply", {
    fieldManager: opts.fieldManager,
    force: opts.force ?? true,
  });
}

/**
 * Applies the status subresource: `obj` needs apiVersion, kind, metadata.name/namespace and
 * `status`; fields outside status are ignored by the server.
 */
export async function applyStatus<T extends KubernetesObject>(
  client: KubeClient,
  r: ResourceRef,
  obj: T,
  opts: ApplyOptions,
): Promise<T> {
  validateApplyObject(r, obj, opts.fieldManager);
  return client.patch<T>(r, obj.metadata!.namespace, obj.metadata!.name!, obj, "apply", {
    fieldManager: opts.fieldManager,
    force: opts.force ?? true,
    subresource: "status",
  });
}
