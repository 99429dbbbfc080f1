import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { REDACTED, createLogger, parseLogLevel } from "./log.ts";

describe("logger", () => {
  const capture = (level: "debug" | "info" | "warn" | "error" = "info") => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      level,
      write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
      now: () => new Date("2026-01-01T00:00:00Z"),
    });
    return { lines, log };
  };

  test("writes one JSON object per line with level, message, time and fields", () => {
    const { lines, log } = capture();
    log.child({ controller: "peer" }).info("reconciled", { key: "ns/a", ms: 3 });
    assert.deepEqual(lines, [
      {
        ts: "2026-01-01T00:00:00.000Z",
        level: "info",
        msg: "reconciled",
        controller: "peer",
        key: "ns/a",
        ms: 3,
      },
    ]);
  });

  test("drops lines below the level", () => {
    const { lines, log } = capture("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    assert.deepEqual(
      lines.map((l) => l.level),
      ["warn", "error"],
    );
  });

  test("redacts secret-looking fields at any depth and reduces errors to their message", () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error("boom"), { code: "E1", body: "should not appear" });
    log.error("failed", {
      token: "abc",
      nested: { password: "p", hotkeyMnemonic: "word word", privateKey: "k", ok: 1 },
      headers: { Authorization: "Bearer x" },
      error: err,
    });
    const line = JSON.stringify(lines[0]);
    for (const secret of ["abc", "word word", "Bearer x", "should not appear", '"p"', '"k"']) {
      assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
    }
    assert.equal(lines[0]!.token, REDACTED);
    assert.deepEqual(lines[0]!.error, { message: "boom", name: "Error", code: "E1" });
    assert.equal((lines[0]!.nested as Record<string, unknown>).ok, 1);
  });

  test("parses levels and rejects unknown ones with the allowed values", () => {
    assert.equal(parseLogLevel("DEBUG"), "debug");
    assert.equal(parseLogLevel(undefined, "warn"), "warn");
    assert.throws(() => parseLogLevel("verbose"), /debug, info, warn, error/);
  });
});
