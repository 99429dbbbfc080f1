// File system side of packing: a staged directory becomes the entries of a layer, the entries
// become a tar stream, and the stream becomes a gzip blob in a content-addressed store.
//
// Reproducibility rules applied here (the tar rules are in tar.ts):
// - modes are normalised (directories 0755, files 0755 when any execute bit is set, else 0644)
//   unless a path is listed in `modes`, so the checkout's umask never reaches an image;
// - every entry is owned by 0:0 unless listed in `owners`;
// - files with several names become one file and hard links to it;
// - gzip is GNU gzip with -n (no name, no time stamp in the gzip header), the usual tool of
//   reproducible builds; Node's zlib is Chromium's fork, whose output would tie every digest to
//   the Node version and its SIMD code paths.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { END_OF_ARCHIVE, entryHeader, padding, sortEntries, type TarEntry } from "./tar.ts";
import { MEDIA_TYPES, blobPath, type LayerBlob } from "./layout.ts";

/** An entry with, for files, the path its contents are read from, or the contents themselves. */
export type SourcedEntry = TarEntry & { source?: string; data?: Buffer };

export interface TreeOptions {
  /** Modes by path, instead of the normalised ones (e.g. {"tmp": 0o1777}). */
  modes?: Record<string, number>;
  /** Owners by path as [uid, gid], instead of 0:0. */
  owners?: Record<string, readonly [number, number]>;
}

/** The mode an entry gets in an image: only whether a file is executable survives from the disk. */
export function normalisedMode(type: "dir" | "file", statMode: number): number {
  if (type === "dir") return 0o755;
  return statMode & 0o111 ? 0o755 : 0o644;
}

/**
 * Every entry under `root` (not `root` itself), sorted into archive order. Device files, sockets
 * and FIFOs are refused: a runtime provides /dev, and anything else is a staging mistake.
 */
export function treeEntries(root: string, options: TreeOptions = {}): SourcedEntry[] {
  const entries: (SourcedEntry & { inode?: string })[] = [];
  const walk = (rel: string): void => {
    const abs = rel === "" ? root : join(root, rel);
    for (const name of readdirSync(abs)) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const source = join(root, path);
      const st = lstatSync(source);
      const owner = options.owners?.[path] ?? [0, 0];
      if (st.isDirectory()) {
        entries.push({
          type: "dir",
          path,
          mode: options.modes?.[path] ?? normalisedMode("dir", st.mode),
          uid: owner[0],
          gid: owner[1],
        });
        walk(path);
      } else if (st.isFile()) {
        entries.push({
          type: "file",
          path,
          mode: options.modes?.[path] ?? normalisedMode("file", st.mode),
          uid: owner[0],
          gid: owner[1],
          size: st.size,
          source,
          inode: st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined,
        });
      } else if (st.isSymbolicLink()) {
        entries.push({ type: "symlink", path, target: readlinkSync(source) });
      } else {
        throw new Error(`${source}: not a file, directory or symbolic link; a layer holds only those`);
      }
    }
  };
  walk("");
  for (const p of [...Object.keys(options.modes ?? {}), ...Object.keys(options.owners ?? {})]) {
    if (!entries.some((e) => e.path === p)) throw new Error(`${root}: no "${p}" to set the mode or owner of`);
  }
  // The first name of a multiply linked file (in archive order) carries the data; the others link to it.
  const firstName = new Map<string, string>();
  const out: SourcedEntry[] = [];
  for (const e of sortEntries(entries)) {
    const { inode, ...entry } = e;
    if (inode !== undefined) {
      const first = firstName.get(inode);
      if (first !== undefined) {
        out.push({ type: "hardlink", path: entry.path, target: first });
        continue;
      }
      firstName.set(inode, entry.path);
    }
    out.push(entry);
  }
  return out;
}

/** The tar stream of sorted entries, reading each file's contents from its source. */
export async function* tarStream(entries: readonly SourcedEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield entryHeader(e, mtime);
    if (e.type !== "file") continue;
    if (e.data) {
      if (e.data.length !== e.size)
        throw new Error(`tar: "${e.path}" has ${e.data.length} bytes, not ${e.size}`);
      yield e.data;
    } else if (e.size > 0) {
      if (!e.source) throw new Error(`tar: "${e.path}" has no source`);
      let read = 0;
      for await (const chunk of createReadStream(e.source)) {
        read += (chunk as Buffer).length;
        if (read > e.size) break;
        yield chunk as Buffer;
      }
      if (read !== e.size)
        throw new Error(`${e.source} changed while it was packed (${read} bytes, not ${e.size})`);
    }
    yield padding(e.size);
  }
  yield END_OF_ARCHIVE;
}

