/** Schema pieces shared by both kinds: conditions, secret references, tolerations, resources. */
import type { V1ObjectMeta } from "@kubernetes/client-node";
import {
  array,
  enumeration,
  integer,
  map,
  object,
  quantity,
  required,
  string,
  type Infer,
} from "./schema.ts";

export const GROUP = "covenant.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric. */
export const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A DNS-1123 subdomain. */
export const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

export const conditionSchema = object("A condition in the Kubernetes convention.", {
  type: required(
    string("Condition type in CamelCase, such as Ready.", { maxLength: 316, pattern: "^[A-Z][A-Za-z0-9]*$" }),
  ),
  status: required(enumeration("True, False or Unknown.", ["True", "False", "Unknown"] as const)),
  reason: required(
    string("One CamelCase word saying why the condition has its status.", {
      maxLength: 1024,
      minLength: 1,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }),
  ),
  message: string("A human readable explanation.", { maxLength: 32768 }),
  lastTransitionTime: required(
    string("When the status last changed.", { format: "date-time", maxLength: 64 }),
  ),
  observedGeneration: integer("The .metadata.generation the condition was computed from.", { minimum: 0 }),
});
export type Condition = Infer<typeof conditionSchema>;

export const conditionsSchema = array("Current state, one entry per condition type.", conditionSchema, {
  maxItems: 16,
  listType: "map",
  listMapKeys: ["type"],
});

export const secretKeyRefSchema = (what: string, defaultKey: string) =>
  object(`The Secret in the same namespace that holds ${what}.`, {
    name: required(string("Name of the Secret.", { maxLength: 253, minLength: 1, pattern: DNS_SUBDOMAIN })),
    key: string(`Key inside the Secret; default "${defaultKey}".`, {
      default: defaultKey,
      maxLength: 253,
      minLength: 1,
      pattern: "^[-._a-zA-Z0-9]+$",
    }),
  });

export const tolerationSchema = object("A toleration of the pod for a node taint.", {
  key: string("Taint key the toleration matches; empty with operator Exists matches every taint.", {
    maxLength: 316,
  }),
  operator: enumeration("Exists or Equal (default Equal).", ["Exists", "Equal"] as const),
  value: string("Taint value the toleration matches (operator Equal).", { maxLength: 63 }),
  effect: enumeration("Taint effect to match; empty matches all effects.", [
    "NoSchedule",
    "PreferNoSchedule",
    "NoExecute",
  ] as const),
  tolerationSeconds: integer("For NoExecute: seconds the pod stays bound after the taint appears.", {
    minimum: 0,
  }),
});
export type Toleration = Infer<typeof tolerationSchema>;

export const tolerationsSchema = array("Tolerations added to the worker pod.", tolerationSchema, {
  maxItems: 32,
  listType: "atomic",
});

export const nodeSelectorSchema = map(
  "Node labels the worker pod's node must carry.",
  string("Label value.", { maxLength: 63 }),
  { maxProperties: 32 },
);

export const resourceListSchema = (what: string) =>
  map(`${what}, by resource name (cpu, memory, ephemeral-storage, ...).`, quantity("A quantity."), {
    maxProperties: 16,
  });

export const resourcesSchema = object(
  "Compute resources of the worker container (GPUs are set by the peer).",
  {
    requests: resourceListSchema("Minimum resources the scheduler reserves"),
    limits: resourceListSchema("Maximum resources the container may use"),
  },
);
export type Resources = Infer<typeof resourcesSchema>;

export const objectMetaSchema = {
  type: "object",
  description: "Standard object metadata.",
} as const;

/**
 * Standard Kubernetes object metadata with a required name. Note: timestamps arrive as
 * RFC 3339 strings from the API although the client's type says Date.
 */
export type ObjectMeta = V1ObjectMeta & { name: string };
