// test-limit: 420 s
// The DiLoCo baseline as a run option: spec.compression.mode none (dense fp32
// pseudo-gradients, wire format 3, no error feedback) with spec.outer.optimizer nesterov.
// 1 validator + 2 miners train llama3-tiny on the CPU over a real nats-server; a third member
// starts late (until then each round waits for it to its deadline), catches up from the
// validator's checkpoint (weights and outer momentum) and contributes. Checked: every peer
// holds the same state (weights and momentum: the digest covers both) after every round, the
// payloads are dense, the checkpoint carries the momentum, and the validator's loss falls.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PRESET_SHAPES } from "../../api/presets.ts";
import { densePayloadBytes, llamaTensors } from "../../operator/bus/runspec.ts";
import type { BusClient } from "../../protocol/bus/client.ts";
import { WIRE_FORMAT_DENSE_FP32 } from "../../protocol/envelope.ts";
import type { SignedEnvelope } from "../../protocol/envelope.ts";
import { verifySelection } from "../../protocol/selection.ts";
import type { SignedSelection } from "../../protocol/selection.ts";
import { decodeCheckpoint, stateDigest } from "../../worker/checkpoint.ts";
import type { CheckpointHeader } from "../../worker/checkpoint.ts";
import type { CheckpointPointer } from "../../worker/replica.ts";
import { startLocalRun } from "./harness.ts";
import type { LocalRun, Worker } from "./harness.ts";

const RUN = "diloco";
const ROUNDS = 10;
const CHECKPOINT_EVERY = 3;

/** Per round, the first 12 hex digits of the state digest a worker logged. */
function digests(log: string, pattern: RegExp): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of log.matchAll(pattern)) out.set(Number(m[1]), m[2]!);
  return out;
}
const VALIDATOR_LINE = /round (\d+): \d+ submissions, selected \d+, loss \S+.*, weights ([0-9a-f]{12})/g;
const MINER_LINE = /round (\d+): applied \d+ payloads from \d+ peers, weights ([0-9a-f]{12})/g;
const LOSS_LINE = /round (\d+): \d+ submissions, selected \d+, loss ([^,\s]+)/g;

