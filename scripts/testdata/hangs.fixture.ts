// A test file that never ends: its test passes, but it leaves a child process and a timer
// running, so node's test runner would wait for it forever. run-tests.test.ts runs it.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { test } from "node:test";

test("leaves a child and a timer behind", () => {
  const child = spawn("sleep", ["600"], { stdio: "ignore" });
  writeFileSync(process.env.HANG_PID_FILE!, String(child.pid));
  setInterval(() => {}, 1_000);
});
