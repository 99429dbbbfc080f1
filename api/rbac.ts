/**
 * Least-privilege RBAC of the operator, generated beside the CRDs. Each rule says which
 * controller needs it, so a permission can be traced to its reason.
 */
import { GROUP } from "./common.ts";
import { COVENANT_PEER, TRAINING_RUN } from "./crd.ts";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

interface Need extends PolicyRule {
  why: string;
}

export const OPERATOR_ROLE_NAME = "covenant-operator";
export const LEADER_ELECTION_ROLE_NAME = "covenant-operator-leader-election";

const kinds = [TRAINING_RUN.plural, COVENANT_PEER.plural];

/** Cluster-wide needs of the controllers. */
export const OPERATOR_NEEDS: readonly Need[] = [
  { why: "informers on both kinds", apiGroups: [GROUP], resources: kinds, verbs: ["get", "list", "watch"] },
  {
    why: "transport controller: the finalizer covenant.io/bus-objects on TrainingRuns it provisions a bus for",
    apiGroups: [GROUP],
    resources: [TRAINING_RUN.plural],
    verbs: ["patch"],
  },
  {
    why: "one status write per reconcile (server-side apply)",
    apiGroups: [GROUP],
    resources: kinds.map((k) => `${k}/status`),
    verbs: ["get", "patch", "update"],
  },
  {
    why: "owner references with blockOwnerDeletion on pods and ConfigMaps",
    apiGroups: [GROUP],
    resources: kinds.map((k) => `${k}/finalizers`),
    verbs: ["update"],
  },
  {
    why: "peer controller: one worker pod per peer",
    apiGroups: [""],
    resources: ["pods"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  {
    why: "run controller: the resolved run config",
    apiGroups: [""],
    resources: ["configmaps"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  {
    why: "peer controller: the hotkey Secret must exist (never read into logs)",
    apiGroups: [""],
    resources: ["secrets"],
    verbs: ["get"],
  },
  {
    why: "peer controller: node readiness of worker pods",
    apiGroups: [""],
    resources: ["nodes"],
    verbs: ["get", "list", "watch"],
  },
  {
    why: "event recorder",
    apiGroups: ["", "events.k8s.io"],
    resources: ["events"],
    verbs: ["create", "patch", "update"],
  },
];

/** Needs in the operator's own namespace only. */
export const LEADER_ELECTION_NEEDS: readonly Need[] = [
  {
    why: "leader election on a Lease",
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["get", "list", "watch", "create", "update", "patch"],
  },
  {
    why: "leader election events",
    apiGroups: ["", "events.k8s.io"],
    resources: ["events"],
    verbs: ["create", "patch"],
  },
];

const strip = (needs: readonly Need[]): PolicyRule[] =>
  needs.map(({ apiGroups, resources, verbs }) => ({ apiGroups, resources, verbs }));

const labels = { "app.kubernetes.io/part-of": "covenant-operator" };

export function operatorClusterRole(): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: OPERATOR_ROLE_NAME, labels },
    rules: strip(OPERATOR_NEEDS),
  };
}

export function leaderElectionRole(): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: LEADER_ELECTION_ROLE_NAME, labels },
    rules: strip(LEADER_ELECTION_NEEDS),
  };
}

/** Roles that extend the built-in edit and view roles to the covenant kinds. */
export function userRoles(): Record<string, unknown>[] {
  const role = (name: string, aggregateTo: string[], verbs: string[]) => ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: {
      name,
      labels: {
        ...labels,
        ...Object.fromEntries(
          aggregateTo.map((r) => [`rbac.authorization.k8s.io/aggregate-to-${r}`, "true"]),
        ),
      },
    },
    rules: [{ apiGroups: [GROUP], resources: kinds, verbs }],
  });
  return [
    role(
      "covenant-editor",
      ["admin", "edit"],
      ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
    ),
    role("covenant-viewer", ["view"], ["get", "list", "watch"]),
  ];
}
