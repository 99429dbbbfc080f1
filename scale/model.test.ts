import assert from "node:assert/strict";
import { test } from "node:test";
import { PRESET_SHAPES, parameterCount } from "../api/presets.ts";
import {
  aggregateBytes,
  bandwidthFor,
  bitsPerKept,
  payloadBytesOfParams,
  payloadBytesOfShape,
  roundCost,
  unionDensity,
  type RoundSettings,
} from "./model.ts";

const P72 = parameterCount(PRESET_SHAPES["llama3-72b"]);

test("72B payload at the real run's settings is about 2 GB (12-bit indices + 2-bit values)", () => {
  assert.equal(P72, 72_747_327_488);
  // By hand: P / 4096 chunks x 64 kept x 14 bits / 8 = P x 0.02734375 bytes.
  assert.equal(payloadBytesOfParams(P72, "sparse-f1"), P72 * 0.02734375);
  const exact = payloadBytesOfShape(PRESET_SHAPES["llama3-72b"], "sparse-f1");
  assert.equal(exact, 1_991_487_850);
  assert.ok(Math.abs(exact / payloadBytesOfParams(P72, "sparse-f1") - 1) < 0.002);
  // Format 2 (Elias-Fano): 6 low bits + 2 upper bits per index -> 10 bits per kept value.
  assert.equal(bitsPerKept("sparse-f2"), 10);
  assert.equal(payloadBytesOfShape(PRESET_SHAPES["llama3-72b"], "sparse-f2"), 1_421_511_018);
  // 146x smaller than dense fp32: 32 bits vs 64 x 14 / 4096 bits per parameter.
  assert.equal(
    Math.round(payloadBytesOfParams(P72, "dense-fp32") / payloadBytesOfParams(P72, "sparse-f1")),
    146,
  );
});

test("the aggregate of G top-k sets is denser: 1 - (63/64)^20 = 27% at G = 20", () => {
  assert.ok(Math.abs(unionDensity(20, 1 / 64) - 0.2702) < 1e-4);
  assert.equal(unionDensity(1, 1 / 64), 1 / 64);
  assert.equal(unionDensity(20, 1 / 64, 1), 1 / 64); // identical sets: no growth
  // bitmap (1 bit) + bf16 (16 bits) x 27% = 5.32 bits per parameter: 48 GB at 72B, more than
  // the 28 GB of 20 format-2 payloads.
  const a = aggregateBytes(P72, 20);
  assert.ok(Math.abs(a / ((P72 * (1 + 16 * unionDensity(20, 1 / 64))) / 8) - 1) < 1e-12);
  assert.ok(a > 20 * payloadBytesOfShape(PRESET_SHAPES["llama3-72b"], "sparse-f2"));
  // Never more than the dense bf16 update.
  assert.equal(aggregateBytes(1000, 10_000), 2000);
});

const hand: RoundSettings = {
  params: 1e9,
  format: "sparse-f1",
  payload: 1e7,
  peers: 10,
  gather: 5,
  innerSteps: 10,
  stepSeconds: 1,
  upBytesPerSecond: 1e7,
  downBytesPerSecond: 1e7,
  latencySeconds: 0.5,
  selectSeconds: 1,
  gpu: { hbmBytesPerSecond: 1e12, gpusPerPeer: 1, efficiency: 1 },
  design: "a",
  replicas: 3,
  busEgressBytesPerSecond: Infinity,
  busIngressBytesPerSecond: Infinity,
  aggregatorBytesPerSecond: 1e8,
  aggregateValueBits: 16,
  indexOverlap: 0,
  regions: 2,
};

test("design (a), hand-computed round", () => {
  const c = roundCost(hand);
  // compress: 12 P + S bytes at 1e12 B/s; decode-aggregate: G S + 8 P.
  assert.equal(c.compressSeconds, (12e9 + 1e7) / 1e12);
  assert.equal(c.aggregateSeconds, (5e7 + 8e9) / 1e12);
  assert.equal(c.uploadSeconds, 1 + 0.5);
  assert.equal(c.downloadSeconds, 5 + 0.5);
  const round = 10 + 0.01201 + 1.5 + 1 + 5.5 + 0.00805;
  assert.ok(Math.abs(c.roundSeconds - round) < 1e-9);
  assert.ok(Math.abs(c.utilisation - 10 / round) < 1e-12);
  assert.equal(c.uploadBytes, 1e7);
  assert.equal(c.downloadBytes, 5e7);
  assert.equal(c.busOutBytes, 5e8);
  assert.equal(c.busStoredBytes, 3e8);
  assert.equal(c.busReplicationBytes, 2e8);
  assert.equal(c.crossRegionBytes, 1e8); // each payload into the other region once
});

test("the bus's egress bounds the gather when it is smaller than the peers' sum", () => {
  const c = roundCost({ ...hand, busEgressBytesPerSecond: 5e7 });
  assert.equal(c.downloadSeconds, 5e8 / 5e7 + 0.5);
});

test("design (b), hand-computed round: aggregator stage then one aggregate per peer", () => {
  const c = roundCost({ ...hand, design: "b" });
  const a = aggregateBytes(1e9, 5);
  assert.equal(c.aggregate, a);
  assert.equal(c.downloadBytes, a);
  assert.equal(c.busOutBytes, 5e7 + 10 * a);
  const aggregator = 5e7 / 1e8 + 0.5 + (5e7 + 8e9) / 1e12 + a / 1e8 + 0.5;
  assert.ok(Math.abs(c.aggregatorSeconds - aggregator) < 1e-9);
  assert.ok(Math.abs(c.downloadSeconds - (a / 1e7 + 0.5)) < 1e-9);
  assert.equal(c.crossRegionBytes, 1e8 + a);
});

test("dense and DiLoCo baselines", () => {
  assert.equal(payloadBytesOfParams(1e9, "dense-bf16"), 2e9);
  const d = roundCost({ ...hand, format: "diloco", payload: 4e9 });
  assert.equal(d.downloadBytes, 10 * 4e9); // every peer's delta: G = N
});

test("bandwidth for 95% at 72B, design (a), real-run settings", () => {
  const s: RoundSettings = {
    ...hand,
    params: P72,
    format: "sparse-f2",
    payload: payloadBytesOfShape(PRESET_SHAPES["llama3-72b"], "sparse-f2"),
    peers: 20,
    gather: 20,
    innerSteps: 30,
    stepSeconds: 40.1,
    latencySeconds: 0.01,
    selectSeconds: 2,
    gpu: { hbmBytesPerSecond: 8e12, gpusPerPeer: 8, efficiency: 0.7 },
  };
  const bw = bandwidthFor(0.95, s);
  // 21 payloads (1 up + 20 down) of 1.42 GB in about 63 s less the fixed seconds: ~3.8 Gbit/s.
  assert.ok(bw * 8 > 3.5e9 && bw * 8 < 4.5e9, `${(bw * 8) / 1e9} Gbit/s`);
  const at = roundCost({ ...s, upBytesPerSecond: bw, downBytesPerSecond: bw });
  assert.ok(Math.abs(at.utilisation - 0.95) < 1e-9);
  assert.equal(bandwidthFor(0.999999, s), Infinity);
});
