// The JSON documents of an OCI image (config, manifest, index) and the layout that holds them,
// built as bytes from plain inputs. Pure: digests are computed here, blobs are written elsewhere.
// Every document is canonical JSON (keys sorted, no whitespace), so the same inputs give the same
// digests. Specification: https://github.com/opencontainers/image-spec (v1.1).
import { createHash } from "node:crypto";

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

/** The content of the `oci-layout` file at the root of a layout. */
export const OCI_LAYOUT_FILE = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** A layer as packed: its compressed blob and the digest of the uncompressed tar (the diff ID). */
export interface LayerBlob {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
  /** What made the layer, for the config's history (`docker history`, `crane config`). */
  createdBy: string;
}

/** The runtime settings of an image (the `config` object of the image configuration). */
export interface RuntimeConfig {
  user: string;
  entrypoint: string[];
  cmd?: string[];
  env: string[];
  workingDir: string;
  labels: Record<string, string>;
  stopSignal?: string;
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** JSON with object keys sorted at every level and no whitespace: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value))
      throw new Error("canonicalJson: non-finite number");
    if (value === undefined) throw new Error("canonicalJson: undefined");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** The build's epoch as an RFC 3339 time, the only time that appears in the documents. */
export function epochTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** A document's bytes and its descriptor. */
export interface Blob {
  bytes: Buffer;
  descriptor: Descriptor;
}

function blob(mediaType: string, value: unknown, annotations?: Record<string, string>): Blob {
  const bytes = Buffer.from(canonicalJson(value), "utf8");
  const descriptor: Descriptor = { mediaType, digest: sha256(bytes), size: bytes.length };
  if (annotations && Object.keys(annotations).length > 0) descriptor.annotations = annotations;
  return { bytes, descriptor };
}

/** The image configuration: platform, runtime settings, the layers' diff IDs and their history. */
export function imageConfig(runtime: RuntimeConfig, layers: readonly LayerBlob[], epoch: number): Blob {
  const created = epochTime(epoch);
  const config: Record<string, unknown> = {
    User: runtime.user,
    Entrypoint: runtime.entrypoint,
    Env: runtime.env,
    WorkingDir: runtime.workingDir,
    Labels: runtime.labels,
  };
  if (runtime.cmd) config.Cmd = runtime.cmd;
  if (runtime.stopSignal) config.StopSignal = runtime.stopSignal;
  return blob(MEDIA_TYPES.config, {
    architecture: "amd64",
    os: "linux",
    created,
    config,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created, created_by: l.createdBy })),
  });
}

/** The manifest: the config and the layers, in order from the bottom of the file system up. */
export function imageManifest(
  config: Descriptor,
  layers: readonly LayerBlob[],
  annotations: Record<string, string>,
): Blob {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  if (Object.keys(annotations).length > 0) manifest.annotations = annotations;
  return blob(MEDIA_TYPES.manifest, manifest);
}

/**
 * The layout's index.json, naming the one manifest it holds. `ref.name` is the tag (what skopeo
 * and the OCI tools use); `io.containerd.image.name` is the whole reference, which
 * `ctr images import` gives the image it imports.
 */
export function imageIndex(manifest: Descriptor, repository: string, tag: string): Blob {
  const named: Descriptor = {
    ...manifest,
    annotations: {
      "io.containerd.image.name": `${repository}:${tag}`,
      "org.opencontainers.image.ref.name": tag,
    },
  };
  return blob(MEDIA_TYPES.index, { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [named] });
}

/** The path of a blob inside a layout: blobs/sha256/<hex>. */
export function blobPath(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return `blobs/sha256/${m[1]}`;
}
