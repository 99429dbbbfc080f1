// Nothing the stack starts outlives the process that started it: not when that
// process is told to stop, and not when it is killed outright.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isAlive } from "./proc.ts";
import { repoRoot, tempDir } from "./paths.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

async function holdStack(): Promise<{ child: ReturnType<typeof spawn>; pids: number[] }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "e2e/stack/testdata/hold-stack.ts")],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`hold-stack exited with ${code} before starting`)));
  });
  const { pids } = JSON.parse(first) as { pids: number[] };
  return { child, pids };
}

describe("managed processes", { timeout: 60_000 }, () => {
  test("stop() reports the command's own exit status, signalled once", async () => {
    const dir = tempDir("exit-status");
    try {
      const counter = join(dir.path, "terms");
      // Exits 0 on the first SIGTERM, 3 if a second one arrives.
      const script = `trap 'echo x >> ${counter}; [ $(wc -l < ${counter}) -gt 1 ] && exit 3; exit 0' TERM; while :; do sleep 0.1; done`;
      const p = ManagedProcess.start({
        name: "sh",
        command: "/bin/sh",
        args: ["-c", script],
        logFile: join(dir.path, "log"),
      });
      await new Promise((r) => setTimeout(r, 300));
      const exit = await p.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
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
      const { child, pids } = await holdStack();
      // reaper + server for each of etcd, kube-apiserver, nats-server
      assert.ok(pids.length >= 6, `found the server processes: ${pids.join(" ")}`);
      assert.ok(pids.every(isAlive));
      child.kill(signal);
      await waitFor(`every server gone after ${signal}`, () => pids.every((p) => !isAlive(p)), {
        timeoutMs: 20_000,
      });
    });
  }
});
