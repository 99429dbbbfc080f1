/**
 * Weight commits waiting for their reveal, kept so that the validator that committed (or the
 * one that replaces it: a new bus session, a restarted process with the same directory) can
 * reveal them. A commit's salt is secret until it is revealed: the file is the validator's
 * own (mode 0600 in a 0700 directory) and nothing here puts a salt or a hash in a message.
 */
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";

export interface PendingCommit {
  /** SS58 address of the hotkey that committed. */
  hotkey: string;
  netuid: number;
  /** Round whose ratings the weights come from. */
  round: number;
  /** The committed hash (0x-prefixed hex). */
  hash: string;
  uids: number[];
  values: number[];
  salt: number[];
  versionKey: bigint;
  /** Block the commit was included in, once known. */
  commitBlock?: number;
}

export interface PendingCommitStore {
  /** Where the commits are kept, for log lines. */
  readonly where: string;
  /** The stored commits, oldest first; `problems` says what was unreadable (never the values). */
  load(): Promise<{ commits: PendingCommit[]; problems: string[] }>;
  /** Replaces the stored commits. */
  save(commits: readonly PendingCommit[]): Promise<void>;
}

/** Keeps the commits in memory only (tests; a worker that must not write files). */
export class MemoryCommitStore implements PendingCommitStore {
  readonly where = "memory";
  #commits: PendingCommit[] = [];
  async load() {
    return { commits: this.#commits.map(copy), problems: [] };
  }
  async save(commits: readonly PendingCommit[]) {
    this.#commits = commits.map(copy);
  }
}

const copy = (c: PendingCommit): PendingCommit => ({
  ...c,
  uids: [...c.uids],
  values: [...c.values],
  salt: [...c.salt],
});

/** Largest store file read: far more than ten commits of 4096 uids. */
export const MAX_STORE_BYTES = 4 * 1024 * 1024;
const FORMAT = 1;

/**
 * One JSON file per (netuid, hotkey) in `dir`, replaced atomically (write, fsync, rename),
 * so a crash leaves either the old or the new list.
 */
export class FileCommitStore implements PendingCommitStore {
  readonly file: string;
  constructor(
    readonly dir: string,
    private readonly netuid: number,
    private readonly hotkey: string,
  ) {
    if (!/^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(hotkey)) throw new Error("the hotkey is not an SS58 address");
    this.file = join(dir, `weight-commits-${netuid}-${hotkey}.json`);
  }

  get where(): string {
    return this.file;
  }

  async load(): Promise<{ commits: PendingCommit[]; problems: string[] }> {
    let text: string;
    try {
      const size = (await stat(this.file)).size;
      if (size > MAX_STORE_BYTES)
        return {
          commits: [],
          problems: [`${this.file} is ${size} bytes; ignored (at most ${MAX_STORE_BYTES})`],
        };
      text = await readFile(this.file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { commits: [], problems: [] };
      return { commits: [], problems: [`cannot read ${this.file} (${code ?? "error"})`] };
    }
    const out = parsePendingCommits(text, this.netuid, this.hotkey);
    return { commits: out.commits, problems: out.problems.map((p) => `${this.file}: ${p}`) };
  }

  async save(commits: readonly PendingCommit[]): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(serializePendingCommits(commits));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}

export function serializePendingCommits(commits: readonly PendingCommit[]): string {
  return JSON.stringify({
    format: FORMAT,
    commits: commits.map((c) => ({ ...c, versionKey: c.versionKey.toString() })),
  });
}

const isU16 = (x: unknown): x is number =>
  Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 65535;
const u16Array = (x: unknown, max: number): x is number[] =>
  Array.isArray(x) && x.length <= max && x.every(isU16);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * The commits of `hotkey` on `netuid` in a store file's text. Entries that are malformed or
 * belong to another hotkey or subnet are left out and named in `problems` by position only.
 */
export function parsePendingCommits(
  text: string,
  netuid: number,
  hotkey: string,
): { commits: PendingCommit[]; problems: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { commits: [], problems: ["not JSON; ignored"] };
  }
  const d = doc as { format?: unknown; commits?: unknown } | null;
  if (typeof d !== "object" || d === null || d.format !== FORMAT || !Array.isArray(d.commits))
    return { commits: [], problems: [`not a format-${FORMAT} list of commits; ignored`] };
  const commits: PendingCommit[] = [];
  const problems: string[] = [];
  d.commits.forEach((raw: unknown, i: number) => {
    const c = raw as Record<string, unknown> | null;
    const bad = (why: string) => problems.push(`commit ${i}: ${why}; left out`);
    if (typeof c !== "object" || c === null) return bad("not an object");
    if (c.hotkey !== hotkey || c.netuid !== netuid) return bad("another hotkey's or subnet's");
    if (!isCount(c.round)) return bad("bad round");
    if (typeof c.hash !== "string" || !/^0x[0-9a-f]{64}$/.test(c.hash)) return bad("bad hash");
    if (!u16Array(c.uids, 65536) || !u16Array(c.values, 65536) || c.uids.length !== c.values.length)
      return bad("bad uids or values");
    if (!u16Array(c.salt, 1024) || c.salt.length === 0) return bad("bad salt");
    if (typeof c.versionKey !== "string" || !/^\d{1,20}$/.test(c.versionKey)) return bad("bad version key");
    const versionKey = BigInt(c.versionKey);
    if (versionKey >= 1n << 64n) return bad("bad version key");
    if (c.commitBlock !== undefined && !isCount(c.commitBlock)) return bad("bad commit block");
    commits.push({
      hotkey,
      netuid,
      round: c.round,
      hash: c.hash,
      uids: c.uids,
      values: c.values,
      salt: c.salt,
      versionKey,
      ...(c.commitBlock === undefined ? {} : { commitBlock: c.commitBlock }),
    });
  });
  return { commits, problems };
}
