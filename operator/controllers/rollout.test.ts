import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rolloutDecision, type RolloutPeer } from "./rollout.ts";

const peers = (spec: string): RolloutPeer[] =>
  // "a:ro" = a is available (r) and outdated (o); "b:-" = b unavailable and current.
  spec.split(" ").map((p) => {
    const [name, flags] = p.split(":") as [string, string];
    return { name, available: flags.includes("r"), outdated: flags.includes("o") };
  });

/** Which peers may replace their outdated pod now. */
const movers = (spec: string, max: number) =>
  peers(spec)
    .filter((p) => p.outdated && rolloutDecision(p.name, peers(spec), max).replace)
    .map((p) => p.name);

describe("rolloutDecision", () => {
  it("replaces one available outdated pod at a time with maxUnavailable 1, in name order", () => {
    assert.deepEqual(movers("c:ro b:ro a:ro", 1), ["a"]);
    assert.deepEqual(movers("c:ro b:ro a:r", 1), ["b"]);
  });

  it("waits while a replaced pod is not Ready again", () => {
    // a was replaced: its new pod is current but not Ready yet.
    assert.deepEqual(movers("a: b:ro c:ro", 1), []);
    assert.deepEqual(movers("a:r b:ro c:ro", 1), ["b"]);
  });

  it("a peer down for another reason uses the budget too, but its own outdated pod goes at once", () => {
    assert.deepEqual(movers("a:o b:ro c:ro", 1), ["a"]);
    assert.deepEqual(movers("a:o b:ro c:ro", 2), ["a", "b"]);
    assert.deepEqual(movers("x: b:ro c:ro", 1), []);
  });

  it("maxUnavailable bounds how many go at once", () => {
    assert.deepEqual(movers("a:ro b:ro c:ro d:ro e:ro", 2), ["a", "b"]);
    assert.deepEqual(movers("a: b:ro c:ro d:ro e:ro", 3), ["b", "c"]);
    assert.deepEqual(movers("a:ro b:ro", 10), ["a", "b"]);
  });

  it("never lets every peer go at once: at most maxUnavailable are unavailable after the moves", () => {
    for (const max of [1, 2, 3]) {
      for (const spec of ["a:ro b:ro c:ro d:ro", "a: b:ro c:ro d:ro", "a:o b:ro c:r d:ro"]) {
        const ps = peers(spec);
        const down = ps.filter((p) => !p.available).length;
        const going = movers(spec, max).filter((n) => ps.find((p) => p.name === n)!.available).length;
        assert.ok(down + going <= Math.max(max, down), `${spec} with ${max}`);
      }
    }
  });

  it("says why a pod waits", () => {
    const d = rolloutDecision("c", peers("a: b:ro c:ro"), 1);
    assert.equal(d.replace, false);
    assert.match(!d.replace ? d.message : "", /1 of at most 1 peers unavailable \(a\)/);
  });
});
