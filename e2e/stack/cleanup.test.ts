// Nothing the stack starts outlives the process that started it: not when that
// process is told to stop, and not when it is killed outright.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isAlive, processGroupMembers } from "./proc.ts";
import { repoRoot, tempDir } from "./paths.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

interface HeldStack {
  child: ChildProcess;
  /** One process group per server, led by its reaper. */
  groups: number[];
  /** The server process in each group. */
  servers: number[];
  /** The stack's temporary directories. */
  dirs: string[];
}

async function holdStack(): Promise<HeldStack> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "e2e/stack/testdata/hold-stack.ts")],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  try {
    const lines = createInterface({ input: child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once("line", resolve);
      child.once("exit", (code) => reject(new Error(`hold-stack exited with ${code} before starting`)));
    });
    return { child, ...(JSON.parse(first) as Omit<HeldStack, "child">) };
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
}

/** Ends whatever a failed test left: the owner and every server group it started. */
function killAll(held: HeldStack): void {
  if (held.child.exitCode === null && held.child.signalCode === null) held.child.kill("SIGKILL");
  for (const g of held.groups) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of held.dirs) rmSync(d, { recursive: true, force: true });
}

describe("managed processes", { timeout: 60_000 }, () => {
  test("stop() reports the command's own exit status, signalled once", async () => {
    const dir = tempDir("exit-status");
    try {
      const counter = join(dir.path, "terms");
      const ready = join(dir.path, "ready");
      // Exits 0 on the first SIGTERM, 3 if a second one arrives; says when its trap is set,
      // since a signal before that would end it by default, whatever stop() does.
      const script = `trap 'echo x >> ${counter}; [ $(wc -l < ${counter}) -gt 1 ] && exit 3; exit 0' TERM; touch ${ready}; while :; do sleep 0.1; done`;
      const p = ManagedProcess.start({
        name: "sh",
        command: "/bin/sh",
        args: ["-c", script],
        logFile: join(dir.path, "log"),
      });
      await waitFor("the script's trap set", () => existsSync(ready), { timeoutMs: 20_000, intervalMs: 50 });
      const exit = await p.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, `its output:\n${p.logTail()}`);
      const failing = ManagedProcess.start({
        name: "false",
        command: "/bin/sh",
        args: ["-c", "exit 7"],
        logFile: join(dir.path, "log2"),
      });
      assert.equal((await failing.exited).code, 7);
    } finally {
      dir.remove();
    }
  });
});

describe("no process left behind", { timeout: 240_000 }, () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    test(`${signal} to the owner ends etcd, kube-apiserver and nats-server`, async () => {
      const held = await holdStack();
      try {
        // etcd, kube-apiserver and nats-server, each in the process group of its reaper
        assert.ok(held.groups.length >= 3, `found the server groups: ${held.groups.join(" ")}`);
        const dead = held.servers.filter((p) => !isAlive(p));
        assert.deepEqual(dead, [], "every server runs before the owner is signalled");
        held.child.kill(signal);
        await waitFor(
          `every server group empty after ${signal}`,
          () => held.groups.every((g) => processGroupMembers(g).length === 0),
          { timeoutMs: 20_000 },
        );
        // A SIGKILLed owner cannot clean up (check-leftovers.sh reports such directories);
        // a signalled one removes its temporary directories before it exits.
        if (signal === "SIGTERM") {
          assert.ok(held.dirs.length >= 2, `the stack reported its directories: ${held.dirs.join(" ")}`);
          await waitFor(
            "the stack's temporary directories removed",
            () => held.dirs.every((d) => !existsSync(d)),
            {
              timeoutMs: 10_000,
            },
          );
        }
      } finally {
        killAll(held);
      }
    });
  }
});
