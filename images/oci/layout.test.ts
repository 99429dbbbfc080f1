import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MEDIA_TYPES,
  blobPath,
  canonicalJson,
  epochTime,
  imageConfig,
  imageIndex,
  imageManifest,
  sha256,
  type LayerBlob,
  type RuntimeConfig,
} from "./layout.ts";

const EPOCH = 315532800;
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const layers: LayerBlob[] = [
  { mediaType: MEDIA_TYPES.layerGzip, digest: digest("a"), size: 10, diffId: digest("b"), createdBy: "base" },
  { mediaType: MEDIA_TYPES.layerGzip, digest: digest("c"), size: 20, diffId: digest("d"), createdBy: "app" },
];
const runtime: RuntimeConfig = {
  user: "65532:65532",
  entrypoint: ["/usr/local/bin/tool"],
  env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
  workingDir: "/app",
  labels: { "org.opencontainers.image.title": "tool" },
};

test("canonical JSON sorts keys at every level and keeps array order", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, 1], c: "x" } }), '{"a":{"c":"x","d":[3,1]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), /non-finite/);
  assert.throws(() => canonicalJson(undefined), /undefined/);
});

test("the epoch is the only time, in RFC 3339", () => {
  assert.equal(epochTime(EPOCH), "1980-01-01T00:00:00Z");
  assert.equal(epochTime(0), "1970-01-01T00:00:00Z");
});

test("the image config holds the runtime settings, the diff IDs in order and one history entry per layer", () => {
  const { bytes, descriptor } = imageConfig(runtime, layers, EPOCH);
  assert.equal(descriptor.mediaType, MEDIA_TYPES.config);
  assert.equal(descriptor.digest, sha256(bytes));
  assert.equal(descriptor.size, bytes.length);
  const config = JSON.parse(bytes.toString());
  assert.equal(config.architecture, "amd64");
  assert.equal(config.os, "linux");
  assert.equal(config.created, "1980-01-01T00:00:00Z");
  assert.deepEqual(config.config, {
    User: "65532:65532",
    Entrypoint: ["/usr/local/bin/tool"],
    Env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
    WorkingDir: "/app",
    Labels: { "org.opencontainers.image.title": "tool" },
  });
  assert.deepEqual(config.rootfs, { type: "layers", diff_ids: [digest("b"), digest("d")] });
  assert.deepEqual(config.history, [
    { created: "1980-01-01T00:00:00Z", created_by: "base" },
    { created: "1980-01-01T00:00:00Z", created_by: "app" },
  ]);
  // Canonical: re-serialising gives the same bytes, so the digest is a function of the content.
  assert.equal(canonicalJson(config), bytes.toString());
  assert.equal(imageConfig(runtime, layers, EPOCH).descriptor.digest, descriptor.digest);
});

test("the manifest names the config and the layers; the index names the manifest for ctr and skopeo", () => {
  const config = imageConfig(runtime, layers, EPOCH).descriptor;
  const m = imageManifest(config, layers, {});
  const manifest = JSON.parse(m.bytes.toString());
  assert.equal(manifest.schemaVersion, 2);
  assert.equal(manifest.mediaType, MEDIA_TYPES.manifest);
  assert.deepEqual(manifest.config, config);
  assert.deepEqual(manifest.layers, [
    { mediaType: MEDIA_TYPES.layerGzip, digest: digest("a"), size: 10 },
    { mediaType: MEDIA_TYPES.layerGzip, digest: digest("c"), size: 20 },
  ]);
  assert.equal(manifest.annotations, undefined);

  const index = JSON.parse(imageIndex(m.descriptor, "ghcr.io/x/tool", "1.0").bytes.toString());
  assert.equal(index.mediaType, MEDIA_TYPES.index);
  assert.deepEqual(index.manifests, [
    {
      ...m.descriptor,
      annotations: {
        "io.containerd.image.name": "ghcr.io/x/tool:1.0",
        "org.opencontainers.image.ref.name": "1.0",
      },
    },
  ]);
});

test("blob paths come only from sha256 digests", () => {
  assert.equal(blobPath(digest("e")), `blobs/sha256/${"e".repeat(64)}`);
  assert.throws(() => blobPath("sha256:../../etc/passwd"), /not a sha256 digest/);
  assert.throws(() => blobPath(`sha512:${"e".repeat(128)}`), /not a sha256 digest/);
});
