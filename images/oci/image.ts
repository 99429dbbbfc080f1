// Packs an image from staged directories into the blob store and writes its OCI archive: a tar
// of the OCI layout (oci-layout, index.json, blobs/sha256/...) that `ctr images import`,
// `skopeo copy oci-archive:...` and `podman load` read. Layers are packed once per staging
// directory and shared between the images of one build.
import { createWriteStream, renameSync, rmSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import {
  type BlobStore,
  type SourcedEntry,
  type TreeOptions,
  packLayer,
  tarStream,
  treeEntries,
} from "./layer.ts";
import {
  OCI_LAYOUT_FILE,
  blobPath,
  imageConfig,
  imageIndex,
  imageManifest,
  type LayerBlob,
  type RuntimeConfig,
} from "./layout.ts";
import { sortEntries } from "./tar.ts";

export interface PackInput {
  repository: string;
  tag: string;
  layers: { dir: string; createdBy: string; tree?: TreeOptions }[];
  runtime: RuntimeConfig;
}

export interface PackedImage {
  /** The manifest's digest. */
  digest: string;
  layers: LayerBlob[];
  /** Every blob of the image: config, manifest, layers. */
  blobs: { digest: string; size: number }[];
  index: Buffer;
  /** Compressed size of the layers and documents (what a registry would store). */
  size: number;
}

/** Packs the layers (reusing `layerCache` by directory) and the documents into the store. */
export async function packImage(
  input: PackInput,
  store: BlobStore,
  epoch: number,
  layerCache = new Map<string, Promise<LayerBlob>>(),
): Promise<PackedImage> {
  const layers: LayerBlob[] = [];
  for (const l of input.layers) {
    let packed = layerCache.get(l.dir);
    if (!packed) {
      packed = packLayer(treeEntries(l.dir, l.tree), epoch, store, l.createdBy);
      layerCache.set(l.dir, packed);
    }
    layers.push({ ...(await packed), createdBy: l.createdBy });
  }
  const config = imageConfig(input.runtime, layers, epoch);
  store.put(config.bytes, config.descriptor.digest);
  const manifest = imageManifest(config.descriptor, layers, {});
  store.put(manifest.bytes, manifest.descriptor.digest);
  const index = imageIndex(manifest.descriptor, input.repository, input.tag);
  const blobs = [
    { digest: config.descriptor.digest, size: config.descriptor.size },
    { digest: manifest.descriptor.digest, size: manifest.descriptor.size },
    ...layers.map((l) => ({ digest: l.digest, size: l.size })),
  ];
  return {
    digest: manifest.descriptor.digest,
    layers,
    blobs,
    index: index.bytes,
    size: blobs.reduce((n, b) => n + b.size, 0),
  };
}

/** The archive's entries: the layout's two small files, and the blobs read from the store. */
export function archiveEntries(image: PackedImage, store: BlobStore): SourcedEntry[] {
  const entries: SourcedEntry[] = [
    { type: "file", path: "oci-layout", mode: 0o644, size: OCI_LAYOUT_FILE.length, data: OCI_LAYOUT_FILE },
    { type: "file", path: "index.json", mode: 0o644, size: image.index.length, data: image.index },
    { type: "dir", path: "blobs", mode: 0o755 },
    { type: "dir", path: "blobs/sha256", mode: 0o755 },
  ];
  const seen = new Set<string>();
  for (const b of image.blobs) {
    if (seen.has(b.digest)) continue; // the same layer twice in one image is stored once
    seen.add(b.digest);
    entries.push({
      type: "file",
      path: blobPath(b.digest),
      mode: 0o644,
      size: b.size,
      source: store.path(b.digest),
    });
  }
  return sortEntries(entries);
}

/** Writes the OCI archive of a packed image to `file` (atomically: a reader never sees half of it). */
export async function writeArchive(
  image: PackedImage,
  store: BlobStore,
  file: string,
  epoch: number,
): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    await pipeline(tarStream(archiveEntries(image, store), epoch), createWriteStream(tmp));
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}
