// Runs test files with node's test runner, each in its own process group under a time limit,
// so no test can hang the suite: a file that overruns its limit is stopped (SIGTERM to its
// group, SIGKILL after a grace period), named, and counted as a failure.
//
//   node --import tsx scripts/run-tests.ts [--concurrency N] [--limit SECONDS] [--results DIR] FILE...
//
// A file may ask for a longer limit with a line `// test-limit: 900 s` near its top. Each file's
// output is printed as one block when it ends; TAP results go to DIR (one file per test file,
// plus runner.tap with the runner's own verdicts) for scripts/test-summary.ts.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { countTap } from "./test-summary.ts";

export interface RunnerOptions {
  files: string[];
  concurrency: number;
  /** Default limit per file, in seconds. */
  limitS: number;
  resultsDir: string;
  /** Grace between SIGTERM and SIGKILL for an overrunning file, in milliseconds. */
  graceMs: number;
}

export type Verdict = "passed" | "failed" | "timed out" | "crashed";

export interface FileResult {
  file: string;
  verdict: Verdict;
  seconds: number;
  limitS: number;
}

/** The limit a file declares with `// test-limit: N s` in its first 40 lines, else the default. */
export function declaredLimit(source: string, fallbackS: number): number {
  const head = source.split("\n", 40).join("\n");
  const m = /^\/\/ test-limit: (\d+) ?s\b/m.exec(head);
  return m ? Number(m[1]) : fallbackS;
}

/** A result file name for a test file: its path with separators replaced. */
export function resultName(file: string): string {
  return file.replace(/^\.\//, "").replace(/[^A-Za-z0-9._-]+/g, "_");
}

/** TAP for the runner's own verdicts, counted by test-summary.ts like node's. */
export function runnerTap(results: FileResult[]): string {
  const bad = results.filter((r) => r.verdict === "timed out" || r.verdict === "crashed");
  const lines = ["TAP version 13"];
  bad.forEach((r, i) => {
    const why =
      r.verdict === "timed out"
        ? `stopped after its ${r.limitS} s limit`
        : "ended without reporting a failure, but not cleanly";
    lines.push(`not ok ${i + 1} - ${r.file}: ${why}`);
  });
  lines.push(`1..${bad.length}`, `# pass 0`, `# fail ${bad.length}`);
  return `${lines.join("\n")}\n`;
}

/** Process groups of the files running now, ended with the runner whatever ends it. */
const running = new Set<number>();

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
}

let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // The files run detached (their own groups), so a Ctrl-C to the terminal does not reach them.
  process.once("exit", () => {
    for (const g of running) signalGroup(g, "SIGKILL");
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      for (const g of running) signalGroup(g, "SIGTERM");
      setTimeout(() => process.exit(130), 2_000).unref();
    });
  }
}

/**
 * The environment of a test file: ours, less node's marker of a test-runner child, so the
 * runner works the same when it is itself started from a test.
 */
function fileEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function runFile(file: string, opts: RunnerOptions): Promise<FileResult> {
  const limitS = declaredLimit(readFileSync(file, "utf8"), opts.limitS);
  const tap = join(opts.resultsDir, `${resultName(file)}.tap`);
  const start = Date.now();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=tap",
      `--test-reporter-destination=${tap}`,
      file,
    ],
    { stdio: ["ignore", "pipe", "pipe"], detached: true, env: fileEnv() },
  );
  const out: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => out.push(b));
  const pgid = child.pid!;
  running.add(pgid);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const limitTimer = setTimeout(() => {
    timedOut = true;
    signalGroup(pgid, "SIGTERM");
    killTimer = setTimeout(() => signalGroup(pgid, "SIGKILL"), opts.graceMs);
  }, limitS * 1000);
  return new Promise((resolve) => {
    // 'close' waits for the output pipes too, which a process that left the group may hold:
    // once the file's own process has exited, give its output a moment and stop reading.
    child.once("exit", () => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2_000).unref();
    });
    child.once("close", (code, signal) => {
      clearTimeout(limitTimer);
      clearTimeout(killTimer);
      // Whatever the file left in its group goes with it.
      signalGroup(pgid, "SIGKILL");
      running.delete(pgid);
      const seconds = Math.round((Date.now() - start) / 100) / 10;
      let failedInTap = 0;
      try {
        failedInTap = countTap(readFileSync(tap, "utf8")).failed;
      } catch {
        // no TAP written
      }
      const verdict: Verdict = timedOut
        ? "timed out"
        : code === 0
          ? "passed"
          : failedInTap > 0
            ? "failed"
            : "crashed";
      const text = Buffer.concat(out).toString("utf8").trimEnd();
      const head = `── ${file} (${seconds} s, ${verdict}${signal ? `, ${signal}` : ""})`;
      const note =
        verdict === "timed out"
          ? `\nrunner: ${file} overran its ${limitS} s limit and was stopped; it counts as a failure`
          : "";
      process.stdout.write(`${head}\n${text}${text ? "\n" : ""}${note}${note ? "\n" : ""}`);
      resolve({ file, verdict, seconds, limitS });
    });
  });
}

/** Runs every file, at most `concurrency` at a time; resolves with one result per file. */
export async function runTests(opts: RunnerOptions): Promise<FileResult[]> {
  mkdirSync(opts.resultsDir, { recursive: true });
  installHandlers();
  const queue = [...opts.files];
  const results: FileResult[] = [];
  const lane = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      results.push(await runFile(file, opts));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane));
  writeFileSync(join(opts.resultsDir, "runner.tap"), runnerTap(results));
  return results;
}

export function parseArgs(argv: string[]): RunnerOptions {
  const opts: RunnerOptions = {
    files: [],
    concurrency: 2,
    limitS: 300,
    resultsDir: "build/test-results",
    graceMs: 10_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} must be a positive integer, got ${v}`);
      return n;
    };
    if (a === "--concurrency") opts.concurrency = positive(value());
    else if (a === "--limit") opts.limitS = positive(value());
    else if (a === "--grace-ms") opts.graceMs = positive(value());
    else if (a === "--results") opts.resultsDir = value();
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (opts.files.length === 0) throw new Error("no test files given");
  return opts;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = parseArgs(process.argv.slice(2));
  const results = await runTests(opts);
  const slow = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 5);
  console.log(`\nrunner: slowest files: ${slow.map((r) => `${r.file} ${r.seconds} s`).join(", ")}`);
  const bad = results.filter((r) => r.verdict !== "passed");
  for (const r of bad) console.log(`runner: ${r.verdict}: ${r.file}`);
  process.exit(bad.length > 0 ? 1 : 0);
}
