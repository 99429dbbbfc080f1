// The validator's checkpoint, from the bus to Hugging Face: a run trains (nesterov outer
// optimizer, so the checkpoint holds the outer momentum too), a member fetches the latest
// checkpoint with covenant-fetch-checkpoint (logged in as the worker does, checked against
// the digest the validator recorded), and covenant-engine exports it as a Hugging Face
// directory from the run's run.json (docs/huggingface.md).
// test-limit: 300 s
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { stateKeys } from "../../protocol/names.ts";
import { nodeTs, repoRoot, tempDir } from "../stack/paths.ts";
import { startLocalRun, type LocalRun } from "./harness.ts";

const run = promisify(execFile);
const ROUNDS = 5;
const ENGINE_CLI = join(repoRoot, "kernels/build/engine/covenant-engine");

describe(
  "a run's checkpoint fetched from the bus and exported for Hugging Face",
  { timeout: 280_000 },
  () => {
    let local: LocalRun;
    const out = tempDir("covenant-fetch-ckpt");

    before(async () => {
      local = await startLocalRun({
        run: "ckpt",
        miners: ["Alice", "Bob"],
        validator: "Val",
        rounds: ROUNDS,
        innerSteps: 2,
        shards: 4,
        tokensPerShard: 4_000,
        sequenceLength: 32,
        roundDeadlineSeconds: 30,
        checkpointEvery: 2,
        spec: { outer: { learningRate: 0.7, warmupRounds: 0, optimizer: "nesterov", momentum: 0.9 } },
      });
      const workers = [];
      for (const name of ["Val", "Alice", "Bob"]) workers.push(await local.start(name));
      for (const w of workers)
        assert.deepEqual(await w.proc.exited, { code: 0, signal: null }, w.proc.logTail(30));
    });
    after(async () => {
      await local?.stop();
      out.remove();
    });

    const fetch = (args: string[]) => {
      const [node, ...pre] = nodeTs(join(repoRoot, "worker/fetch-checkpoint.ts"));
      return run(
        node!,
        [
          ...pre,
          "--config",
          join(local.dir, "run.json"),
          "--hotkey-file",
          join(local.dir, "Alice", "hotkey"),
          "--nats-creds",
          join(local.dir, "Alice", "nats.seed"),
          ...args,
        ],
        { timeout: 60_000 },
      );
    };

    test("a member fetches the latest checkpoint, checked against the recorded digest", async () => {
      const op = await local.bus.connect("operator");
      const ptr = JSON.parse(
        (await (await op.state()).get(stateKeys.checkpoint(local.identity("Val").hotkey)))!.string(),
      ) as { round: number; digest: string };
      await op.close();
      assert.equal(ptr.round, ROUNDS - 2, "checkpoints every 2 rounds: the last after round 3");
      const file = join(out.path, "checkpoint");
      const { stdout } = await fetch(["--out", file]);
      assert.match(
        stdout,
        new RegExp(
          `checkpoint of round ${ptr.round} of run ckpt from validator \\w+: \\d+ bytes, digest ${ptr.digest} \\(as recorded\\)`,
        ),
      );
      assert.ok(existsSync(file));

      // No checkpoint of another hotkey: a clear error, exit 1, no file.
      await assert.rejects(
        fetch(["--out", join(out.path, "none"), "--validator", local.identity("Bob").hotkey]),
        (err: { code?: number; stderr?: string }) =>
          err.code === 1 && /has written no checkpoint yet/.test(err.stderr ?? ""),
      );
      assert.ok(!existsSync(join(out.path, "none")));
    });

    test("covenant-engine exports it with the run's configuration; the momentum is left out", async () => {
      assert.ok(existsSync(ENGINE_CLI), `${ENGINE_CLI} is missing: make kernels-build`);
      const hf = join(out.path, "hf");
      const { stdout } = await run(
        ENGINE_CLI,
        ["export", "--hf", hf, "--run-config", join(local.dir, "run.json"), join(out.path, "checkpoint")],
        { timeout: 60_000 },
      );
      assert.match(stdout, /weights, then the outer momentum, which the export leaves out/);
      const config = JSON.parse(readFileSync(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
      assert.equal(config.num_hidden_layers, local.cfg.model.layers);
      assert.equal(config.hidden_size, local.cfg.model.hidden);
      assert.equal(config.rms_norm_eps, local.cfg.model.normEps);
      // Weights only: the safetensors body is the model's parameters in fp32.
      const size = readFileSync(join(hf, "model.safetensors")).length;
      assert.ok(
        size > 4 * local.cfg.model.parameters && size < 4 * local.cfg.model.parameters + 64 * 1024,
        `${size} bytes`,
      );
    });
  },
);
