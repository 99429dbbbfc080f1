/**
 * Keys and resource descriptions shared by the cache, the work queue and the client.
 *
 * - object key: `namespace/name` (cluster-scoped objects: `name`), as in the informer cache;
 * - queue key:  `kind/namespace/name`, what a controller's work queue holds.
 */
import type { KubernetesObject } from "@kubernetes/client-node";

/** Where a resource lives in the API: enough to build every URL the runtime needs. */
export interface ResourceRef {
  /** API group; "" for the core group. */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural, as in the URL (`pods`, `trainingruns`). */
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const apiVersionOf = (r: ResourceRef): string =>
  r.group === "" ? r.version : `${r.group}/${r.version}`;

/** The API group of an apiVersion: `covenant.io` of `covenant.io/v1alpha1`, "" of core `v1`. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/**
 * True when a reference (an owner reference, an object) is of group and kind of `r`, whatever
 * its version: the API server serves one object at every version of its group, so an owner
 * reference written at v1beta1 names the same owner as one at v1alpha1.
 */
export function isGroupKind(
  ref: { apiVersion?: string; kind?: string },
  r: Pick<ResourceRef, "group" | "kind">,
): boolean {
  return ref.kind === r.kind && ref.apiVersion !== undefined && groupOf(ref.apiVersion) === r.group;
}

/** `pods`, `trainingruns.covenant.io`: a bounded label value for metrics. */
export const resourceLabel = (r: ResourceRef): string =>
  r.group === "" ? r.plural : `${r.plural}.${r.group}`;

/**
 * URL path of a collection or an object. Without `namespace` a namespaced resource gives the
 * all-namespaces collection.
 */
export function resourcePath(
  r: ResourceRef,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = r.group === "" ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  let path = `${base}${ns}/${r.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) {
    if (name === undefined) throw new Error(`subresource "${subresource}" needs an object name`);
    path += `/${subresource}`;
  }
  return path;
}

/** The common resources the runtime itself uses. */
export const CORE = {
  pods: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  nodes: { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false },
  secrets: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  configMaps: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  namespaces: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  events: { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
} as const satisfies Record<string, ResourceRef>;

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export function keyOf(obj: KubernetesObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error("object has no metadata.name");
  return objectKey(obj.metadata?.namespace, name);
}

export interface ParsedKey {
  namespace: string | undefined;
  name: string;
}

/** Parses `namespace/name` or `name`. */
export function parseObjectKey(key: string): ParsedKey {
  const parts = key.split("/");
  if (parts.length === 1 && parts[0]) return { namespace: undefined, name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  throw new Error(`invalid object key "${key}": expected "namespace/name" or "name"`);
}

export function queueKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ""}/${name}`;
}

export interface ParsedQueueKey extends ParsedKey {
  kind: string;
}

/** Parses `kind/namespace/name` (namespace empty for cluster-scoped objects). */
export function parseQueueKey(key: string): ParsedQueueKey {
  const parts = key.split("/");
  if (parts.length !== 3 || !parts[0] || !parts[2]) {
    throw new Error(`invalid queue key "${key}": expected "kind/namespace/name"`);
  }
  return { kind: parts[0], namespace: parts[1] || undefined, name: parts[2] };
}
