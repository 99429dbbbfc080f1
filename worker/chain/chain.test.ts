import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadHotkey, MAX_KEY_FILE_BYTES } from "./keys.ts";
import { commitmentField, weightsDue, weightsFromScores } from "./plan.ts";

describe("worker chain planning", () => {
  it("sets weights every N rounds", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 6, 8].map((r) => weightsDue(r, 4)),
      [false, false, false, false, true, false, true],
    );
    assert.throws(() => weightsDue(4, 0), /positive integer/);
  });

  it("turns scores into sorted, upscaled u16 weights and drops junk", () => {
    const s = new Map<number, number>([
      [7, 0.5],
      [2, 1],
      [3, 0],
      [4, -1],
      [5, Number.NaN],
      [9, 1e-9],
    ]);
    assert.deepEqual(weightsFromScores(s), { dests: [2, 7], weights: [65535, 32768] });
    assert.deepEqual(weightsFromScores(new Map([[1, 0]])), { dests: [], weights: [] });
  });

  it("builds a Raw commitment field and refuses more than 128 bytes", () => {
    assert.deepEqual(commitmentField("ab"), { Raw2: "0x6162" });
    assert.equal(Object.keys(commitmentField("x".repeat(128)))[0], "Raw128");
    assert.throws(() => commitmentField("x".repeat(129)), /at most 128/);
    assert.throws(() => commitmentField(""), /empty/);
  });
});

describe("loadHotkey", () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-hotkey-"));
  it("reads a mounted secret and never puts its contents in errors", async () => {
    const good = join(dir, "hotkey");
    writeFileSync(good, "//Bob\n");
    assert.equal((await loadHotkey(good)).address, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");
    const secret = "0xnotquiteaseed-hunter2";
    const bad = join(dir, "bad");
    writeFileSync(bad, secret);
    await assert.rejects(
      loadHotkey(bad),
      (e: Error) => e.message.includes(bad) && !e.message.includes("hunter2"),
    );
    const big = join(dir, "big");
    writeFileSync(big, "a".repeat(MAX_KEY_FILE_BYTES + 1));
    await assert.rejects(loadHotkey(big), /at most 4096/);
    await assert.rejects(loadHotkey(join(dir, "missing")), /ENOENT.*mount/);
    rmSync(dir, { recursive: true, force: true });
  });
});
