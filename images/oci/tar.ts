// A deterministic tar writer for image layers and OCI archives: the same entries give the same
// bytes on every machine. Pure: no file system access; callers stream file contents themselves
// between the header and the padding that this module produces.
//
// What makes it deterministic: entries are sorted by their UTF-8 bytes, every entry carries the
// same mtime (the build's epoch), owners are numeric with empty user and group names, modes are
// the caller's (normalised by the layer builder), and no access or change times are written.
// Paths that do not fit the ustar fields get a PAX extended header with a fixed name.

/** One entry of an archive. Paths are relative ("usr/bin/node"), without "./" or a trailing "/". */
export type TarEntry =
  | { type: "dir"; path: string; mode: number; uid?: number; gid?: number }
  | { type: "file"; path: string; mode: number; size: number; uid?: number; gid?: number }
  | { type: "symlink"; path: string; target: string }
  /** A second name for a file that appears earlier in the archive (its path is `target`). */
  | { type: "hardlink"; path: string; target: string };

export const BLOCK = 512;

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", dir: "5", pax: "x" } as const;
const MAX_OCTAL_8 = 0o7777777; // what fits in the 8-byte numeric fields (7 digits and a NUL)
const MAX_OCTAL_12 = 0o77777777777;

/** Throws unless `path` is a clean relative path: no leading "/", no ".", "..", or empty parts. */
export function checkPath(path: string): void {
  if (path === "" || path.startsWith("/") || path.endsWith("/")) throw new Error(`tar: bad path "${path}"`);
  for (const part of path.split("/")) {
    if (part === "" || part === "." || part === "..") throw new Error(`tar: bad path "${path}"`);
  }
  if (path.includes("\0")) throw new Error(`tar: path with a NUL byte`);
}

/** Bytewise order of UTF-8 paths: the same on every machine and locale. Parents sort before children. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Sorts entries into archive order and rejects duplicates and hard links to later or unknown paths. */
export function sortEntries<T extends TarEntry>(entries: readonly T[]): T[] {
  const sorted = [...entries].sort((x, y) => comparePaths(x.path, y.path));
  const seen = new Set<string>();
  for (const e of sorted) {
    checkPath(e.path);
    if (seen.has(e.path)) throw new Error(`tar: duplicate path "${e.path}"`);
    if (e.type === "hardlink" && !seen.has(e.target)) {
      throw new Error(`tar: hard link "${e.path}" to "${e.target}", which does not come before it`);
    }
    seen.add(e.path);
  }
  return sorted;
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > length) throw new Error(`tar: "${value}" does not fit in ${length} bytes`);
  bytes.copy(buf, offset);
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 digits, zero-padded, then a NUL: what GNU tar and Go's archive/tar write.
  writeString(buf, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

/** Splits a path over the ustar prefix (155 bytes) and name (100 bytes) fields, or null. */
export function splitUstarPath(path: string): { prefix: string; name: string } | null {
  const bytes = Buffer.byteLength(path, "utf8");
  if (!/^[\x20-\x7e]*$/.test(path)) return null; // non-ASCII goes to PAX, as UTF-8 there
  if (bytes <= 100) return { prefix: "", name: path };
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
  }
  return null;
}

interface HeaderFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}

function ustarHeader(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, f.name);
  writeOctal(h, 100, 8, f.mode);
  writeOctal(h, 108, 8, f.uid);
  writeOctal(h, 116, 8, f.gid);
  writeOctal(h, 124, 12, f.size);
  writeOctal(h, 136, 12, f.mtime);
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  writeString(h, 156, 1, f.typeflag);
  writeString(h, 157, 100, f.linkname);
  writeString(h, 257, 6, "ustar\0");
  writeString(h, 263, 2, "00");
  // uname and gname stay empty: numeric owners only, so the host's user database cannot leak in.
  writeOctal(h, 329, 8, 0);
  writeOctal(h, 337, 8, 0);
  writeString(h, 345, 155, f.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** One PAX record "<len> key=value\n", where len counts the whole record including itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body, "utf8");
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length + bodyLen !== len) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

/** Zero bytes that bring `size` up to a whole number of blocks. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

/**
 * The header block(s) of one entry: a PAX extended header first when the path or link target
 * does not fit ustar, then the ustar header. File contents (entry.size bytes) and padding(size)
 * follow; the caller writes them.
 */
export function entryHeader(entry: TarEntry, mtime: number): Buffer {
  checkPath(entry.path);
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_12)
    throw new Error(`tar: bad mtime ${mtime}`);
  const isDir = entry.type === "dir";
  const path = isDir ? `${entry.path}/` : entry.path;
  const linkname = entry.type === "symlink" || entry.type === "hardlink" ? entry.target : "";
  const mode = entry.type === "dir" || entry.type === "file" ? entry.mode : 0o777;
  const uid = entry.type === "dir" || entry.type === "file" ? (entry.uid ?? 0) : 0;
  const gid = entry.type === "dir" || entry.type === "file" ? (entry.gid ?? 0) : 0;
  const size = entry.type === "file" ? entry.size : 0;
  for (const [what, n, max] of [
    ["mode", mode, 0o7777],
    ["uid", uid, MAX_OCTAL_8],
    ["gid", gid, MAX_OCTAL_8],
    ["size", size, MAX_OCTAL_12],
  ] as const) {
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw new Error(`tar: ${what} ${n} of "${entry.path}" out of range`);
  }

  const records: string[] = [];
  let split = splitUstarPath(path);
  if (!split) {
    records.push(paxRecord("path", path));
    // The ustar name keeps a recognisable, truncated stand-in; readers use the PAX path.
    split = {
      prefix: "",
      name: Buffer.from(path.replace(/[^\x20-\x7e]/g, "_"))
        .subarray(-100)
        .toString("latin1"),
    };
  }
  let ustarLink = linkname;
  if (Buffer.byteLength(linkname, "utf8") > 100 || !/^[\x20-\x7e]*$/.test(linkname)) {
    records.push(paxRecord("linkpath", linkname));
    ustarLink = "";
  }

  const header = ustarHeader({
    name: split.name,
    prefix: split.prefix,
    mode,
    uid,
    gid,
    size,
    mtime,
    typeflag: TYPEFLAG[entry.type],
    linkname: ustarLink,
  });
  if (records.length === 0) return header;

  const pax = Buffer.from(records.join(""), "utf8");
  const paxHeader = ustarHeader({
    // A fixed name (not derived from the entry) keeps the archive independent of tar implementations.
    name: "PaxHeader",
    prefix: "",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: pax.length,
    mtime,
    typeflag: TYPEFLAG.pax,
    linkname: "",
  });
  return Buffer.concat([paxHeader, pax, padding(pax.length), header]);
}

/** A whole archive in memory, for small archives and tests: entries with their file contents. */
export function tarBytes(entries: readonly (TarEntry & { data?: Uint8Array })[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  for (const e of sortEntries(entries)) {
    parts.push(entryHeader(e, mtime));
    if (e.type === "file") {
      const data = e.data ?? new Uint8Array();
      if (data.length !== e.size) throw new Error(`tar: "${e.path}" has ${data.length} bytes, not ${e.size}`);
      parts.push(Buffer.from(data), padding(data.length));
    }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
