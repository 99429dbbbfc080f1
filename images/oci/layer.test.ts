import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { BlobStore, normalisedMode, packLayer, treeEntries } from "./layer.ts";
import { sha256 } from "./layout.ts";
import { readTar } from "./verify.ts";

const EPOCH = 315532800;
const scratch = mkdtempSync(join(tmpdir(), "layer-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A small root file system, made with the given permissions and times, as a checkout might be. */
function rootfs(name: string, opts: { fileMode: number; dirMode: number; mtime: number }): string {
  const root = join(scratch, name);
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  mkdirSync(join(root, "tmp"));
  mkdirSync(join(root, "home/nonroot"), { recursive: true });
  writeFileSync(join(root, "usr/bin/tool"), "#!/bin/true\n");
  chmodSync(join(root, "usr/bin/tool"), 0o700 | (opts.fileMode & 0o055));
  writeFileSync(join(root, "usr/data"), "data\n");
  chmodSync(join(root, "usr/data"), opts.fileMode);
  linkSync(join(root, "usr/data"), join(root, "usr/data-again"));
  symlinkSync("tool", join(root, "usr/bin/alias"));
  for (const d of ["usr", "usr/bin", "tmp", "home", "home/nonroot"]) chmodSync(join(root, d), opts.dirMode);
  for (const p of ["usr/bin/tool", "usr/data", "usr", "usr/bin", "tmp", "home", "home/nonroot", ""]) {
    utimesSync(join(root, p), opts.mtime, opts.mtime);
  }
  return root;
}

const tree = {
  modes: { tmp: 0o1777, "home/nonroot": 0o700 },
  owners: { "home/nonroot": [65532, 65532] as const },
};

test("modes are normalised, owners are 0 unless named, links are kept", () => {
  assert.equal(normalisedMode("dir", 0o700), 0o755);
  assert.equal(normalisedMode("file", 0o600), 0o644);
  assert.equal(normalisedMode("file", 0o700), 0o755);
  const entries = treeEntries(rootfs("modes", { fileMode: 0o600, dirMode: 0o700, mtime: 1e9 }), tree);
  const by = new Map(entries.map((e) => [e.path, e]));
  assert.deepEqual(
    entries.map((e) => e.path),
    [
      "home",
      "home/nonroot",
      "tmp",
      "usr",
      "usr/bin",
      "usr/bin/alias",
      "usr/bin/tool",
      "usr/data",
      "usr/data-again",
    ],
  );
  assert.deepEqual(by.get("usr/bin/tool"), {
    type: "file",
    path: "usr/bin/tool",
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 12,
    source: join(scratch, "modes/usr/bin/tool"),
  });
  assert.equal((by.get("usr/data") as { mode: number }).mode, 0o644);
  assert.deepEqual(by.get("usr/data-again"), {
    type: "hardlink",
    path: "usr/data-again",
    target: "usr/data",
  });
  assert.deepEqual(by.get("usr/bin/alias"), { type: "symlink", path: "usr/bin/alias", target: "tool" });
  assert.deepEqual(by.get("home/nonroot"), {
    type: "dir",
    path: "home/nonroot",
    mode: 0o700,
    uid: 65532,
    gid: 65532,
  });
  assert.equal((by.get("tmp") as { mode: number }).mode, 0o1777);
  assert.equal((by.get("usr") as { mode: number }).mode, 0o755);
});

test("a mode or owner for a path that is not there is a staging mistake", () => {
  const root = rootfs("missing", { fileMode: 0o644, dirMode: 0o755, mtime: 1e9 });
  assert.throws(() => treeEntries(root, { modes: { "var/tmp": 0o1777 } }), /no "var\/tmp"/);
});

test("device files and FIFOs are refused", () => {
  const root = join(scratch, "fifo");
  mkdirSync(root);
  assert.equal(spawnSync("mkfifo", [join(root, "pipe")]).status, 0);
  assert.throws(() => treeEntries(root), /not a file, directory or symbolic link/);
});

test("the same contents give the same layer whatever the disk's modes and times", async () => {
  const a = rootfs("a", { fileMode: 0o644, dirMode: 0o755, mtime: 1e9 });
  const b = rootfs("b", { fileMode: 0o664, dirMode: 0o775, mtime: 1.7e9 });
  const storeA = new BlobStore(join(scratch, "store-a"));
  const storeB = new BlobStore(join(scratch, "store-b"));
  const la = await packLayer(treeEntries(a, tree), EPOCH, storeA, "test");
  const lb = await packLayer(treeEntries(b, tree), EPOCH, storeB, "test");
  assert.equal(la.digest, lb.digest);
  assert.equal(la.diffId, lb.diffId);
  const blob = readFileSync(storeA.path(la.digest));
  assert.equal(sha256(blob), la.digest);
  assert.equal(blob.length, la.size);
  // gzip -n: no file name flag, no time stamp in the header.
  assert.deepEqual([...blob.subarray(0, 3)], [0x1f, 0x8b, 8]);
  assert.equal(blob[3]! & 0x08, 0, "FNAME flag");
  assert.equal(blob.readUInt32LE(4), 0, "MTIME");
  const tar = gunzipSync(blob);
  assert.equal(sha256(tar), la.diffId);
  assert.ok(readTar(tar).every((m) => m.mtime === EPOCH));
  // A different epoch is a different layer.
  const lc = await packLayer(treeEntries(a, tree), EPOCH + 1, storeA, "test");
  assert.notEqual(lc.diffId, la.diffId);
});

test("a layer whose contents did not change is not compressed again", async () => {
  const root = rootfs("cache", { fileMode: 0o644, dirMode: 0o755, mtime: 1e9 });
  const store = new BlobStore(join(scratch, "store-cache"));
  const first = await packLayer(treeEntries(root, tree), EPOCH, store, "test");
  const marker = Buffer.from("not what gzip would make");
  // Had the layer been compressed again, this content would be overwritten.
  writeFileSync(store.path(first.digest), Buffer.concat([marker, Buffer.alloc(first.size - marker.length)]));
  const second = await packLayer(treeEntries(root, tree), EPOCH, store, "test");
  assert.deepEqual(second, first);
  assert.ok(readFileSync(store.path(first.digest)).subarray(0, marker.length).equals(marker));
  // A changed file is a new diff ID, hence a new blob.
  writeFileSync(join(root, "usr/data"), "changed\n");
  const third = await packLayer(treeEntries(root, tree), EPOCH, store, "test");
  assert.notEqual(third.diffId, first.diffId);
  assert.equal(sha256(readFileSync(store.path(third.digest))), third.digest);
});
