// The test runner itself: a file that hangs is stopped at its limit, named, and counted as a
// failure, with the processes it started; the other files still run and count.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { declaredLimit, parseArgs, resultName, runnerTap } from "./run-tests.ts";
import { countTap, summarise } from "./test-summary.ts";

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

function runRunner(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/run-tests.ts", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("close", (code) => {
      clearTimeout(guard);
      resolve({ code, out });
    });
  });
}

describe("run-tests", { timeout: 90_000 }, () => {
  test("a hanging file is stopped at its limit, named, and fails the run; the rest still count", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-runner-"));
    const pidFile = join(dir, "child.pid");
    try {
      const hang = "scripts/testdata/hangs.fixture.ts";
      const pass = "scripts/testdata/passes.fixture.ts";
      const started = Date.now();
      const { code, out } = await runRunner(
        ["--limit", "3", "--grace-ms", "1000", "--results", join(dir, "results"), hang, pass],
        { HANG_PID_FILE: pidFile },
      );
      assert.equal(code, 1, out);
      assert.match(
        out,
        /runner: scripts\/testdata\/hangs\.fixture\.ts overran its 3 s limit and was stopped/,
      );
      assert.match(out, /runner: timed out: scripts\/testdata\/hangs\.fixture\.ts/);
      assert.match(out, /── scripts\/testdata\/passes\.fixture\.ts \([\d.]+ s, passed\)/);
      assert.ok(Date.now() - started < 30_000, "the runner did not wait for the hanging file");
      const counts = summarise(join(dir, "results"));
      // The stopped file never wrote its closing counts: only the overrun counts for it.
      assert.deepEqual(counts, { passed: 1, failed: 1, skipped: 0 });
      const child = Number(readFileSync(pidFile, "utf8"));
      assert.equal(isAlive(child), false, "the hanging file's child process was ended with it");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a file's declared limit replaces the default", () => {
    assert.equal(declaredLimit("// header\n// test-limit: 900 s\nimport x;\n", 300), 900);
    assert.equal(declaredLimit("// test-limit: 45s\n", 300), 45);
    assert.equal(declaredLimit("import x;\n", 300), 300);
    assert.equal(declaredLimit(`${"\n".repeat(50)}// test-limit: 900 s\n`, 300), 300, "only near the top");
  });

  test("arguments are checked", () => {
    assert.deepEqual(parseArgs(["--limit", "5", "a.test.ts"]).limitS, 5);
    assert.throws(
      () => parseArgs(["--limit", "0", "a.test.ts"]),
      /--limit must be a positive integer, got 0/,
    );
    assert.throws(() => parseArgs(["--bogus"]), /unknown option --bogus/);
    assert.throws(() => parseArgs([]), /no test files given/);
  });

  test("the runner's verdicts are TAP that the summary counts", () => {
    const tap = runnerTap([
      { file: "a.test.ts", verdict: "timed out", seconds: 5, limitS: 5 },
      { file: "b.test.ts", verdict: "passed", seconds: 1, limitS: 5 },
      { file: "c.test.ts", verdict: "crashed", seconds: 1, limitS: 5 },
    ]);
    assert.deepEqual(countTap(tap), { passed: 0, failed: 2, skipped: 0 });
    assert.match(tap, /not ok 1 - a\.test\.ts: stopped after its 5 s limit/);
    assert.equal(resultName("./e2e/stack/kube.test.ts"), "e2e_stack_kube.test.ts");
  });
});
