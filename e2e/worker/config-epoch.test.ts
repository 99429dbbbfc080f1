// A change of round-level fields reaches running workers as a config epoch: the run config
// file (the mounted ConfigMap in a pod) is rewritten mid-run, every worker adopts the new
// epoch at the same round boundary without a restart, the validator names the config of each
// round in its selection, and all peers end with bit-identical weights.
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { roundConfigOf } from "../../api/runconfig.ts";
import type { BusClient } from "../../protocol/bus/client.ts";
import { planConfigEpochs } from "../../operator/controllers/configepoch.ts";
import { configEpochs } from "../../protocol/configepoch.ts";
import { verifySelection, type SignedSelection } from "../../protocol/selection.ts";
import { startLocalRun, type LocalRun, type Worker } from "./harness.ts";

const RUN = "epochs";
const ROUNDS = 12;

describe("config epochs in running workers", { timeout: 300_000 }, () => {
  let run: LocalRun;
  let watch: BusClient;
  const workers: Worker[] = [];

  before(async () => {
    run = await startLocalRun({
      run: RUN,
      miners: ["Alice", "Bob"],
      validator: "Val",
      rounds: ROUNDS,
      innerSteps: 2,
      shards: 4,
      tokensPerShard: 4_000,
      sequenceLength: 32,
      roundDeadlineSeconds: 30,
      checkpointEvery: 1000,
    });
    watch = await run.bus.connect("operator", "epoch-watch");
    for (const name of ["Val", "Alice", "Bob"]) workers.push(await run.start(name));
  });
  after(async () => {
    await watch?.close();
    await run?.stop();
  });

  const val = () => run.identity("Val").hotkey;
  async function selection(round: number): Promise<SignedSelection> {
    for (let i = 0; i < 1200; i++) {
      const m = await watch.lastMessage(watch.names.selection(round, val()));
      if (m) {
        const v = verifySelection(m.data, { run: RUN, round, validator: val() });
        assert.ok(v.ok, `selection of round ${round}`);
        return v.value;
      }
      for (const w of workers)
        if (!w.proc.running) throw new Error(`${w.proc.name} exited:\n${w.proc.logTail(40)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no selection of round ${round}`);
  }

  test("every worker adopts the new epoch at its first round; weights stay identical", async () => {
    await selection(1);
    // The operator's part: the next epoch from the round the run is at, written the way the
    // kubelet updates a mounted ConfigMap (a new file replaces the old one at once). Rounds
    // here take well under a second, so "the round the run is at" is read right before the
    // write, and the epoch starts 3 rounds later (one more than the operator's margin of 2,
    // which is made for rounds of minutes).
    let at = 1;
    while (await watch.lastMessage(watch.names.selection(at + 1, val()))) at++;
    assert.ok(at + 3 <= ROUNDS - 2, `the run is already at round ${at}`);
    const epochs = configEpochs(run.cfg);
    const next = { ...roundConfigOf(run.cfg), innerSteps: 3 };
    next.outer = { ...next.outer, learningRate: 0.5 };
    const plan = planConfigEpochs(epochs, epochs.at(-1), next, at + 1);
    const added = plan.added!;
    assert.equal(added.epoch, 2);
    const file = join(run.dir, "run.json");
    const current = JSON.parse(readFileSync(file, "utf8")) as object;
    writeFileSync(`${file}.new`, JSON.stringify({ ...current, ...next, epochs: plan.epochs }, null, 2));
    renameSync(`${file}.new`, file);

    const selections: SignedSelection[] = [];
    for (let r = 0; r < ROUNDS; r++) selections.push(await selection(r));
    for (const s of selections)
      assert.equal(
        s.config,
        s.round < added.fromRound ? epochs[0]!.digest : added.digest,
        `round ${s.round} ran under the epoch in force for it`,
      );

    for (const w of workers) {
      const exit = await w.proc.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, w.proc.logTail(40));
      const log = w.proc.logTail(400);
      assert.match(
        log,
        new RegExp(
          `round ${added.fromRound}: config epoch 2 \\(${added.digest.slice(0, 12)}\\) in force; changed spec\\.innerSteps, spec\\.outer\\.learningRate`,
        ),
        w.proc.name,
      );
      if (w.who.role === "miner") {
        assert.match(log, new RegExp(`round ${added.fromRound - 1}: trained 2 steps`), w.proc.name);
        assert.match(log, new RegExp(`round ${added.fromRound}: trained 3 steps`), w.proc.name);
      }
    }
    // Bit-identical weights: each worker's last heartbeat, after the last round.
    const weights = new Set<string>();
    for (const w of workers) {
      const m = await watch.lastMessage(watch.names.heartbeat(w.who.hotkey));
      const beat = JSON.parse(new TextDecoder().decode(m!.data)) as {
        weights: string;
        round: number;
        config: string;
      };
      assert.equal(beat.round, ROUNDS, w.proc.name);
      assert.equal(beat.config, added.digest);
      weights.add(beat.weights);
    }
    assert.equal(weights.size, 1, "every peer holds the same weights");
  });
});
