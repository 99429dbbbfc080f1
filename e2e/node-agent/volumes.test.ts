import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveEnv, rewritePath, type PathMap } from "./volumes.ts";

const map: PathMap = [
  ["/etc/covenant/run", "/tmp/pod/volumes/run-config"],
  ["/etc/covenant", "/tmp/pod/volumes/other"],
];

test("paths under a mount are rewritten, longest mount first; others are left alone", () => {
  assert.equal(rewritePath("/etc/covenant/run/config.yaml", map), "/tmp/pod/volumes/run-config/config.yaml");
  assert.equal(rewritePath("/etc/covenant/x", map), "/tmp/pod/volumes/other/x");
  assert.equal(
    rewritePath("--config=/etc/covenant/run/c.yaml", map),
    "--config=/tmp/pod/volumes/run-config/c.yaml",
  );
  assert.equal(rewritePath("/etc/covenantx", map), "/etc/covenantx");
  assert.equal(rewritePath("plain", map), "plain");
});

test("downward-API fields and literal values make the environment", () => {
  const env = resolveEnv(
    { metadata: { name: "p", namespace: "ns" }, spec: { nodeName: "gpu-0", containers: [] } },
    {
      name: "c",
      env: [
        { name: "A", value: "/etc/covenant/run/f" },
        { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      ],
    },
    map,
  );
  assert.deepEqual(env, { A: "/tmp/pod/volumes/run-config/f", POD: "p", NODE: "gpu-0" });
});
