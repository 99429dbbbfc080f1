// Informers against a real kube-apiserver: create/update/delete reach handlers and the
// cache, an expired (compacted) resourceVersion leads to a re-list that recovers, and
// watch bookmarks move the resourceVersion without object changes.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { createOperatorMetrics, type OperatorMetrics } from "../../operator/metrics/registry.ts";
import { CORE, Informer, KubeClient, stripManagedFields } from "../../operator/kube/index.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { waitFor } from "../stack/wait.ts";
import { compactEtcd } from "./etcd.ts";

const counter = async (
  m: OperatorMetrics["informerRelists"] | OperatorMetrics["informerEvents"],
  labels: object,
) => {
  const got = await m.get();
  const want = Object.entries(labels);
  return got.values
    .filter((v) => want.every(([k, x]) => v.labels[k as keyof typeof v.labels] === x))
    .reduce((s, v) => s + v.value, 0);
};

describe("informer", { timeout: 240_000 }, () => {
  let kube: KubeStack;
  let client: KubeClient;
  let metrics: OperatorMetrics;
  const informers: { stop(): Promise<void> }[] = [];

  before(async () => {
    // Config maps bypass the watch cache, so that compacting etcd expires watch positions at once.
    kube = await startKube({ apiserverArgs: ["--watch-cache-sizes=configmaps#0"] });
    metrics = createOperatorMetrics({ processMetrics: false });
    client = KubeClient.fromKubeConfig(kube.kubeConfig(), { metrics });
    for (const ns of ["inf", "gone", "bm"]) {
      await client.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    }
  });
  after(async () => {
    for (const i of informers) await i.stop();
    await kube?.stop();
  });

  const cm = (
    ns: string,
    name: string,
    data: Record<string, string>,
    labels?: Record<string, string>,
  ): V1ConfigMap => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { namespace: ns, name, labels },
    data,
  });

  test("sees create, update and delete, in the cache and through handlers", async () => {
    await client.create(CORE.configMaps, cm("inf", "before", { a: "1" }));
    const inf = new Informer<V1ConfigMap>(client, { resource: CORE.configMaps, namespace: "inf", metrics });
    informers.push(inf);
    const seen: string[] = [];
    inf.addHandler({
      onAdd: (o) => seen.push(`add ${o.metadata?.name} ${o.data?.a}`),
      onUpdate: (old, o) => seen.push(`update ${o.metadata?.name} ${old.data?.a}->${o.data?.a}`),
      onDelete: (o) => seen.push(`delete ${o.metadata?.name}`),
    });
    inf.start();
    await inf.waitForSync();
    assert.ok(inf.hasSynced());
    assert.equal(inf.store.get("inf/before")?.data?.a, "1");
    assert.equal(inf.store.get("inf/before")?.kind, "ConfigMap", "list items get their kind filled in");

    await client.create(CORE.configMaps, cm("inf", "x", { a: "1" }));
    await waitFor("add", () => inf.store.get("inf/x"));
    await client.patch(CORE.configMaps, "inf", "x", { data: { a: "2" } }, "merge");
    await waitFor("update", () => inf.store.get("inf/x")?.data?.a === "2");
    await client.delete(CORE.configMaps, "inf", "x");
    await waitFor("delete", () => inf.store.get("inf/x") === undefined);

    assert.deepEqual(seen, ["add before 1", "add x 1", "update x 1->2", "delete x"]);
    assert.equal(inf.store.list("inf").length, 1);
    // A handler added late gets the cached objects replayed as adds.
    const late: string[] = [];
    inf.addHandler({ onAdd: (o) => late.push(o.metadata!.name!) });
    assert.deepEqual(late, ["before"]);
  });

  test("a transform shapes cached objects (managed fields stripped)", async () => {
    const plain = new Informer<V1ConfigMap>(client, { resource: CORE.configMaps, namespace: "inf" });
    const slim = new Informer<V1ConfigMap>(client, {
      resource: CORE.configMaps,
      namespace: "inf",
      transform: stripManagedFields,
    });
    informers.push(plain, slim);
    plain.start();
    slim.start();
    await Promise.all([plain.waitForSync(), slim.waitForSync()]);
    assert.ok(plain.store.get("inf/before")?.metadata?.managedFields?.length);
    assert.equal(slim.store.get("inf/before")?.metadata?.managedFields, undefined);
    await client.patch(CORE.configMaps, "inf", "before", { data: { a: "3" } }, "merge");
    await waitFor("watched update", () => slim.store.get("inf/before")?.data?.a === "3");
    assert.equal(
      slim.store.get("inf/before")?.metadata?.managedFields,
      undefined,
      "watch events are transformed too",
    );
  });

  test("recovers from a compacted resourceVersion (410 Gone) by re-listing", async () => {
    const inf = new Informer<V1ConfigMap>(client, {
      resource: CORE.configMaps,
      namespace: "gone",
      labelSelector: "tracked=yes",
      watchTimeoutSeconds: 2, // re-watch every 2 s from the last resourceVersion seen
      metrics,
    });
    informers.push(inf);
    const deleted: string[] = [];
    inf.addHandler({ onDelete: (o) => deleted.push(o.metadata!.name!) });
    await client.create(CORE.configMaps, cm("gone", "t1", { v: "1" }, { tracked: "yes" }));
    inf.start();
    await inf.waitForSync();
    const rvBefore = inf.lastResourceVersion();
    assert.ok(inf.store.get("gone/t1"));

    // Untracked writes move the store revision past the informer's position; then compact.
    for (let i = 0; i < 10; i++)
      await client.create(CORE.configMaps, cm("gone", `noise-${i}`, { i: String(i) }));
    const gone0 = await counter(metrics.informerRelists, { resource: "configmaps", reason: "gone" });
    const compactedAt = await compactEtcd(kube.etcdUrl);
    assert.ok(compactedAt > Number(rvBefore));

    await waitFor(
      "a re-list after 410 Gone",
      async () =>
        (await counter(metrics.informerRelists, { resource: "configmaps", reason: "gone" })) > gone0,
      { timeoutMs: 20_000 },
    );
    // The re-list is counted when it starts; its resourceVersion lands when the list returns.
    await waitFor(
      "the re-list moves past the compacted revision",
      async () => Number(inf.lastResourceVersion()) >= compactedAt,
      { timeoutMs: 20_000 },
    );

    // The informer keeps working after recovery.
    await client.create(CORE.configMaps, cm("gone", "t2", { v: "1" }, { tracked: "yes" }));
    await client.delete(CORE.configMaps, "gone", "t1");
    await waitFor("events after recovery", () => inf.store.get("gone/t2") && !inf.store.get("gone/t1"), {
      timeoutMs: 15_000,
    });
    assert.deepEqual(deleted, ["t1"]);
    const server = await client.list<V1ConfigMap>(CORE.configMaps, {
      namespace: "gone",
      labelSelector: "tracked=yes",
    });
    assert.deepEqual(inf.store.keys().sort(), server.items.map((o) => `gone/${o.metadata!.name}`).sort());
  });

  test("bookmarks advance the resourceVersion without object changes", async () => {
    const inf = new Informer<V1Secret>(client, {
      resource: CORE.secrets,
      namespace: "bm",
      labelSelector: "tracked=yes",
      watchTimeoutSeconds: 6,
      metrics,
    });
    informers.push(inf);
    inf.start();
    await inf.waitForSync();
    const rv0 = Number(inf.lastResourceVersion());
    // Changes the informer does not select still move the global revision; the watch cache
    // reports that progress with a bookmark shortly before the watch's timeout.
    let n = 0;
    const writeOther = () =>
      client.create(CORE.secrets, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { namespace: "bm", name: `other-${n++}` },
        stringData: { x: "y" },
      } as V1Secret);
    await waitFor(
      "a bookmark past the unselected changes",
      async () => {
        await writeOther();
        return (
          (await counter(metrics.informerEvents, { resource: "secrets", type: "BOOKMARK" })) > 0 &&
          Number(inf.lastResourceVersion()) > rv0
        );
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    assert.equal(await counter(metrics.informerRelists, { resource: "secrets" }), 1, "no re-list needed");
    assert.equal(inf.store.size, 0, "bookmarks carry no objects");
  });
});
