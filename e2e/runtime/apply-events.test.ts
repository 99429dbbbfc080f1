// Server-side apply with two field managers, and the event recorder's aggregation, against
// a real kube-apiserver.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { CoreV1Event, V1ConfigMap } from "@kubernetes/client-node";
import { createOperatorMetrics } from "../../operator/metrics/registry.ts";
import {
  AggregatingEventRecorder,
  ApiError,
  CORE,
  KubeClient,
  applyObject,
  applyStatus,
  type CoreEvent,
} from "../../operator/kube/index.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { WIDGETS, installWidgetCrd, widget, type Widget } from "./fixtures.ts";

const NS = "ssa";

describe("server-side apply and events", { timeout: 180_000 }, () => {
  let kube: KubeStack;
  let client: KubeClient;

  before(async () => {
    kube = await startKube();
    client = KubeClient.fromKubeConfig(kube.kubeConfig());
    await client.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    await installWidgetCrd(client);
  });
  after(async () => {
    await kube?.stop();
  });

  const cm = (data: Record<string, string>): V1ConfigMap => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: NS, name: "shared" },
    data,
  });

  test("two field managers own separate fields; each prunes only its own", async () => {
    await applyObject(client, CORE.configMaps, cm({ a: "1", common: "x" }), { fieldManager: "manager-a" });
    const both = await applyObject(client, CORE.configMaps, cm({ b: "2" }), { fieldManager: "manager-b" });
    assert.deepEqual(both.data, { a: "1", common: "x", b: "2" });
    const managers = (both.metadata?.managedFields ?? []).map((f) => `${f.manager}:${f.operation}`).sort();
    assert.deepEqual(managers, ["manager-a:Apply", "manager-b:Apply"]);

    // manager-a stops declaring "a": only its field goes, manager-b's stays.
    const pruned = await applyObject(client, CORE.configMaps, cm({ common: "x" }), {
      fieldManager: "manager-a",
    });
    assert.deepEqual(pruned.data, { common: "x", b: "2" });
  });

  test("a conflicting apply fails without force and takes the field with force", async () => {
    await assert.rejects(
      applyObject(client, CORE.configMaps, cm({ b: "2", common: "y" }), {
        fieldManager: "manager-b",
        force: false,
      }),
      (e: unknown) => e instanceof ApiError && e.statusCode === 409 && /conflict/i.test(e.message),
    );
    const taken = await applyObject(client, CORE.configMaps, cm({ b: "2", common: "y" }), {
      fieldManager: "manager-b",
    });
    assert.equal(taken.data?.common, "y");
    // manager-a lost "common": its next apply without it leaves the value alone.
    const after = await applyObject(client, CORE.configMaps, cm({}), { fieldManager: "manager-a" });
    assert.deepEqual(after.data, { b: "2", common: "y" });
  });

  test("spec and status are applied separately, each by its own manager", async () => {
    await applyObject(client, WIDGETS, widget(NS, "w1", { size: 3 }), { fieldManager: "spec-owner" });
    const withStatus = await applyStatus<Widget>(
      client,
      WIDGETS,
      { ...widget(NS, "w1"), spec: undefined, status: { phase: "Ready", observedGeneration: 1 } },
      { fieldManager: "status-owner" },
    );
    assert.deepEqual(withStatus.status, { phase: "Ready", observedGeneration: 1 });
    assert.equal(withStatus.spec?.size, 3, "a status apply leaves spec alone");
    // Status sent to the main resource is ignored by the server.
    const specOnly = await applyObject<Widget>(
      client,
      WIDGETS,
      { ...widget(NS, "w1", { size: 4 }), status: { phase: "Bogus" } },
      { fieldManager: "spec-owner" },
    );
    assert.equal(specOnly.spec?.size, 4);
    assert.equal(specOnly.status?.phase, "Ready");
    const owners = (specOnly.metadata?.managedFields ?? [])
      .map((f) => `${f.manager}:${f.subresource ?? ""}`)
      .sort();
    assert.deepEqual(owners, ["spec-owner:", "status-owner:status"]);
  });

  test("repeats of an event become one Event with a count, also across recorder restarts", async () => {
    const metrics = createOperatorMetrics({ processMetrics: false });
    const target = await client.get<V1ConfigMap>(CORE.configMaps, NS, "shared");
    const rec = new AggregatingEventRecorder(client, { component: "runtime-test", metrics });
    for (let i = 0; i < 7; i++) rec.normal(target, "Synced", "synced the config map");
    rec.warning(target, "SyncFailed", "could not sync: boom");
    await rec.flush();

    const events = async () =>
      (await client.list<CoreV1Event>(CORE.events, { namespace: NS })).items.filter(
        (e) => e.involvedObject.uid === target.metadata?.uid,
      );
    let list = await events();
    assert.equal(list.length, 2, JSON.stringify(list.map((e) => [e.reason, e.count])));
    const synced = list.find((e) => e.reason === "Synced")!;
    assert.equal(synced.count, 7);
    assert.equal(synced.type, "Normal");
    assert.equal(synced.involvedObject.kind, "ConfigMap");
    assert.equal(synced.source?.component, "runtime-test");
    assert.equal(list.find((e) => e.reason === "SyncFailed")?.count, 1);

    // A fresh recorder (a restarted operator) finds the existing Event by its name.
    const rec2 = new AggregatingEventRecorder(client, { component: "runtime-test", metrics });
    rec2.normal(target, "Synced", "synced the config map");
    rec2.normal(target, "Synced", "synced the config map");
    await rec2.flush();
    list = await events();
    assert.equal(list.length, 2);
    assert.equal(list.find((e) => e.reason === "Synced")?.count, 9);

    const emitted = await metrics.eventsEmitted.get();
    assert.ok(emitted.values.some((v) => v.labels.action === "aggregated" && v.value > 0));
  });

  test("bad input and API errors are counted, never thrown", async () => {
    const metrics = createOperatorMetrics({ processMetrics: false });
    const rec = new AggregatingEventRecorder(client, { component: "runtime-test", metrics, burst: 2 });
    const target = await client.get<V1ConfigMap>(CORE.configMaps, NS, "shared");
    rec.normal(target, "not camel", "m");
    rec.normal({ kind: "ConfigMap", metadata: {} }, "Reason", "m");
    // Distinct new events beyond the per-object burst are rate limited.
    for (let i = 0; i < 4; i++) rec.normal(target, "Distinct", `message ${i}`);
    // An object in a namespace that does not exist: the API refuses the Event.
    rec.warning({ ...target, metadata: { ...target.metadata, namespace: "nowhere", uid: "x" } }, "Lost", "m");
    await rec.flush();
    const dropped = Object.fromEntries(
      (await metrics.eventsDropped.get()).values.map((v) => [v.labels.reason, v.value]),
    );
    assert.deepEqual(dropped, { invalid: 2, rate_limited: 2, api_error: 1 });

    // Cluster-scoped objects get their Events in "default".
    const ns = await client.get(CORE.namespaces, undefined, NS);
    rec.normal(ns, "Checked", "namespace checked");
    await rec.flush();
    const inDefault = await client.list<CoreEvent>(CORE.events, { namespace: "default" });
    assert.ok(inDefault.items.some((e) => e.reason === "Checked" && e.involvedObject.kind === "Namespace"));
  });
});
