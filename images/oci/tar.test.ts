import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  BLOCK,
  entryHeader,
  paxRecord,
  sortEntries,
  splitUstarPath,
  tarBytes,
  type TarEntry,
} from "./tar.ts";
import { readTar } from "./verify.ts";

const EPOCH = 315532800;
const text = (s: string): { size: number; data: Buffer } => ({
  size: Buffer.byteLength(s),
  data: Buffer.from(s),
});

const longDir = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}`; // 182 bytes: prefix + name
const veryLong = `${"x".repeat(120)}/${"y".repeat(120)}`; // no split fits: PAX path
const sample: (TarEntry & { data?: Buffer })[] = [
  { type: "dir", path: "usr", mode: 0o755 },
  { type: "dir", path: "usr/bin", mode: 0o755 },
  { type: "file", path: "usr/bin/tool", mode: 0o755, ...text("#!/bin/true\n") },
  { type: "symlink", path: "usr/bin/alias", target: "tool" },
  { type: "hardlink", path: "usr/bin/tool2", target: "usr/bin/tool" },
  { type: "dir", path: "home", mode: 0o755 },
  { type: "dir", path: "home/nonroot", mode: 0o700, uid: 65532, gid: 65532 },
  { type: "dir", path: "tmp", mode: 0o1777 },
  { type: "dir", path: longDir.split("/")[0]!, mode: 0o755 },
  { type: "dir", path: longDir.split("/").slice(0, 2).join("/"), mode: 0o755 },
  { type: "file", path: `${longDir}/file.txt`, mode: 0o644, ...text("nested\n") },
  { type: "dir", path: "x".repeat(120), mode: 0o755 },
  { type: "file", path: veryLong, mode: 0o644, ...text("long\n") },
  { type: "file", path: "café.txt", mode: 0o644, ...text("ünïcode\n") },
  { type: "symlink", path: "far", target: `/${"t".repeat(150)}` },
  { type: "file", path: "empty", mode: 0o600, size: 0, data: Buffer.alloc(0) },
];

test("the same entries in any order give the same bytes", () => {
  const a = tarBytes(sample, EPOCH);
  const b = tarBytes([...sample].reverse(), EPOCH);
  assert.ok(a.equals(b));
  assert.equal(a.length % BLOCK, 0);
  assert.ok(!a.equals(tarBytes(sample, EPOCH + 1)), "the epoch is in the archive");
});

test("entries read back with their paths, types, modes, owners, links and contents", () => {
  const members = readTar(tarBytes(sample, EPOCH));
  assert.deepEqual(
    members.map((m) => m.path),
    sortEntries(sample).map((e) => e.path),
  );
  const by = new Map(members.map((m) => [m.path, m]));
  assert.equal(by.get("usr/bin/tool")!.type, "0");
  assert.equal(by.get("usr/bin/tool")!.mode, 0o755);
  assert.equal(by.get("usr/bin/tool")!.data.toString(), "#!/bin/true\n");
  assert.equal(by.get("usr/bin/alias")!.type, "2");
  assert.equal(by.get("usr/bin/alias")!.linkname, "tool");
  assert.equal(by.get("usr/bin/tool2")!.type, "1");
  assert.equal(by.get("usr/bin/tool2")!.linkname, "usr/bin/tool");
  assert.equal(by.get("home/nonroot")!.uid, 65532);
  assert.equal(by.get("home/nonroot")!.mode, 0o700);
  assert.equal(by.get("tmp")!.mode, 0o1777);
  assert.equal(by.get(`${longDir}/file.txt`)!.data.toString(), "nested\n");
  assert.equal(by.get(veryLong)!.data.toString(), "long\n");
  assert.equal(by.get("café.txt")!.data.toString(), "ünïcode\n");
  assert.equal(by.get("far")!.linkname, `/${"t".repeat(150)}`);
  for (const m of members) {
    assert.equal(m.mtime, EPOCH, m.path);
    if (m.path !== "home/nonroot") assert.equal(m.uid, 0, m.path);
  }
});

test("GNU tar reads the archive: long paths, PAX records, links", () => {
  const dir = mkdtempSync(join(tmpdir(), "tar-test-"));
  try {
    const file = join(dir, "a.tar");
    writeFileSync(file, tarBytes(sample, EPOCH));
    const list = spawnSync("tar", ["-tf", file], { encoding: "utf8" });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(
      list.stdout
        .trim()
        .split("\n")
        .map((p) => p.replace(/\/$/, "")),
      sortEntries(sample).map((e) => e.path),
    );
    const out = join(dir, "x");
    spawnSync("mkdir", [out]);
    const x = spawnSync("tar", ["-xf", file, "-C", out, "--no-same-owner"], { encoding: "utf8" });
    assert.equal(x.status, 0, x.stderr);
    assert.equal(readFileSync(join(out, veryLong), "utf8"), "long\n");
    assert.equal(readFileSync(join(out, "usr/bin/tool2"), "utf8"), "#!/bin/true\n");
    assert.equal(readlinkSync(join(out, "usr/bin/alias")), "tool");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ustar path splitting uses the prefix field before falling back to PAX", () => {
  assert.deepEqual(splitUstarPath("a/b"), { prefix: "", name: "a/b" });
  assert.deepEqual(splitUstarPath(`${"p".repeat(150)}/${"n".repeat(90)}`), {
    prefix: "p".repeat(150),
    name: "n".repeat(90),
  });
  assert.equal(splitUstarPath(`${"p".repeat(160)}/${"n".repeat(90)}`), null);
  assert.equal(splitUstarPath("n".repeat(101)), null);
  assert.equal(splitUstarPath("café"), null);
  // A PAX header precedes the ustar header only when needed.
  assert.equal(entryHeader({ type: "file", path: "short", mode: 0o644, size: 0 }, EPOCH).length, BLOCK);
  assert.equal(entryHeader({ type: "file", path: veryLong, mode: 0o644, size: 0 }, EPOCH).length, 3 * BLOCK);
});

test("PAX record lengths count themselves, across digit boundaries", () => {
  for (let n = 0; n < 1200; n += 7) {
    const rec = paxRecord("path", "v".repeat(n));
    const len = Number(rec.split(" ")[0]);
    assert.equal(Buffer.byteLength(rec), len, `value of ${n} bytes`);
  }
});

test("bad paths, duplicates, dangling hard links and out-of-range fields are refused", () => {
  for (const path of ["/abs", "a/../b", "./a", "a//b", "a/", ""]) {
    assert.throws(() => entryHeader({ type: "dir", path, mode: 0o755 }, EPOCH), /bad path/, path);
  }
  assert.throws(
    () =>
      sortEntries([
        { type: "dir", path: "a", mode: 0o755 },
        { type: "dir", path: "a", mode: 0o755 },
      ]),
    /duplicate/,
  );
  assert.throws(
    () =>
      sortEntries([
        { type: "hardlink", path: "a", target: "b" },
        { type: "file", path: "b", mode: 0o644, size: 0 },
      ]),
    /does not come before/,
  );
  assert.throws(
    () => entryHeader({ type: "file", path: "f", mode: 0o644, size: 0, uid: 2 ** 22 }, EPOCH),
    /uid/,
  );
  assert.throws(() => entryHeader({ type: "file", path: "f", mode: 0o644, size: 0 }, -1), /mtime/);
  assert.throws(
    () => tarBytes([{ type: "file", path: "f", mode: 0o644, size: 3, data: Buffer.from("ab") }], EPOCH),
    /2 bytes/,
  );
});
