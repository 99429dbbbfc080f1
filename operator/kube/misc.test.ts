import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateApplyObject } from "./apply.ts";
import { ownerOf } from "./controller.ts";
import { CORE } from "./keys.ts";
import { LeaderElector } from "./leader.ts";
import { parseAddress } from "./manager.ts";
import { KubeClient } from "./client.ts";
import { KubeConfig } from "@kubernetes/client-node";

describe("ownerOf", () => {
  const ref = (kind: string, name: string, controller?: boolean, apiVersion = "covenant.io/v1alpha1") => ({
    apiVersion,
    kind,
    name,
    uid: name,
    controller,
  });
  test("prefers the controller reference of the kind, else the first of the kind", () => {
    assert.equal(
      ownerOf(
        [ref("CovenantPeer", "a"), ref("CovenantPeer", "b", true)],
        "CovenantPeer",
        "covenant.io/v1alpha1",
      )?.name,
      "b",
    );
    assert.equal(ownerOf([ref("CovenantPeer", "a")], "CovenantPeer", "covenant.io/v1alpha1")?.name, "a");
    assert.equal(
      ownerOf([ref("ReplicaSet", "r", true, "apps/v1")], "CovenantPeer", "covenant.io/v1alpha1"),
      undefined,
    );
    assert.equal(
      ownerOf([ref("CovenantPeer", "a", true, "other.io/v1")], "CovenantPeer", "covenant.io/v1alpha1"),
      undefined,
    );
  });
});

describe("validateApplyObject", () => {
  test("requires apiVersion, kind, name and namespace, naming what is wrong", () => {
    const ok = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "n" } };
    assert.doesNotThrow(() => validateApplyObject(CORE.pods, ok, "m"));
    assert.throws(() => validateApplyObject(CORE.pods, ok, ""), /fieldManager/);
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, apiVersion: "apps/v1" }, "m"),
      /expected "v1"/,
    );
    assert.throws(() => validateApplyObject(CORE.pods, { ...ok, kind: "Node" }, "m"), /expected "Pod"/);
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, metadata: { namespace: "n" } }, "m"),
      /metadata.name/,
    );
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, metadata: { name: "p" } }, "m"),
      /metadata.namespace/,
    );
    assert.doesNotThrow(() =>
      validateApplyObject(CORE.nodes, { apiVersion: "v1", kind: "Node", metadata: { name: "n" } }, "m"),
    );
  });
});

describe("parseAddress", () => {
  test("accepts host:port, :port and [v6]:port", () => {
    assert.deepEqual(parseAddress("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseAddress(":9000"), { host: "0.0.0.0", port: 9000 });
    assert.deepEqual(parseAddress("[::1]:0"), { host: "::1", port: 0 });
  });
  test("rejects malformed addresses with the expected form", () => {
    assert.throws(() => parseAddress("8080"), /expected host:port/);
    assert.throws(() => parseAddress("a:70000"), /out of range/);
  });
});

describe("LeaderElector", () => {
  test("refuses timings that cannot work", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const client = KubeClient.fromKubeConfig(kc);
    const base = { leaseName: "l", leaseNamespace: "n", identity: "me" };
    assert.throws(
      () => new LeaderElector(client, { ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
      /leaseDuration > renewDeadline > retryPeriod/,
    );
    assert.throws(() => new LeaderElector(client, { ...base, identity: "" }), /identity/);
    assert.doesNotThrow(() => new LeaderElector(client, base));
  });
});
