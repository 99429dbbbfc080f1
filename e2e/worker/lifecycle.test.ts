// The covenant-worker process: clear errors for bad input, graceful stop on SIGTERM.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { get } from "../stack/http.ts";
import { nodeTs, repoRoot, tempDir } from "../stack/paths.ts";
import { startLocalRun } from "./harness.ts";
import type { LocalRun } from "./harness.ts";

const worker = nodeTs(join(repoRoot, "worker/main.ts"));
const runCli = (args: string[]) => {
  const r = spawnSync(worker[0]!, [...worker.slice(1), ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

test("bad command lines and files are refused with the reason", () => {
  const tmp = tempDir("worker-cli");
  try {
    assert.match(runCli(["--help"]).out, /--role miner\|validator/);
    const role = runCli(["--role", "farmer"]);
    assert.equal(role.code, 2);
    assert.match(role.out, /--role must be miner or validator, got "farmer"/);
    const missing = runCli(["--role", "miner", "--config", join(tmp.path, "nope.json")]);
    assert.equal(missing.code, 2);
    assert.match(missing.out, /cannot read the run configuration .*nope\.json/);
    const bad = join(tmp.path, "run.json");
    writeFileSync(bad, JSON.stringify({ kind: "ResolvedRunConfig", run: { name: "x" }, rounds: 0 }));
    const invalid = runCli(["--role", "miner", "--config", bad, "--metrics-port", "0"]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.out, /rounds must be a positive integer/);
  } finally {
    tmp.remove();
  }
});

describe("graceful stop", { timeout: 180_000 }, () => {
  let run: LocalRun;
  before(async () => {
    run = await startLocalRun({
      run: "lifecycle",
      miners: ["Alice"],
      validator: "Val",
      rounds: 50,
      innerSteps: 2,
      shards: 4,
      tokensPerShard: 4_000,
      sequenceLength: 32,
      roundDeadlineSeconds: 30,
      checkpointEvery: 1000,
    });
  });
  after(() => run?.stop());

  test("a contributing worker is ready; SIGTERM ends a miner and a validator between steps with exit code 0", async () => {
    const val = await run.start("Val");
    const miner = await run.start("Alice");
    const watch = await run.bus.connect("operator", "watch");
    try {
      const selection = watch.names.selection(2, run.identity("Val").hotkey);
      for (let i = 0; i < 600 && !(await watch.lastMessage(selection)); i++) {
        if (!miner.proc.running || !val.proc.running)
          throw new Error(`a worker exited:\n${miner.proc.logTail()}\n${val.proc.logTail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(await watch.lastMessage(selection), "round 2 was closed");
      // In step with the run: the pod's readiness probe passes.
      for (const w of [miner, val]) {
        const ready = await get(`http://127.0.0.1:${w.metricsPort}/readyz`);
        assert.deepEqual([ready.status, ready.body], [200, "ok"]);
      }
      const exit = await miner.proc.stop(20_000);
      assert.deepEqual(exit, { code: 0, signal: null }, miner.proc.logTail());
      assert.match(miner.proc.logTail(5), /stopped at round \d+/);
      const vexit = await val.proc.stop(40_000);
      assert.deepEqual(vexit, { code: 0, signal: null }, val.proc.logTail());
    } finally {
      await watch.close();
    }
  });
});
