import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveRunConfig, roundConfigOf, type ResolvedRunConfig } from "../api/runconfig.ts";
import type { BusClient } from "../protocol/bus/client.ts";
import { makeRun } from "../operator/controllers/testing.ts";
import { roundConfigDigest } from "../protocol/configepoch.ts";
import { RunConfigEpochs } from "./config.ts";
import type { Codec, Engine } from "./kernels.ts";
import type { WorkerMetrics } from "./metrics.ts";
import { OutOfSync, Replica } from "./replica.ts";
import { emptySelection } from "./testing.ts";

const base = (() => {
  const r = resolveRunConfig(makeRun("run").defaulted());
  assert.ok(r.ok);
  return r.config;
})();

function withEpoch2(innerSteps: number, lr: number): ResolvedRunConfig {
  const e1 = { epoch: 1, fromRound: 0, digest: roundConfigDigest(base), config: roundConfigOf(base) };
  const config = roundConfigOf({ ...base, innerSteps, outer: { ...base.outer, learningRate: lr } });
  return { ...base, epochs: [e1, { epoch: 2, fromRound: 5, digest: roundConfigDigest(config), config }] };
}

function replica(epochs: RunConfigEpochs): Replica {
  const engine = { getParameters: () => [], setParameters: () => {} } as unknown as Engine;
  const codec = { payloadSize: () => 100 } as unknown as Codec;
  const bus = { names: { run: "run" } } as unknown as BusClient;
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  return new Replica(epochs, bus, engine, codec, "validator", {} as WorkerMetrics, log as never);
}

const selection = emptySelection;

test("a replica works each round with the config epoch in force for it", () => {
  const r = replica(new RunConfigEpochs(withEpoch2(60, 0.5)));
  r.round = 4;
  assert.equal(r.cfg.innerSteps, 30);
  assert.equal(r.epoch.epoch, 1);
  r.round = 5;
  assert.equal(r.cfg.innerSteps, 60);
  assert.equal(r.gather.fetchTimeoutMs, Math.max(5000, base.roundDeadlineSeconds * 500));
});

test("a round is applied with the config the selection names, whatever the local table says", () => {
  const held = new RunConfigEpochs(base);
  const r = replica(held);
  const next = withEpoch2(60, 0.5);
  const digest2 = next.epochs![1]!.digest;
  // Not held yet: the replica re-reads the run config once, then waits (OutOfSync).
  let reloads = 0;
  r.reload = () => reloads++;
  assert.throws(() => r.configOf(selection(3, digest2)), OutOfSync);
  assert.equal(reloads, 1);
  // The kubelet delivered the new file: the re-read finds it.
  r.reload = () => held.update(next);
  assert.equal(r.configOf(selection(3, digest2)).outer.learningRate, 0.5, "the validator switched early");
  assert.equal(r.configOf(selection(7, next.epochs![0]!.digest)).outer.learningRate, 1, "or late");
  assert.equal(r.configOf(selection(7)).outer.learningRate, 0.5, "no digest: the local table");
});

test("a replica waits for the config a selection names until its run config lists it", async () => {
  const held = new RunConfigEpochs(base);
  const r = replica(held);
  const next = withEpoch2(60, 0.5);
  const sel = selection(0, next.epochs![1]!.digest);
  let reads = 0;
  r.reload = () => {
    if (++reads === 3) held.update(next); // the kubelet delivers it on the third read
  };
  assert.equal(await r.awaitConfig(sel, new AbortController().signal), true);
  assert.equal(reads, 3);
  const stop = new AbortController();
  stop.abort();
  const unknown = selection(0, "f".repeat(64));
  assert.equal(await r.awaitConfig(unknown, stop.signal), false);
});
