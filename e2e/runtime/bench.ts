// Benchmark of the controller runtime alone (no project controllers) on a real API server:
// N Widgets across M namespaces; a controller that applies one owned ConfigMap and the
// status per Widget. Measures a cold start (list + reconcile everything) and a rolling
// update of every spec: time to converge, reconcile latency p50/p99, API requests per
// reconcile, resident memory.
//
// Usage: node --import tsx e2e/runtime/bench.ts [--objects 500] [--namespaces 10] [--workers 2]
import { parseArgs } from "node:util";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { CORE, KubeClient, Manager, applyObject, applyStatus } from "../../operator/kube/index.ts";
import { startKube } from "../stack/kube.ts";
import { WIDGETS, installWidgetCrd, widget, type Widget } from "./fixtures.ts";

const { values } = parseArgs({
  options: {
    objects: { type: "string", default: "500" },
    namespaces: { type: "string", default: "10" },
    workers: { type: "string", default: "2" },
  },
});
const N = Number(values.objects);
const M = Number(values.namespaces);
const WORKERS = Number(values.workers);
if (!(N > 0 && M > 0 && WORKERS > 0))
  throw new Error("--objects, --namespaces and --workers must be positive");

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

const kube = await startKube();
try {
  const admin = KubeClient.fromKubeConfig(kube.kubeConfig());
  await installWidgetCrd(admin);
  const names = Array.from({ length: N }, (_, i) => ({ ns: `bench-${i % M}`, name: `w-${i}` }));
  for (let j = 0; j < M; j++) {
    await admin.create(CORE.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: `bench-${j}` },
    });
  }
  await inBatches(names, 16, (o) => admin.create(WIDGETS, widget(o.ns, o.name, { size: 1 })));

  const mgr = new Manager({ kubeConfig: kube.kubeConfig() });
  const widgets = mgr.informer<Widget>(WIDGETS);
  const children = mgr.informer<V1ConfigMap>(CORE.configMaps, { labelSelector: "bench/owned=true" });
  const durations: number[] = [];
  const converged = new Map<string, number>(); // key -> generation reflected in status
  let target = 1;
  let onConverged: (() => void) | undefined;
  mgr.addController<Widget>({
    name: "bench",
    for: widgets,
    owns: [children],
    workers: WORKERS,
    async reconcile(req, ctx) {
      const t0 = performance.now();
      const w = widgets.store.getByName(req.namespace, req.name);
      if (!w) return;
      const gen = w.metadata?.generation ?? 0;
      const childName = `${req.name}-child`;
      const existing = children.store.getByName(req.namespace, childName);
      if (existing?.data?.size !== String(w.spec?.size)) {
        await applyObject(
          ctx.client,
          CORE.configMaps,
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: {
              namespace: req.namespace,
              name: childName,
              labels: { "bench/owned": "true" },
              ownerReferences: [
                {
                  apiVersion: w.apiVersion!,
                  kind: w.kind!,
                  name: req.name,
                  uid: w.metadata!.uid!,
                  controller: true,
                },
              ],
            },
            data: { size: String(w.spec?.size) },
          } as V1ConfigMap,
          { fieldManager: ctx.fieldManager },
        );
      }
      if (w.status?.observedGeneration !== gen) {
        await applyStatus<Widget>(
          ctx.client,
          WIDGETS,
          {
            ...widget(req.namespace!, req.name),
            spec: undefined,
            status: { observedGeneration: gen, phase: "Ready" },
          },
          { fieldManager: ctx.fieldManager },
        );
      }
      durations.push(performance.now() - t0);
      converged.set(req.key, gen);
      if (onConverged && [...converged.values()].filter((g) => g >= target).length >= N) onConverged();
    },
  });

  const apiRequests = async (): Promise<number> =>
    (await mgr.metrics.apiRequests.get()).values
      .filter((v) => v.labels.controller === "bench")
      .reduce((s, v) => s + v.value, 0);

  const phase = async (label: string, action: () => Promise<void>) => {
    durations.length = 0;
    const req0 = await apiRequests();
    const done = new Promise<void>((resolve) => (onConverged = resolve));
    const t0 = performance.now();
    await action();
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const requests = (await apiRequests()) - req0;
    return {
      label,
      seconds,
      reconciles: durations.length,
      p50: quantile(durations, 0.5),
      p99: quantile(durations, 0.99),
      perReconcile: requests / durations.length,
      rssMiB: process.memoryUsage().rss / 2 ** 20,
    };
  };

  const rows = [];
  rows.push(await phase("cold start (list + reconcile all)", () => mgr.start()));
  target = 2;
  rows.push(
    await phase("update every spec", () =>
      inBatches(names, 16, (o) => admin.patch(WIDGETS, o.ns, o.name, { spec: { size: 2 } }, "merge")),
    ),
  );
  await mgr.stop();

  console.log(`\n${N} Widgets in ${M} namespaces, ${WORKERS} workers, one owned ConfigMap each\n`);
  console.log("| phase | converge s | reconciles | p50 ms | p99 ms | API requests / reconcile | RSS MiB |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${r.seconds.toFixed(1)} | ${r.reconciles} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.perReconcile.toFixed(2)} | ${r.rssMiB.toFixed(0)} |`,
    );
  }
} finally {
  await kube.stop();
}
