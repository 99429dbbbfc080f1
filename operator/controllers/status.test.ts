import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeConditions } from "./conditions.ts";
import { canonicalJson, hashOf } from "./hash.ts";
import type { CovenantPeerStatus } from "../../api/index.ts";
import { statusChanged } from "./status.ts";

const T0 = new Date("2026-01-01T00:00:00Z");
const T1 = new Date("2026-01-01T00:01:00Z");

describe("conditions and status writes", () => {
  it("lastTransitionTime moves only when the status flips", () => {
    const a = mergeConditions(
      undefined,
      [{ type: "Ready", status: "False", reason: "A", message: "m" }],
      1,
      T0,
    );
    const b = mergeConditions(a, [{ type: "Ready", status: "False", reason: "B", message: "n" }], 2, T1);
    assert.equal(b[0]?.lastTransitionTime, T0.toISOString());
    assert.equal(b[0]?.reason, "B");
    const c = mergeConditions(b, [{ type: "Ready", status: "True", reason: "C", message: "" }], 2, T1);
    assert.equal(c[0]?.lastTransitionTime, T1.toISOString());
  });

  it("statusChanged ignores fields and conditions other controllers own", () => {
    const mine = mergeConditions(
      undefined,
      [{ type: "Ready", status: "True", reason: "R", message: "" }],
      1,
      T0,
    );
    const other = {
      type: "Registered",
      status: "True" as const,
      reason: "X",
      message: "",
      lastTransitionTime: "t",
    };
    const current: CovenantPeerStatus = { podName: "p", uid: 5, conditions: [...mine, other] };
    assert.equal(
      statusChanged<CovenantPeerStatus>(current, { podName: "p", conditions: mine }, [
        "podName",
        "conditions",
      ]),
      false,
    );
    assert.equal(
      statusChanged<CovenantPeerStatus>(current, { podName: "q", conditions: mine }, [
        "podName",
        "conditions",
      ]),
      true,
    );
    assert.equal(
      statusChanged<CovenantPeerStatus>(current, { conditions: mine }, ["podName", "conditions"]),
      true,
      "a field to remove",
    );
    const flipped = mergeConditions(
      mine,
      [{ type: "Ready", status: "False", reason: "R", message: "" }],
      1,
      T1,
    );
    assert.equal(
      statusChanged<CovenantPeerStatus>(current, { podName: "p", conditions: flipped }, [
        "podName",
        "conditions",
      ]),
      true,
    );
  });

  it("hashes ignore key order", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), '{"a":{"c":3,"d":2},"b":1}');
    assert.equal(hashOf({ a: 1, b: 2 }), hashOf({ b: 2, a: 1 }));
    assert.notEqual(hashOf({ a: 1 }), hashOf({ a: 2 }));
  });
});
