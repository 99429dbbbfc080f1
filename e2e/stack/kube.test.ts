// The local control plane is a real kube-apiserver: it serves CRDs, enforces RBAC
// on minted identities, and stops cleanly.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { startKube, type KubeStack } from "./kube.ts";
import { waitFor } from "./wait.ts";

const widgetCrd = (): V1CustomResourceDefinition => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.stack.test.covenant.io" },
  spec: {
    group: "stack.test.covenant.io",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["size"],
                properties: { size: { type: "integer", minimum: 1, maximum: 10 } },
              },
            },
          },
        },
      },
    ],
  },
});

describe("local control plane", { timeout: 180_000 }, () => {
  let kube: KubeStack;
  before(async () => {
    kube = await startKube();
  });
  after(async () => {
    await kube?.stop();
  });

  test("creates a namespace and serves a CustomResourceDefinition", async () => {
    const kc = kube.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "stack-test" } } });
    const ns = await core.readNamespace({ name: "stack-test" });
    assert.equal(ns.status?.phase, "Active");

    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({ body: widgetCrd() });
    await waitFor("CRD Established", async () => {
      const crd = await ext.readCustomResourceDefinition({ name: "widgets.stack.test.covenant.io" });
      return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });

    const objects = kc.makeApiClient(CustomObjectsApi);
    const target = {
      group: "stack.test.covenant.io",
      version: "v1",
      namespace: "stack-test",
      plural: "widgets",
    };
    await waitFor("widgets served", () => objects.listNamespacedCustomObject(target).then(() => true));
    await objects.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: "stack.test.covenant.io/v1",
        kind: "Widget",
        metadata: { name: "w" },
        spec: { size: 3 },
      },
    });
    const list = (await objects.listNamespacedCustomObject(target)) as {
      items: { metadata: { name: string } }[];
    };
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ["w"],
    );

    // The schema is enforced by the server.
    await assert.rejects(
      objects.createNamespacedCustomObject({
        ...target,
        body: {
          apiVersion: "stack.test.covenant.io/v1",
          kind: "Widget",
          metadata: { name: "x" },
          spec: { size: 99 },
        },
      }),
      (err: Error) => /spec\.size/.test(String((err as { body?: unknown }).body ?? err.message)),
    );
  });

  test("a minted identity has no rights until RBAC grants them", async () => {
    const admin = kube.kubeConfig();
    const user = await kube.mintUser("reader", ["covenant:testers"]);
    const userCore = user.kubeConfig().makeApiClient(CoreV1Api);
    await assert.rejects(userCore.listNamespacedPod({ namespace: "default" }), (err: { code?: number }) => {
      assert.equal(err.code, 403);
      return true;
    });

    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: "default",
      body: {
        metadata: { name: "pod-reader" },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: "default",
      body: {
        metadata: { name: "testers-read-pods" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
        subjects: [{ kind: "Group", name: "covenant:testers", apiGroup: "rbac.authorization.k8s.io" }],
      },
    });
    const pods = await waitFor("RBAC grant", () => userCore.listNamespacedPod({ namespace: "default" }));
    assert.deepEqual(pods.items, []);
    // Still nothing beyond the grant.
    await assert.rejects(
      userCore.listNamespacedSecret({ namespace: "default" }),
      (err: { code?: number }) => {
        assert.equal(err.code, 403);
        return true;
      },
    );
  });
});
