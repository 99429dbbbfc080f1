// Helpers for the operator's integration tests: install the generated CRDs and RBAC into
// a real API server, mint the operator's least-privilege identity, read API errors.
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { binary, repoRoot } from "../stack/paths.ts";
import { waitFor } from "../stack/wait.ts";
import type { KubeStack, UserCredentials } from "../stack/kube.ts";

export function readManifests(dir: string): KubernetesObject[] {
  const out: KubernetesObject[] = [];
  for (const f of readdirSync(join(repoRoot, dir))
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(repoRoot, dir, f), "utf8"))) {
      const o = doc.toJS() as KubernetesObject | null;
      if (o) out.push(o);
    }
  }
  return out;
}

/** Runs the pinned kubectl with a kubeconfig; resolves with its stdout. */
export function kubectl(kubeconfigPath: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary("kubectl"),
      [`--kubeconfig=${kubeconfigPath}`, ...args],
      { maxBuffer: 16 << 20, timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Applies the CRDs from crds/ the way a user does (kubectl, server-side) and waits until
 * both are Established. (The typed client would drop `enum`, `default` and the
 * x-kubernetes-* extensions while serialising a CRD.)
 */
export async function installCrds(kc: KubeConfig, kubeconfigPath: string): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await kubectl(kubeconfigPath, ["apply", "--server-side", "-f", join(repoRoot, "crds")]);
  const crds = readManifests("crds") as V1CustomResourceDefinition[];
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata?.name} established`, async () => {
      const got = await api.readCustomResourceDefinition({ name: crd.metadata!.name! });
      return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
  }
  // Discovery of the new group takes a moment after Established.
  const objects = KubernetesObjectApi.makeApiClient(kc);
  await waitFor("covenant.io discovery", async () => {
    await objects.list("covenant.io/v1alpha1", "TrainingRun", "default");
    await objects.list("covenant.io/v1alpha1", "CovenantPeer", "default");
    return true;
  });
}

/**
 * Mints the operator's identity: a client certificate bound to the generated ClusterRole
 * and leader-election Role in `namespace`, nothing more.
 */
export async function mintOperatorUser(kube: KubeStack, namespace: string): Promise<UserCredentials> {
  const rbac = kube.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  const user = "covenant-operator";
  for (const o of readManifests("config/rbac")) {
    const body = o as never;
    if (o.kind === "ClusterRole") await rbac.createClusterRole({ body });
    else if (o.kind === "Role") await rbac.createNamespacedRole({ namespace, body });
  }
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: user },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "covenant-operator" },
      subjects: [{ kind: "User", name: user, apiGroup: "rbac.authorization.k8s.io" }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: `${user}-leader-election` },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: "covenant-operator-leader-election",
      },
      subjects: [{ kind: "User", name: user, apiGroup: "rbac.authorization.k8s.io" }],
    },
  });
  return kube.mintUser(user);
}

/** The message of a refused request (the API server's Status message). */
export function apiMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body = e.body;
  if (typeof e.body === "string") {
    const text = e.body;
    try {
      body = JSON.parse(text);
    } catch {
      return text;
    }
  }
  const msg = (body as { message?: unknown } | undefined)?.message;
  return typeof msg === "string" ? msg : (e.message ?? String(err));
}

export function apiCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}
