import assert from "node:assert/strict";
import { test } from "node:test";
import { roundCost } from "./model.ts";
import { lineChart, crc32 } from "./png.ts";
import { simulate, type SimConfig } from "./sim.ts";
import { loadInputs, settingsFor } from "./simulate.ts";

const inputs = loadInputs();
const c72 = inputs.cases.find((c) => c.preset === "llama3-72b")!;

function calm(sim: Omit<SimConfig, "seed" | "rounds">): Omit<SimConfig, "seed" | "rounds"> {
  return {
    ...sim,
    regions: 1,
    serverEgressBytesPerSecond: Infinity,
    stragglers: { ...sim.stragglers, probability: 0, jitter: 0 },
    churn: { ...sim.churn, leaveProbability: 0 },
  };
}

test("same seed, same result; another seed, another draw", () => {
  const { sim } = settingsFor(inputs, c72, "a");
  const run = (seed: number) => simulate({ ...sim, seed, rounds: 8 });
  const [x, y, z] = [run(7), run(7), run(8)];
  assert.deepEqual(x, y);
  assert.notDeepEqual(x.selected.concat(x.roundSeconds), z.selected.concat(z.roundSeconds));
});

test("degenerate case (1 region, no stragglers, no churn, unbounded servers) equals the cost model", () => {
  for (const design of ["a", "b"] as const) {
    const { model, sim } = settingsFor(inputs, { ...c72, regions: 1 }, design);
    const cost = roundCost({ ...model, busEgressBytesPerSecond: Infinity });
    const r = simulate({ ...calm(sim), seed: 1, rounds: 5 });
    assert.ok(
      Math.abs(r.roundSeconds / cost.roundSeconds - 1) < 1e-9,
      `${design}: ${r.roundSeconds} vs ${cost.roundSeconds}`,
    );
    assert.ok(Math.abs(r.utilisation - cost.utilisation) < 1e-9);
    assert.ok(Math.abs(r.perRound.peerDown / (model.peers * cost.downloadBytes) - 1) < 1e-9);
  }
});

test("bytes are conserved: what servers take in and send out equals what links carried", () => {
  for (const design of ["a", "b"] as const) {
    const { sim } = settingsFor(inputs, c72, design);
    const rounds = 6;
    const r = simulate({ ...sim, seed: 3, rounds, churn: { ...sim.churn, leaveProbability: 0 } });
    const p = r.perRound;
    const S = sim.payload;
    // Every peer uploads once per round (no churn: N x S), and every byte a peer or the
    // aggregator downloads left a server; mirrors leave one server and enter another.
    assert.ok(Math.abs(p.peerUp - sim.peers * S) < 1e-3 * S);
    const aggIn = design === "b" ? sim.aggregate : 0;
    const aggOut = design === "b" ? sim.gather * S : 0;
    assert.ok(Math.abs(p.serverIn - (p.peerUp + p.crossRegion + aggIn)) < 1);
    assert.ok(Math.abs(p.serverOut - (p.peerDown + p.crossRegion + aggOut)) < 1);
    // One crossing per payload and other region, however many readers there: N S (R - 1).
    const crossings = sim.peers * S + aggIn;
    assert.ok(Math.abs(p.crossRegion - crossings * (sim.regions - 1)) < 1e-3 * S);
    if (design === "a") assert.ok(Math.abs(p.peerDown - sim.peers * sim.gather * S) < 1e-3 * S);
  }
});

test("a single hub sends every payload across the ocean once per reader instead", () => {
  const { sim } = settingsFor(inputs, c72, "a");
  const base = { ...sim, churn: { ...sim.churn, leaveProbability: 0 }, seed: 1, rounds: 3 };
  const regional = simulate(base).perRound.crossRegion;
  const hub = simulate({ ...base, topology: "hub" }).perRound.crossRegion;
  assert.ok(hub > 5 * regional, `${hub} vs ${regional}`);
});

test("churn: leavers are replaced, joiners pay a checkpoint and replay", () => {
  const { sim } = settingsFor(inputs, c72, "a");
  const r = simulate({ ...sim, seed: 5, rounds: 20, churn: { ...sim.churn, leaveProbability: 0.1 } });
  assert.ok(r.leaves > 0 && r.joins > 0);
  assert.ok(r.catchupBytes >= r.joins * sim.churn.checkpointBytes);
  assert.ok(r.selected.every((n) => n > 0 && n <= sim.gather));
});

test("the plot is a valid PNG", () => {
  const png = lineChart({
    title: "T",
    xLabel: "X",
    yLabel: "Y",
    xTicks: [1, 10],
    yMin: 0,
    yMax: 1,
    yTicks: [0, 1],
    format: String,
    series: [
      {
        label: "A",
        color: [0, 0, 0],
        points: [
          [1, 0],
          [10, 1],
        ],
      },
    ],
  });
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.subarray(12, 16).toString("ascii"), "IHDR");
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
});
