// A Manager with one controller against a real kube-apiserver: reconciles from primary
// and owned-object events, error backoff, delayed requeue, per-key serialisation,
// /healthz, /readyz and /metrics, and a graceful stop that finishes in-flight reconciles.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  CORE,
  KubeClient,
  Manager,
  applyObject,
  applyStatus,
  type ReconcileRequest,
} from "../../operator/kube/index.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { waitFor } from "../stack/wait.ts";
import { WIDGETS, installWidgetCrd, widget, type Widget } from "./fixtures.ts";

const NS = "ctl";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("controller and manager", { timeout: 180_000 }, () => {
  let kube: KubeStack;
  let admin: KubeClient;
  let mgr: Manager;
  const reconciles = new Map<string, number>();
  const running = new Set<string>();
  let overlaps = 0;
  let startedSlow = false;
  let finishedSlow = false;

  before(async () => {
    kube = await startKube();
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    await installWidgetCrd(admin);

    mgr = new Manager({ kubeConfig: kube.kubeConfig(), namespace: NS, httpAddress: "127.0.0.1:0" });
    const widgets = mgr.informer<Widget>(WIDGETS);
    const children = mgr.informer<V1ConfigMap>(CORE.configMaps, { labelSelector: "runtime-test/owned=true" });
    mgr.addController<Widget>({
      name: "widget",
      for: widgets,
      owns: [children],
      workers: 3,
      async reconcile(req: ReconcileRequest, ctx) {
        const n = (reconciles.get(req.name) ?? 0) + 1;
        reconciles.set(req.name, n);
        if (running.has(req.key)) overlaps++;
        running.add(req.key);
        try {
          const w = widgets.store.getByName(req.namespace, req.name);
          if (!w) return; // deleted: the child is garbage-collected through its owner reference
          if (w.spec?.slowMs) {
            const long = w.spec.slowMs >= 1000;
            if (long) startedSlow = true;
            await sleep(w.spec.slowMs);
            if (long) finishedSlow = true;
          }
          if (n <= (w.spec?.failTimes ?? 0)) throw new Error(`planned failure ${n}`);
          const child: V1ConfigMap = {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: {
              namespace: req.namespace,
              name: `${req.name}-child`,
              labels: { "runtime-test/owned": "true" },
              ownerReferences: [
                {
                  apiVersion: w.apiVersion!,
                  kind: w.kind!,
                  name: w.metadata!.name!,
                  uid: w.metadata!.uid!,
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            },
            data: { size: String(w.spec?.size ?? 0) },
          };
          await applyObject(ctx.client, CORE.configMaps, child, { fieldManager: ctx.fieldManager });
          await applyStatus<Widget>(
            ctx.client,
            WIDGETS,
            {
              ...widget(req.namespace!, req.name),
              spec: undefined,
              status: {
                observedGeneration: w.metadata?.generation,
                child: child.metadata!.name,
                phase: "Ready",
              },
            },
            { fieldManager: ctx.fieldManager },
          );
          ctx.recorder.normal(w, "ChildApplied", `applied ${child.metadata!.name}`);
          return w.spec?.requeueMs ? { requeueAfterMs: w.spec.requeueMs } : undefined;
        } finally {
          running.delete(req.key);
        }
      },
    });
    await mgr.start();
  });
  after(async () => {
    await mgr?.stop();
    await kube?.stop();
  });

  const child = (name: string) => admin.getOrUndefined<V1ConfigMap>(CORE.configMaps, NS, `${name}-child`);

  test("serves health, readiness and metrics", async () => {
    assert.equal((await fetch(`${mgr.httpUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${mgr.httpUrl}/readyz`)).status, 200);
    assert.equal((await fetch(`${mgr.httpUrl}/nope`)).status, 404);
    const metrics = await (await fetch(`${mgr.httpUrl}/metrics`)).text();
    assert.match(metrics, /^covenant_operator_build_info\{version="dev"\} 1$/m);
    assert.match(
      metrics,
      /^covenant_informer_relists_total\{resource="widgets.runtime.test.covenant.io",reason="initial"\} 1$/m,
    );
  });

  test("a new primary object is reconciled into its child and status", async () => {
    await admin.create(WIDGETS, widget(NS, "alpha", { size: 3 }));
    const c = await waitFor("child of alpha", () => child("alpha"));
    assert.equal(c.data?.size, "3");
    const w = await waitFor("status of alpha", async () => {
      const o = await admin.get<Widget>(WIDGETS, NS, "alpha");
      return o.status?.phase === "Ready" ? o : undefined;
    });
    assert.equal(w.status?.child, "alpha-child");
    assert.equal(w.status?.observedGeneration, 1);
    // The child is owned by the controller's field manager.
    assert.ok(
      c.metadata?.managedFields?.some((f) => f.manager === "covenant-widget" && f.operation === "Apply"),
    );
  });

  test("an update of the primary and a deleted child both trigger reconciles", async () => {
    await admin.patch(WIDGETS, NS, "alpha", { spec: { size: 5 } }, "merge");
    await waitFor("child updated", async () => (await child("alpha"))?.data?.size === "5");
    const before = reconciles.get("alpha")!;
    await admin.delete(CORE.configMaps, NS, "alpha-child");
    // Deleting the owned object maps to its owner, which recreates it.
    const recreated = await waitFor("child recreated", () => child("alpha"), { timeoutMs: 15_000 });
    assert.equal(recreated.data?.size, "5");
    assert.ok(reconciles.get("alpha")! > before);
  });

  test("a failing reconcile is retried with backoff until it succeeds, and counted", async () => {
    await admin.create(WIDGETS, widget(NS, "flaky", { size: 1, failTimes: 3 }));
    await waitFor("child of flaky", () => child("flaky"), { timeoutMs: 15_000 });
    // Three failures, then success; the child and status writes may trigger more (successful) runs.
    assert.ok(reconciles.get("flaky")! >= 4);
    const errors = (await mgr.metrics.reconcileErrors.get()).values.find(
      (v) => v.labels.controller === "widget",
    );
    assert.equal(errors?.value, 3);
    const retries = (await mgr.metrics.queueRetries.get()).values.find((v) => v.labels.name === "widget");
    assert.ok((retries?.value ?? 0) >= 3);
  });

  test("requeueAfterMs runs the key again without any change", async () => {
    await admin.create(WIDGETS, widget(NS, "ticker", { requeueMs: 200 }));
    await waitFor("repeated reconciles", () => (reconciles.get("ticker") ?? 0) >= 5, { timeoutMs: 10_000 });
    await admin.patch(WIDGETS, NS, "ticker", { spec: { requeueMs: 0 } }, "merge");
  });

  test("a key is never reconciled by two workers at once", async () => {
    await admin.create(WIDGETS, widget(NS, "busy", { slowMs: 100 }));
    for (let i = 0; i < 10; i++) {
      await admin.patch(WIDGETS, NS, "busy", { spec: { size: i } }, "merge");
      await sleep(20);
    }
    await waitFor("busy settles", async () => (await child("busy"))?.data?.size === "9", {
      timeoutMs: 15_000,
    });
    assert.equal(overlaps, 0);
    const n = reconciles.get("busy")!;
    assert.ok(n < 11, `updates during a reconcile are coalesced (${n} reconciles for 11 writes)`);
  });

  test("metrics count reconciles and API requests per controller", async () => {
    const text = await (await fetch(`${mgr.httpUrl}/metrics`)).text();
    assert.match(
      text,
      /^covenant_reconcile_duration_seconds_count\{controller="widget",result="success"\} [1-9]\d*$/m,
    );
    assert.match(
      text,
      /^covenant_reconcile_duration_seconds_count\{controller="widget",result="error"\} 3$/m,
    );
    assert.match(
      text,
      /^covenant_kube_api_requests_total\{verb="apply",resource="configmaps",code="200",controller="widget"\} [1-9]\d*$/m,
    );
    assert.match(text, /^covenant_workqueue_depth\{name="widget"\} \d+$/m);
  });

  test("stop waits for the reconcile in flight, then the manager is not ready", async () => {
    await admin.patch(WIDGETS, NS, "busy", { spec: { slowMs: 1500, size: 100 } }, "merge");
    await waitFor("slow reconcile started", () => startedSlow, { timeoutMs: 10_000 });
    assert.equal(finishedSlow, false);
    const url = mgr.httpUrl!;
    await mgr.stop();
    assert.equal(finishedSlow, true, "the in-flight reconcile finished before stop resolved");
    assert.equal(running.size, 0);
    assert.equal(mgr.isReady(), false);
    await assert.rejects(fetch(`${url}/healthz`), "the HTTP server is closed");
    // Intake is stopped: further changes are not reconciled.
    const count = reconciles.get("alpha")!;
    await admin.patch(WIDGETS, NS, "alpha", { spec: { size: 9 } }, "merge");
    await sleep(500);
    assert.equal(reconciles.get("alpha"), count);
  });
});
