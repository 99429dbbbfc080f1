// What a kubelet would mount, written as files for a local process: ConfigMap and
// Secret volumes become directories under the pod's own directory, and mount paths
// named in the container's env and args are rewritten to point there.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CoreV1Api, V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";

export type PathMap = [mountPath: string, localPath: string][];

async function volumeFiles(
  core: CoreV1Api,
  ns: string,
  v: V1Volume,
): Promise<Record<string, Buffer> | undefined> {
  const pick = (data: Record<string, Buffer>, items?: { key: string; path: string }[]) =>
    items ? Object.fromEntries(items.filter((i) => i.key in data).map((i) => [i.path, data[i.key]!])) : data;
  if (v.configMap) {
    const cm = await core.readNamespacedConfigMap({ name: v.configMap.name!, namespace: ns });
    const data = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, s]) => [k, Buffer.from(s)]));
    return pick(data, v.configMap.items);
  }
  if (v.secret) {
    const s = await core.readNamespacedSecret({ name: v.secret.secretName!, namespace: ns });
    const data = Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, b64]) => [k, Buffer.from(b64, "base64")]),
    );
    return pick(data, v.secret.items);
  }
  if (v.emptyDir) return {};
  return undefined;
}

/** Writes the pod's volumes under `podDir` and returns mount path -> local path. */
export async function materialiseVolumes(
  core: CoreV1Api,
  pod: V1Pod,
  container: V1Container,
  podDir: string,
) {
  const ns = pod.metadata?.namespace ?? "default";
  const map: PathMap = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volume ${mount.name} is not defined in the pod`);
    const files = await volumeFiles(core, ns, volume);
    if (files === undefined)
      throw new Error(`volume ${mount.name}: only configMap, secret and emptyDir are supported`);
    const local = join(podDir, "volumes", mount.name);
    mkdirSync(local, { recursive: true });
    for (const [path, content] of Object.entries(files)) {
      const file = join(local, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content, { mode: 0o600 });
      if (mount.readOnly) chmodSync(file, 0o400);
    }
    map.push([mount.mountPath, local]);
  }
  // Longest mount paths first, so /a/b is rewritten before /a.
  return map.sort((a, b) => b[0].length - a[0].length);
}

/** Rewrites absolute paths under a mount path to the local directory. */
export function rewritePath(value: string, map: PathMap): string {
  for (const [mountPath, local] of map) {
    if (value === mountPath || value.startsWith(`${mountPath}/`))
      return local + value.slice(mountPath.length);
    const i = value.indexOf(`=${mountPath}`);
    if (i >= 0) return value.slice(0, i + 1) + rewritePath(value.slice(i + 1), map);
  }
  return value;
}

/** The container's environment with downward-API fields resolved and paths rewritten. */
export function resolveEnv(pod: V1Pod, container: V1Container, map: PathMap): Record<string, string> {
  const env: Record<string, string> = {};
  const fields: Record<string, string | undefined> = {
    "metadata.name": pod.metadata?.name,
    "metadata.namespace": pod.metadata?.namespace,
    "metadata.uid": pod.metadata?.uid,
    "spec.nodeName": pod.spec?.nodeName,
    "status.podIP": "127.0.0.1",
  };
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = rewritePath(e.value, map);
    else if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? "";
  }
  return env;
}
