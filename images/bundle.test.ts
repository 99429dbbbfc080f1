import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeRecords } from "./build.ts";
import { bundledPackages, licensesText, lockKeyOf } from "./bundle.ts";
import type { ImageRecord } from "./digests.ts";

test("files map to the lock entry of the package that holds them, nested ones included", () => {
  assert.equal(lockKeyOf("node_modules/ws/lib/websocket.js"), "node_modules/ws");
  assert.equal(lockKeyOf("node_modules/@polkadot/api/index.js"), "node_modules/@polkadot/api");
  assert.equal(
    lockKeyOf("node_modules/@kubernetes/client-node/node_modules/ws/index.js"),
    "node_modules/@kubernetes/client-node/node_modules/ws",
  );
  assert.equal(lockKeyOf("node_modules/a/node_modules/@s/b/x.js"), "node_modules/a/node_modules/@s/b");
  assert.equal(lockKeyOf("../../operator/main.ts"), null);
});

test("bundled packages come from the production tree and are production dependencies", () => {
  const lock = {
    "node_modules/ws": { version: "8.18.3", license: "MIT" },
    "node_modules/@s/p": { version: "1.0.0", license: "Apache-2.0" },
    "node_modules/has-flag": { version: "4.0.0", license: "MIT", dev: true },
  };
  const inputs = [
    "../../operator/main.ts",
    "node_modules/ws/index.js",
    "node_modules/ws/lib/x.js",
    "node_modules/@s/p/i.js",
  ];
  assert.deepEqual(bundledPackages(inputs, lock), [
    { key: "node_modules/@s/p", name: "@s/p", version: "1.0.0", license: "Apache-2.0" },
    { key: "node_modules/ws", name: "ws", version: "8.18.3", license: "MIT" },
  ]);
  assert.throws(() => bundledPackages(["node_modules/has-flag/index.js"], lock), /devDependency only/);
  assert.throws(() => bundledPackages(["node_modules/left-pad/index.js"], lock), /not in package-lock.json/);
  // A file from the development node_modules (outside the production tree) would not exist in production.
  assert.throws(
    () => bundledPackages(["../../../node_modules/ws/index.js"], lock),
    /outside the production dependencies/,
  );
});

test("the license file names each package and carries its texts", () => {
  const text = licensesText(
    "tool",
    [{ key: "node_modules/ws", name: "ws", version: "8.18.3", license: "MIT" }],
    () => [{ file: "LICENSE", text: "MIT License\n\n" }],
  );
  assert.match(text, /^Third-party packages compiled into tool/);
  assert.match(text, /ws@8\.18\.3 \(MIT\)\n\n--- LICENSE\nMIT License\n/);
  const none = licensesText(
    "tool",
    [{ key: "node_modules/x", name: "x", version: "1", license: "ISC" }],
    () => [],
  );
  assert.match(none, /ships no license file; its package.json says ISC/);
});

test("images.json keeps the images still on disk and replaces the rebuilt ones", () => {
  const rec = (name: string, c: string): ImageRecord => ({
    digest: `sha256:${c.repeat(64)}`,
    ref: `r/${name}@sha256:${c.repeat(64)}`,
    name: `r/${name}:1`,
    archive: `build/images/${name}.oci.tar`,
  });
  const previous = { b: rec("b", "1"), a: rec("a", "2"), gone: rec("gone", "3") };
  const merged = mergeRecords(previous, { b: rec("b", "4") }, (a) => !a.includes("gone"));
  assert.deepEqual(Object.keys(merged), ["a", "b"]);
  assert.equal(merged.b!.digest, `sha256:${"4".repeat(64)}`);
});