describe("the DiLoCo baseline: dense payloads and nesterov outer steps", { timeout: 400_000 }, () => {
  let run: LocalRun;
  let watch: BusClient;
  const workers = new Map<string, Worker>();
  const log = (name: string) => workers.get(name)!.proc.logTail(100_000);

  before(async () => {
    run = await startLocalRun({
      run: RUN,
      miners: ["Alice", "Bob", "Carol"],
      validator: "Val",
      rounds: ROUNDS,
      innerSteps: 4,
      shards: 6,
      tokensPerShard: 4_000,
      sequenceLength: 32,
      // Generous for the rounds everyone submits to (under a second each here); it also paces
      // the rounds Carol misses before she starts.
      roundDeadlineSeconds: 10,
      checkpointEvery: CHECKPOINT_EVERY,
      spec: {
        compression: { mode: "none" },
        outer: { learningRate: 0.7, optimizer: "nesterov", momentum: 0.9, warmupRounds: 1 },
      },
    });
    watch = await run.bus.connect("operator", "diloco-watch");
    for (const name of ["Val", "Alice", "Bob"]) workers.set(name, await run.start(name));
  });

  after(async () => {
    await watch?.close();
    await run?.stop();
  });

  /** Throws with its log when a worker ended before the run did. */
  const alive = () => {
    for (const w of workers.values())
      if (!w.proc.running) throw new Error(`${w.proc.name} exited early:\n${w.proc.logTail(40)}`);
  };

  async function selectionOf(round: number): Promise<SignedSelection> {
    const val = run.identity("Val").hotkey;
    for (let i = 0; i < 3000; i++) {
      const m = await watch.lastMessage(watch.names.selection(round, val));
      if (m) {
        const v = verifySelection(m.data, { run: RUN, round, validator: val });
        assert.ok(v.ok, `selection of round ${round}`);
        return v.value;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no selection of round ${round}:\n${log("Val").split("\n").slice(-40).join("\n")}`);
  }

  async function logged(name: string, pattern: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> {
    for (const until = Date.now() + timeoutMs; Date.now() < until; ) {
      const m = pattern.exec(log(name));
      if (m) return m;
      alive();
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${name} never logged ${pattern}`);
  }

  test("every peer holds the same weights and momentum; a late peer continues from a checkpoint", async (t) => {
    // Carol, a member from the start, starts once the validator has pointed at a checkpoint.
    const kv = await watch.state();
    const pointer = `checkpoint.${run.identity("Val").hotkey}`;
    for (let i = 0; !(await kv.get(pointer))?.value.length; i++) {
      assert.ok(i < 1200, "the validator checkpoints within 120 s");
      alive();
      await new Promise((r) => setTimeout(r, 100));
    }
    workers.set("Carol", await run.start("Carol"));
    const loaded = await logged("Carol", /loaded checkpoint of round (\d+)/);
    const joined = await logged("Carol", /joined run \S+ at round (\d+) \(weights ([0-9a-f]{12})\)/);

    const selections: SignedSelection[] = [];
    for (let r = 0; r < ROUNDS; r++) selections.push(await selectionOf(r));
    for (const w of workers.values()) {
      const exit = await w.proc.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, `${w.proc.name}:\n${w.proc.logTail(40)}`);
    }

    // The payloads are dense fp32 (format 3) at the model's dense size.
    const m = await watch.lastMessage(watch.names.submit(2, run.identity("Alice").hotkey));
    const env = JSON.parse(new TextDecoder().decode(m!.data)) as SignedEnvelope;
    assert.equal(env.format, WIRE_FORMAT_DENSE_FP32);
    assert.equal(env.size, densePayloadBytes(llamaTensors(PRESET_SHAPES["llama3-tiny"])));

    // A null round, then the honest miners aggregated: nobody refused, nothing taken for a copy.
    assert.equal(selections[0]!.selected.length, 0);
    for (const s of selections.slice(1)) {
      assert.ok(s.selected.length >= 1, `round ${s.round} aggregated ${s.selected.length} payloads`);
      assert.deepEqual(s.rejected, {}, `round ${s.round} refused nobody`);
    }
    assert.ok(
      selections.some((s) => s.selected.length >= 2),
      "some round aggregates several miners",
    );

    // The same state (weights and momentum) on every peer after every round it applied.
    const val = digests(log("Val"), VALIDATOR_LINE);
    assert.equal(val.size, ROUNDS, "the validator logged every round");
    for (const name of ["Alice", "Bob", "Carol"]) {
      const mine = digests(log(name), MINER_LINE);
      for (const [r, d] of mine) assert.equal(d, val.get(r), `${name}, round ${r}`);
      if (name !== "Carol") assert.equal(mine.size, ROUNDS, `${name} applied every round`);
    }

    // Carol: the validator's checkpoint, the selections since, then the others' state.
    const from = Number(loaded[1]);
    const at = Number(joined[1]);
    assert.equal((from + 1) % CHECKPOINT_EVERY, 0, `checkpoint of round ${from}`);
    assert.ok(at > from, `joined at round ${at}, after the checkpoint of round ${from}`);
    assert.equal(joined[2], val.get(at - 1), "Carol caught up to the validator's state");
    const carol = digests(log("Carol"), MINER_LINE);
    assert.ok(carol.has(ROUNDS - 1), "Carol applied the rounds after joining");
    assert.match(log("Carol"), /round \d+: trained 4 steps/, "Carol contributed");

    // The checkpoint carries the outer momentum; its pointer names the state digest.
    const ptr = JSON.parse((await kv.get(pointer))!.string()) as CheckpointPointer;
    const bytes = (await watch.getObject(
      watch.names.checkpointBucket(run.identity("Val").hotkey),
      ptr.object,
      {
        maxBytes: 64 << 20,
      },
    ))!;
    // The tensors as the validator's engine names them: "covenant-ckpt\n", u32 length, JSON.
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(14, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(18, 18 + len))) as CheckpointHeader;
    const ckpt = decodeCheckpoint(bytes, { run: RUN, tensors: header.tensors, momentum: true });
    assert.equal(ckpt.momentum!.length, llamaTensors(PRESET_SHAPES["llama3-tiny"]).length);
    assert.ok(
      ckpt.momentum!.some((t) => t.some((x) => x !== 0)),
      "the momentum moved",
    );
    assert.equal(stateDigest(ckpt.theta, ckpt.momentum), ptr.digest);
    assert.equal(ptr.digest.slice(0, 12), val.get(ptr.round));

    // Loss falls: the validator's loss of the global model on random data.
    const losses = new Map([...log("Val").matchAll(LOSS_LINE)].map((x) => [Number(x[1]), Number(x[2])]));
    const mean = (rounds: number[]) => {
      const xs = rounds.map((r) => losses.get(r)!);
      for (const x of xs) assert.ok(Number.isFinite(x), `loss ${x}`);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    const early = mean([0, 1]);
    const late = mean([ROUNDS - 2, ROUNDS - 1]);
    t.diagnostic(
      `Carol loaded the checkpoint of round ${from} and joined at round ${at}; ` +
        `selected per round ${selections.map((s) => s.selected.length).join(",")}; ` +
        `loss ${early.toFixed(4)} -> ${late.toFixed(4)}`,
    );
    assert.ok(late < early * 0.9, `loss fell from ${early} to ${late}`);
  });
});
