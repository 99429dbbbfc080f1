// Benchmark of the operator at scale (`make bench-operator`): 500 CovenantPeers across 50
// TrainingRuns on 500 kwok GPU nodes, with the real scheduler. Reports time to converge,
// reconcile latency (p50/p99 from the operator's own histogram), API requests per reconcile
// and resident memory, as a Markdown table.
//
//   node --import tsx e2e/operator/bench.ts [--runs=50] [--peers-per-run=10]
import { join } from "node:path";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { CORE, KubeClient } from "../../operator/kube/index.ts";
import { get } from "../stack/http.ts";
import { startKube } from "../stack/kube.ts";
import { binary } from "../stack/paths.ts";
import { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";
import { installCrds, mintOperatorUser } from "./cluster.ts";
import { startOperator } from "./operator-process.ts";

const arg = (name: string, dflt: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : dflt;
};
const RUNS = arg("runs", 50);
const PER_RUN = arg("peers-per-run", 10);
const PEERS = RUNS * PER_RUN;
const NS = "bench";

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}
function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.eE+-]+|\+Inf|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[2] ?? "").matchAll(/([a-z_]+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}
const sum = (s: Sample[]) => s.reduce((a, b) => a + b.value, 0);

/** A quantile from cumulative histogram buckets, interpolated linearly inside a bucket. */
function quantile(buckets: { le: number; count: number }[], q: number): number {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return prevLe + (inBucket > 0 ? ((rank - prevCount) / inBucket) * (b.le - prevLe) : 0);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

function histogram(text: string, controller: string): { le: number; count: number }[] {
  const byLe = new Map<number, number>();
  for (const s of samples(text, "covenant_reconcile_duration_seconds_bucket")) {
    if (s.labels.controller !== controller) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

async function main(): Promise<void> {
  const kube = await startKube({ scheduler: true, timeoutSec: 180 });
  const stopAll: (() => Promise<unknown>)[] = [() => kube.stop()];
  try {
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    const admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    for (const name of ["covenant-system", NS]) {
      await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    }
    const identity = await mintOperatorUser(kube, "covenant-system");
    const kwok = ManagedProcess.start({
      name: "kwok",
      command: binary("kwok"),
      args: [
        `--kubeconfig=${kube.kubeconfigPath}`,
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.128.0.0/12",
      ],
      logFile: join(kube.dir, "kwok.log"),
    });
    stopAll.unshift(() => kwok.stop());
    const nodes = Array.from({ length: PEERS }, (_, i) => `kwok-gpu-${i}`);
    const nodesStarted = Date.now();
    await pool(nodes, 16, async (name) => {
      await admin.create(CORE.nodes, {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name,
          annotations: { "kwok.x-k8s.io/node": "fake" },
          labels: { "kubernetes.io/hostname": name, "nvidia.com/gpu.product": "NVIDIA-B200", type: "kwok" },
        },
        spec: {},
        status: {
          capacity: { cpu: "64", memory: "1Ti", pods: "110", "nvidia.com/gpu": "8" },
          allocatable: { cpu: "64", memory: "1Ti", pods: "110", "nvidia.com/gpu": "8" },
        },
      } as KubernetesObject);
      // Admission taints new nodes not-ready; without a node lifecycle controller nobody lifts it.
      await admin.patch(CORE.nodes, undefined, name, { spec: { taints: null } }, "merge");
    });
    await waitFor(
      "kwok nodes Ready",
      async () => {
        const list = await admin.list<
          KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }
        >(CORE.nodes, { labelSelector: "type=kwok" });
        return (
          list.items.filter((n) =>
            n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          ).length === PEERS
        );
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    const nodesMs = Date.now() - nodesStarted;

    const op = await startOperator({
      kubeconfigPath: identity.kubeconfigPath,
      dir: kube.dir,
      identity: "bench",
      args: ["--log-level=warn"],
    });
    stopAll.unshift(() => op.process.stop());
    const before = (await get(`${op.url}/metrics`)).body;

    const t0 = Date.now();
    const runs = Array.from({ length: RUNS }, (_, r) => `run-${r}`);
    await pool(runs, 8, async (r) => {
      const o = makeRun(r, NS).obj() as unknown as KubernetesObject;
      delete o.metadata!.uid;
      await admin.create(TRAINING_RUNS, o);
    });
    const peers = runs.flatMap((r) =>
      Array.from({ length: PER_RUN }, (_, i) => ({ run: r, name: `${r}-peer-${i}` })),
    );
    await pool(peers, 16, async (p) => {
      await admin.create(CORE.secrets, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${p.name}-hotkey`, namespace: NS },
        stringData: { hotkey: "//bench" },
      } as KubernetesObject);
      const o = makePeer(p.name, p.run, NS).obj() as unknown as KubernetesObject;
      delete o.metadata!.uid;
      await admin.create(COVENANT_PEERS, o);
    });
    const createdMs = Date.now() - t0;
    await waitFor(
      "every worker pod Ready and every run counting its ready peers",
      async () => {
        const pods = await admin.list<V1Pod>(CORE.pods, { namespace: NS });
        const ready = pods.items.filter((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        if (ready.length < PEERS) return false;
        const list = await admin.list<KubernetesObject & { status?: { readyPeers?: number } }>(
          TRAINING_RUNS,
          { namespace: NS },
        );
        return list.items.every((r) => r.status?.readyPeers === PER_RUN);
      },
      { timeoutMs: 600_000, intervalMs: 1000 },
    );
    const convergeMs = Date.now() - t0;
    // Let in-flight work settle, then read the operator's own metrics.
    await new Promise((r) => setTimeout(r, 3000));
    const after = (await get(`${op.url}/metrics`)).body;
    const pods = await admin.list<V1Pod>(CORE.pods, { namespace: NS });

    const rows: string[] = [];
    for (const controller of ["peer", "trainingrun"]) {
      const h = histogram(after, controller);
      const h0 = histogram(before, controller);
      const delta = h.map((b, i) => ({ le: b.le, count: b.count - (h0[i]?.count ?? 0) }));
      const reconciles = delta[delta.length - 1]?.count ?? 0;
      const reqs =
        sum(
          samples(after, "covenant_kube_api_requests_total").filter(
            (s) => s.labels.controller === controller,
          ),
        ) -
        sum(
          samples(before, "covenant_kube_api_requests_total").filter(
            (s) => s.labels.controller === controller,
          ),
        );
      rows.push(
        `| ${controller} | ${reconciles} | ${(quantile(delta, 0.5) * 1000).toFixed(1)} | ${(quantile(delta, 0.99) * 1000).toFixed(1)} | ${(reqs / Math.max(1, reconciles)).toFixed(2)} |`,
      );
    }
    const rss = samples(after, "covenant_operator_process_resident_memory_bytes")[0]?.value ?? NaN;
    const out = [
      `${PEERS} CovenantPeers across ${RUNS} TrainingRuns on ${PEERS} kwok nodes (8 GPUs each), kube-scheduler, one operator replica.`,
      "",
      "| measure | value |",
      "| --- | --- |",
      `| nodes registered and Ready (setup) | ${(nodesMs / 1000).toFixed(1)} s |`,
      `| create ${RUNS} runs + ${PEERS} Secrets + ${PEERS} peers | ${(createdMs / 1000).toFixed(1)} s |`,
      `| first create -> all ${PEERS} pods Ready and every run's readyPeers = ${PER_RUN} | ${(convergeMs / 1000).toFixed(1)} s |`,
      `| worker pods at the end (expected ${PEERS}) | ${pods.items.length} |`,
      `| operator resident memory at the end | ${(rss / 2 ** 20).toFixed(0)} MiB |`,
      "",
      "| controller | reconciles | p50 ms | p99 ms | API requests per reconcile |",
      "| --- | --- | --- | --- | --- |",
      ...rows,
    ];
    console.log(out.join("\n"));
  } finally {
    for (const s of stopAll) await s().catch(() => undefined);
  }
}

await main();
