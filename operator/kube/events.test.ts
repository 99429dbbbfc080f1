import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_EVENT_MESSAGE, aggregationKey, eventKeyParts, eventName, truncateMessage } from "./events.ts";

const peer = {
  apiVersion: "covenant.io/v1alpha1",
  kind: "CovenantPeer",
  metadata: { namespace: "team", name: "peer-0", uid: "1111" },
};

describe("event aggregation keys", () => {
  test("the same object, type, reason and message aggregate; any difference does not", () => {
    const k = (o = peer, type: "Normal" | "Warning" = "Normal", reason = "PodCreated", msg = "created pod") =>
      aggregationKey(eventKeyParts(o, type, reason, msg, "covenant-operator"));
    const base = k();
    assert.equal(k(), base);
    assert.notEqual(k(peer, "Warning"), base);
    assert.notEqual(k(peer, "Normal", "PodDeleted"), base);
    assert.notEqual(k(peer, "Normal", "PodCreated", "created pod x"), base);
    assert.notEqual(
      k({ ...peer, metadata: { ...peer.metadata, uid: "2222" } }),
      base,
      "a recreated object is new",
    );
    assert.notEqual(k({ ...peer, metadata: { ...peer.metadata, namespace: "other" } }), base);
  });

  test("names are stable, valid and bounded", () => {
    const p = eventKeyParts(peer, "Normal", "PodCreated", "m", "c");
    assert.equal(eventName(p), eventName(eventKeyParts(peer, "Normal", "PodCreated", "m", "c")));
    assert.match(eventName(p), /^peer-0\.[0-9a-f]{16}$/);
    const long = { ...peer, metadata: { ...peer.metadata, name: "x".repeat(253) } };
    assert.ok(eventName(eventKeyParts(long, "Normal", "R", "m", "c")).length <= 253);
    assert.notEqual(eventName(p), eventName(eventKeyParts(peer, "Normal", "PodCreated", "m2", "c")));
  });

  test("long messages are truncated so that repeats still aggregate", () => {
    const long = "y".repeat(5000);
    assert.equal(truncateMessage(long).length, MAX_EVENT_MESSAGE);
    assert.ok(truncateMessage(long).endsWith("..."));
    assert.equal(truncateMessage("short"), "short");
  });
});
