import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BlobStore } from "./layer.ts";
import { MEDIA_TYPES, blobPath } from "./layout.ts";
import { packImage, writeArchive, type PackInput } from "./image.ts";
import { flatten, readTar, verifyArchive } from "./verify.ts";
import { tarBytes } from "./tar.ts";

const EPOCH = 315532800;
const scratch = mkdtempSync(join(tmpdir(), "image-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function stage(name: string, files: Record<string, string>): string {
  const root = join(scratch, "stage", name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content, { mode: path.includes("bin/") ? 0o755 : 0o644 });
  }
  return root;
}

const base = stage("base", { "etc/passwd": "root:x:0:0::/root:/sbin/nologin\n", "tmp/.keep": "" });
const app = stage("app", { "usr/local/bin/tool": "#!/bin/true\n", "app/data.txt": "hello\n" });
const input: PackInput = {
  repository: "registry.example/tool",
  tag: "1.0",
  layers: [
    { dir: base, createdBy: "base" },
    { dir: app, createdBy: "app" },
  ],
  runtime: {
    user: "65532:65532",
    entrypoint: ["/usr/local/bin/tool"],
    env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
    workingDir: "/app",
    labels: {},
  },
};

async function build(name: string): Promise<{ digest: string; archive: Buffer }> {
  const out = join(scratch, name);
  mkdirSync(out, { recursive: true });
  const store = new BlobStore(join(out, "store"));
  const image = await packImage(input, store, EPOCH);
  const file = join(out, "image.oci.tar");
  await writeArchive(image, store, file, EPOCH);
  return { digest: image.digest, archive: readFileSync(file) };
}

test("building twice, from scratch each time, gives the same digest and the same archive bytes", async () => {
  const one = await build("one");
  const two = await build("two");
  assert.match(one.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(one.digest, two.digest);
  assert.ok(one.archive.equals(two.archive));
});

test("the archive is a valid OCI layout whose file system is the staged one", async () => {
  const { digest, archive } = await build("valid");
  const image = verifyArchive(archive);
  assert.equal(image.digest, digest);
  assert.deepEqual(image.annotations, {
    "io.containerd.image.name": "registry.example/tool:1.0",
    "org.opencontainers.image.ref.name": "1.0",
  });
  assert.equal(image.manifest.layers.length, 2);
  assert.ok(image.manifest.layers.every((l) => l.mediaType === MEDIA_TYPES.layerGzip));
  assert.equal(image.config.config.User, "65532:65532");
  const fs = flatten(image.layers);
  assert.equal(fs.get("app/data.txt")?.data.toString(), "hello\n");
  assert.equal(fs.get("usr/local/bin/tool")?.mode, 0o755);
  assert.equal(fs.get("etc/passwd")?.mode, 0o644);
  // Other tools read it too: GNU tar lists the layout.
  const file = join(scratch, "valid", "image.oci.tar");
  const list = spawnSync("tar", ["-tf", file], { encoding: "utf8" });
  const blobs = [image.manifest.config, ...image.manifest.layers, { digest }]
    .map((d) => blobPath(d.digest))
    .sort();
  assert.deepEqual(list.stdout.trim().split("\n"), [
    "blobs/",
    "blobs/sha256/",
    ...blobs,
    "index.json",
    "oci-layout",
  ]);
});

test("a corrupted blob, a missing blob or an index without a manifest is found", async () => {
  const { archive } = await build("corrupt");
  const image = verifyArchive(archive);
  const layer = image.manifest.layers[1]!;
  const members = new Map(
    readTar(archive).flatMap((m) => (m.type === "0" ? [[m.path, m.data] as const] : [])),
  );
  const rebuilt = (files: Map<string, Buffer>): Buffer =>
    tarBytes(
      [
        { type: "dir", path: "blobs", mode: 0o755 },
        { type: "dir", path: "blobs/sha256", mode: 0o755 },
        ...[...files].map(([path, data]) => ({
          type: "file" as const,
          path,
          mode: 0o644,
          size: data.length,
          data,
        })),
      ],
      EPOCH,
    );
  // Flip one byte of the layer blob.
  const flipped = new Map(members);
  const blob = Buffer.from(flipped.get(blobPath(layer.digest))!);
  blob[blob.length - 10]! ^= 0xff;
  flipped.set(blobPath(layer.digest), blob);
  assert.throws(() => verifyArchive(rebuilt(flipped)), /layer 1: the content of sha256:/);
  // Drop the config blob.
  const missing = new Map(members);
  missing.delete(blobPath(image.manifest.config.digest));
  assert.throws(() => verifyArchive(rebuilt(missing)), /config: blob sha256:[0-9a-f]+ is missing/);
  // An index that names no manifest.
  const empty = new Map(members);
  empty.set(
    "index.json",
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] })),
  );
  assert.throws(() => verifyArchive(rebuilt(empty)), /0 manifests/);
});