/** The sha256 digest of a tar stream: a layer's diff ID, without writing anything. */
export async function streamDigest(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** Passes a stream through while hashing it; `digest()` is valid once the stream has ended. */
function hashing(stream: AsyncIterable<Buffer>): { stream: AsyncGenerator<Buffer>; digest: () => string } {
  const hash = createHash("sha256");
  let done = "";
  async function* pass(): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      hash.update(chunk);
      yield chunk;
    }
    done = `sha256:${hash.digest("hex")}`;
  }
  return { stream: pass(), digest: () => done };
}

/**
 * A content-addressed store of blobs (blobs/sha256/<hex>, the OCI layout's own shape) shared by
 * every image, with a map from a layer's diff ID to its gzip blob, so that a layer whose contents
 * did not change is not compressed again.
 */
export class BlobStore {
  constructor(readonly root: string) {
    mkdirSync(join(root, "blobs", "sha256"), { recursive: true });
    mkdirSync(join(root, "gzip-of"), { recursive: true });
  }

  path(digest: string): string {
    return join(this.root, blobPath(digest));
  }

  has(digest: string, size: number): boolean {
    const p = this.path(digest);
    return existsSync(p) && statSync(p).size === size;
  }

  /** Writes bytes under their digest (idempotent). */
  put(bytes: Buffer, digest: string): void {
    const p = this.path(digest);
    if (this.has(digest, bytes.length)) return;
    writeFileSync(`${p}.tmp`, bytes);
    renameSync(`${p}.tmp`, p);
  }

  /** The gzip blob already made from a diff ID, if it is still in the store. */
  compressedOf(diffId: string): { digest: string; size: number } | undefined {
    const record = join(this.root, "gzip-of", diffId.replace(/^sha256:/, ""));
    if (!existsSync(record)) return undefined;
    const [digest, size] = readFileSync(record, "utf8").trim().split(" ");
    if (!digest || !size || !this.has(digest, Number(size))) return undefined;
    return { digest, size: Number(size) };
  }

  recordCompressed(diffId: string, digest: string, size: number): void {
    writeFileSync(join(this.root, "gzip-of", diffId.replace(/^sha256:/, "")), `${digest} ${size}\n`);
  }
}

/** Compresses a stream with GNU gzip -n into `file`; returns the digest and size of the result. */
export async function gzipToFile(
  stream: AsyncIterable<Buffer>,
  file: string,
  level = 6,
): Promise<{ digest: string; size: number }> {
  const gz = spawn("gzip", ["-n", `-${level}`, "-c"], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve, reject) => {
    gz.on("error", reject);
    gz.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`gzip exited with ${code}`))));
  });
  const hash = createHash("sha256");
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  await Promise.all([
    pipeline(stream, gz.stdin),
    pipeline(gz.stdout, count, createWriteStream(file)),
    exited,
  ]);
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/**
 * Packs sorted entries into a gzip layer in the store. The tar stream is hashed first (cheap);
 * when the store already holds the gzip blob of that diff ID it is reused, else it is made.
 */
export async function packLayer(
  entries: readonly SourcedEntry[],
  mtime: number,
  store: BlobStore,
  createdBy: string,
): Promise<LayerBlob> {
  const diffId = await streamDigest(tarStream(entries, mtime));
  let blob = store.compressedOf(diffId);
  if (!blob) {
    const tmp = join(store.root, `layer-${process.pid}.tmp`);
    try {
      // Hashed again while compressing: a file that changed since the first pass must not
      // leave a blob recorded under a diff ID it does not have.
      const tar = hashing(tarStream(entries, mtime));
      blob = await gzipToFile(tar.stream, tmp);
      if (tar.digest() !== diffId) throw new Error(`layer "${createdBy}" changed while it was packed`);
      renameSync(tmp, store.path(blob.digest));
    } finally {
      rmSync(tmp, { force: true });
    }
    store.recordCompressed(diffId, blob.digest, blob.size);
  }
  return { mediaType: MEDIA_TYPES.layerGzip, digest: blob.digest, size: blob.size, diffId, createdBy };
}
