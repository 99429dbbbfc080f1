// Reads an OCI image archive back and checks it the way a runtime would before trusting it:
// index.json -> manifest -> config and layers, every blob's digest and size, the media types,
// and each layer's diff ID against its uncompressed contents. Pure (bytes in, findings out);
// `make images` runs it on what it built, and the tests on synthetic and built images.
import { gunzipSync } from "node:zlib";
import { MEDIA_TYPES, blobPath, sha256, type Descriptor } from "./layout.ts";
import { BLOCK } from "./tar.ts";

export interface TarMember {
  path: string;
  /** "0" file, "1" hard link, "2" symbolic link, "5" directory. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  data: Buffer;
}

function field(h: Buffer, offset: number, length: number): string {
  const raw = h.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString("utf8");
}

function octal(h: Buffer, offset: number, length: number): number {
  const s = field(h, offset, length).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

/** The members of a tar archive (ustar with PAX path and linkpath records), in archive order. */
export function readTar(archive: Buffer): TarMember[] {
  const members: TarMember[] = [];
  let pax: Record<string, string> = {};
  for (let off = 0; off + BLOCK <= archive.length; ) {
    const h = archive.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== octal(h, 148, 8)) throw new Error(`tar: bad header checksum at offset ${off}`);
    const size = octal(h, 124, 12);
    const type = field(h, 156, 1) || "0";
    const data = archive.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = {};
      for (const rec of data.toString("utf8").split("\n")) {
        const m = /^\d+ ([^=]+)=(.*)$/s.exec(rec);
        if (m) pax[m[1]!] = m[2]!;
      }
      continue;
    }
    const prefix = field(h, 345, 155);
    const name = field(h, 0, 100);
    const path = (pax.path ?? (prefix ? `${prefix}/${name}` : name)).replace(/\/$/, "");
    members.push({
      path,
      type,
      mode: octal(h, 100, 8),
      uid: octal(h, 108, 8),
      gid: octal(h, 116, 8),
      mtime: octal(h, 136, 12),
      linkname: pax.linkpath ?? field(h, 157, 100),
      data: Buffer.from(data),
    });
    pax = {};
  }
  return members;
}

interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}
interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}
export interface ImageConfigJson {
  architecture: string;
  os: string;
  created?: string;
  config: {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean }[];
}

export interface VerifiedImage {
  /** The manifest's digest: what `repository@sha256:...` names. */
  digest: string;
  index: Index;
  manifest: Manifest;
  config: ImageConfigJson;
  /** Each layer's members, bottom first. */
  layers: TarMember[][];
  /** The ref.name and io.containerd.image.name annotations of the index. */
  annotations: Record<string, string>;
}

/** Checks an OCI image archive holding one image; throws with every problem found. */
export function verifyArchive(archive: Buffer): VerifiedImage {
  const files = new Map<string, Buffer>();
  for (const m of readTar(archive)) if (m.type === "0") files.set(m.path, m.data);
  const problems: string[] = [];
  const fail = (msg: string): never => {
    problems.push(msg);
    throw new Error(`invalid OCI archive:\n  ${problems.join("\n  ")}`);
  };

  const layoutFile = files.get("oci-layout");
  if (!layoutFile) fail("no oci-layout file");
  if (
    (JSON.parse(layoutFile!.toString()) as { imageLayoutVersion?: string }).imageLayoutVersion !== "1.0.0"
  ) {
    fail("oci-layout is not version 1.0.0");
  }

  const blob = (d: Descriptor, what: string): Buffer => {
    const bytes = files.get(blobPath(d.digest));
    if (!bytes) return fail(`${what}: blob ${d.digest} is missing`);
    if (bytes.length !== d.size)
      problems.push(`${what}: ${d.digest} has ${bytes.length} bytes, its descriptor says ${d.size}`);
    if (sha256(bytes) !== d.digest)
      problems.push(`${what}: the content of ${d.digest} has digest ${sha256(bytes)}`);
    return bytes;
  };

  const indexBytes = files.get("index.json") ?? fail("no index.json");
  const index = JSON.parse(indexBytes.toString()) as Index;
  if (index.schemaVersion !== 2) problems.push(`index.json: schemaVersion ${index.schemaVersion}, not 2`);
  if (index.mediaType !== MEDIA_TYPES.index) problems.push(`index.json: mediaType ${index.mediaType}`);
  if (index.manifests?.length !== 1)
    fail(`index.json: ${index.manifests?.length ?? 0} manifests, expected 1`);
  const manifestDesc = index.manifests[0]!;
  if (manifestDesc.mediaType !== MEDIA_TYPES.manifest)
    problems.push(`index.json: manifest mediaType ${manifestDesc.mediaType}`);

  const manifest = JSON.parse(blob(manifestDesc, "manifest").toString()) as Manifest;
  if (manifest.schemaVersion !== 2) problems.push(`manifest: schemaVersion ${manifest.schemaVersion}, not 2`);
  if (manifest.mediaType !== MEDIA_TYPES.manifest) problems.push(`manifest: mediaType ${manifest.mediaType}`);
  if (manifest.config.mediaType !== MEDIA_TYPES.config)
    problems.push(`manifest: config mediaType ${manifest.config.mediaType}`);
  const config = JSON.parse(blob(manifest.config, "config").toString()) as ImageConfigJson;
  if (config.os !== "linux" || config.architecture !== "amd64") {
    problems.push(`config: platform ${config.os}/${config.architecture}, not linux/amd64`);
  }
  if (config.rootfs?.type !== "layers") problems.push(`config: rootfs type ${config.rootfs?.type}`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    problems.push(`config: ${diffIds.length} diff IDs for ${manifest.layers.length} layers`);
  }
  const history = (config.history ?? []).filter((h) => !h.empty_layer);
  if (config.history && history.length !== manifest.layers.length) {
    problems.push(
      `config: ${history.length} history entries with layers for ${manifest.layers.length} layers`,
    );
  }

  const layers: TarMember[][] = [];
  manifest.layers.forEach((d, i) => {
    const what = `layer ${i}`;
    const bytes = blob(d, what);
    let tar: Buffer;
    if (d.mediaType === MEDIA_TYPES.layer) tar = bytes;
    else if (d.mediaType !== MEDIA_TYPES.layerGzip)
      return void problems.push(`${what}: mediaType ${d.mediaType}`);
    else {
      try {
        tar = gunzipSync(bytes);
      } catch (e) {
        return void problems.push(`${what}: not gzip (${(e as Error).message})`);
      }
    }
    if (sha256(tar) !== diffIds[i])
      problems.push(`${what}: uncompressed digest ${sha256(tar)}, config says ${diffIds[i]}`);
    layers.push(readTar(tar));
  });

  if (problems.length > 0) throw new Error(`invalid OCI archive:\n  ${problems.join("\n  ")}`);
  return {
    digest: manifestDesc.digest,
    index,
    manifest,
    config,
    layers,
    annotations: manifestDesc.annotations ?? {},
  };
}

/** The file system the layers make, top layer winning (no whiteouts: these images never delete). */
export function flatten(layers: readonly TarMember[][]): Map<string, TarMember> {
  const fs = new Map<string, TarMember>();
  for (const layer of layers) for (const m of layer) fs.set(m.path, m);
  return fs;
}
