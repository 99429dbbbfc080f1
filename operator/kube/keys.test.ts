import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { resourceOfPath, verbOf } from "./client.ts";
import {
  CORE,
  apiVersionOf,
  keyOf,
  objectKey,
  parseObjectKey,
  parseQueueKey,
  queueKey,
  resourceLabel,
  resourcePath,
  type ResourceRef,
} from "./keys.ts";

const RUNS: ResourceRef = {
  group: "covenant.io",
  version: "v1alpha1",
  plural: "trainingruns",
  kind: "TrainingRun",
  namespaced: true,
};

describe("keys", () => {
  test("object keys round-trip for namespaced and cluster-scoped objects", () => {
    assert.equal(objectKey("ns", "a"), "ns/a");
    assert.equal(objectKey(undefined, "node-1"), "node-1");
    assert.deepEqual(parseObjectKey("ns/a"), { namespace: "ns", name: "a" });
    assert.deepEqual(parseObjectKey("node-1"), { namespace: undefined, name: "node-1" });
    assert.equal(keyOf({ metadata: { namespace: "x", name: "y" } }), "x/y");
    assert.throws(() => keyOf({ metadata: {} }), /metadata.name/);
    assert.throws(() => parseObjectKey("a/b/c"), /invalid object key/);
    assert.throws(() => parseObjectKey("/b"), /invalid object key/);
  });

  test("queue keys carry the kind and round-trip", () => {
    const k = queueKey("CovenantPeer", "team", "peer-0");
    assert.equal(k, "CovenantPeer/team/peer-0");
    assert.deepEqual(parseQueueKey(k), { kind: "CovenantPeer", namespace: "team", name: "peer-0" });
    assert.deepEqual(parseQueueKey(queueKey("Node", undefined, "n1")), {
      kind: "Node",
      namespace: undefined,
      name: "n1",
    });
    assert.throws(() => parseQueueKey("Pod/ns"), /invalid queue key/);
    assert.throws(() => parseQueueKey("/ns/name"), /invalid queue key/);
  });

  test("paths for core and group resources, objects and subresources", () => {
    assert.equal(resourcePath(CORE.pods), "/api/v1/pods");
    assert.equal(resourcePath(CORE.pods, "ns"), "/api/v1/namespaces/ns/pods");
    assert.equal(resourcePath(CORE.nodes, "ignored", "n1"), "/api/v1/nodes/n1");
    assert.equal(
      resourcePath(RUNS, "ns", "r1", "status"),
      "/apis/covenant.io/v1alpha1/namespaces/ns/trainingruns/r1/status",
    );
    assert.throws(() => resourcePath(RUNS, "ns", undefined, "status"), /needs an object name/);
    assert.equal(apiVersionOf(RUNS), "covenant.io/v1alpha1");
    assert.equal(apiVersionOf(CORE.pods), "v1");
    assert.equal(resourceLabel(CORE.leases), "leases.coordination.k8s.io");
  });

  test("request metrics labels come from the path", () => {
    assert.equal(verbOf("GET", "/api/v1/namespaces/ns/pods"), "list");
    assert.equal(verbOf("GET", "/api/v1/pods"), "list");
    assert.equal(verbOf("GET", "/api/v1/namespaces/ns/pods/p"), "get");
    assert.equal(verbOf("GET", "/api/v1/nodes/n1"), "get");
    assert.equal(verbOf("GET", "/apis/covenant.io/v1alpha1/namespaces/ns/trainingruns"), "list");
    assert.equal(verbOf("PATCH", "/api/v1/namespaces/ns/pods/p"), "patch");
    assert.equal(resourceOfPath("/api/v1/namespaces/ns/pods/p"), "pods");
    assert.equal(resourceOfPath("/api/v1/namespaces"), "namespaces");
    assert.equal(
      resourceOfPath("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"),
      "leases.coordination.k8s.io",
    );
  });
});
