import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Store } from "./cache.ts";
import { matchesSelector, parseSelector } from "./selector.ts";

const labels = { app: "worker", role: "miner", tier: "gpu" };

describe("label selectors", () => {
  const cases: [string, boolean][] = [
    ["app=worker", true],
    ["app==worker", true],
    ["app=validator", false],
    ["app!=validator", true],
    ["missing!=x", true],
    ["role in (miner, validator)", true],
    ["role notin (miner)", false],
    ["app=worker,role in (validator)", false],
    ["app, !missing", true],
    ["!app", false],
    ["", true],
  ];
  for (const [sel, want] of cases) {
    test(`"${sel}" -> ${want}`, () => {
      assert.equal(matchesSelector(parseSelector(sel), labels), want);
    });
  }

  test("structured selectors and plain label maps", () => {
    assert.equal(matchesSelector(parseSelector({ app: "worker" }), labels), true);
    assert.equal(
      matchesSelector(
        parseSelector({
          matchLabels: { tier: "gpu" },
          matchExpressions: [{ key: "role", operator: "NotIn", values: ["validator"] }],
        }),
        labels,
      ),
      true,
    );
    assert.throws(
      () => parseSelector({ matchExpressions: [{ key: "a", operator: "Gt", values: ["1"] }] }),
      /unknown operator "Gt"/,
    );
  });

  test("rejects what it cannot parse", () => {
    assert.throws(() => parseSelector("a=b=c"), /cannot parse/);
    assert.throws(() => parseSelector("a in b"), /cannot parse/);
  });
});

describe("Store", () => {
  const pod = (ns: string, name: string, l: Record<string, string>, owner?: string) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      namespace: ns,
      name,
      labels: l,
      ownerReferences: owner ? [{ apiVersion: "v1", kind: "X", name: "o", uid: owner }] : undefined,
    },
  });

  test("indexes by key, namespace, owner and labels, and keeps indexes in step on update and delete", () => {
    const s = new Store();
    s.upsert(pod("a", "p1", { app: "worker" }, "u1"));
    s.upsert(pod("a", "p2", { app: "other" }, "u1"));
    s.upsert(pod("b", "p1", { app: "worker" }, "u2"));
    assert.equal(s.size, 3);
    assert.equal(s.get("a/p1")?.metadata?.name, "p1");
    assert.equal(s.getByName("b", "p1")?.metadata?.namespace, "b");
    assert.deepEqual(
      s
        .list("a")
        .map((o) => o.metadata?.name)
        .sort(),
      ["p1", "p2"],
    );
    assert.equal(s.listByOwner("u1").length, 2);
    assert.deepEqual(
      s
        .listByLabels("app=worker")
        .map((o) => o.metadata?.namespace)
        .sort(),
      ["a", "b"],
    );
    assert.equal(s.listByLabels({ app: "worker" }, "b").length, 1);

    // Re-owning and relabelling moves the object between index entries.
    const old = s.upsert(pod("a", "p2", { app: "worker" }, "u2"));
    assert.equal(old?.metadata?.labels?.app, "other");
    assert.equal(s.listByOwner("u1").length, 1);
    assert.equal(s.listByOwner("u2").length, 2);
    assert.equal(s.listByLabels("app=worker").length, 3);

    assert.equal(s.remove("a/p2")?.metadata?.name, "p2");
    assert.equal(s.remove("a/p2"), undefined);
    assert.equal(s.listByOwner("u2").length, 1);
    assert.equal(s.list("a").length, 1);
    assert.equal(s.size, 2);
  });
});
