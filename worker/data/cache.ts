// The shard cache on the worker's volume. The worker says which shards it wants (named
// sets: those attached to the engine, those of the next assignment, ...); the cache fetches
// them in the background with bounded concurrency, checks each against the manifest's size
// and SHA-256 before moving it into place (temporary name, fsync, rename, fsync of the
// directory), evicts what is no longer wanted beyond its size bound, and answers whether a
// set of shards is ready and, if not, why. A shard that fails its check is refused with a
// counted reason and never reaches the engine's directory; it is fetched again after a
// backoff, a bounded number of times, and once more whenever the worker asks for it again.
//
// file:// sources are not copied: the engine reads the source directory as before, and
// the cache only checks the files there (against the manifest when the directory has one;
// that they exist when it has none).
import { mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Counter, Gauge } from "prom-client";
import type { Log } from "../log.ts";
import { MANIFEST_NAME, MAX_MANIFEST_BYTES, parseManifest, shardObjectName } from "./manifest.ts";
import type { Manifest, ManifestExpectations, ShardEntry } from "./manifest.ts";
import { backoffMs, planCache } from "./plan.ts";
import type { CachedShard } from "./plan.ts";
import { FetchError, fetchResult } from "./source.ts";
import type { FetchReason, ShardFetcher } from "./source.ts";
import { verifyFile } from "./verify.ts";

export interface ShardCacheOptions {
  fetcher: ShardFetcher;
  /** Where fetched shards live, as shard-NNNNN.tok (ignored for a local source: its own directory). */
  dir: string;
  expect: ManifestExpectations;
  /** Size bound of the cache directory (default 64 GiB); wanted shards are kept beyond it. */
  maxBytes?: number;
  /** Shards fetched at once (default 2). */
  concurrency?: number;
  /** Attempts per shard before it waits to be asked for again (default 4). */
  attempts?: number;
  /** First retry delay, doubling per attempt (default 1 s), up to backoffMaxMs (default 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** covenant_worker_shard_fetches_total{result,reason} */
  fetches?: Counter<"result" | "reason">;
  /** covenant_worker_shard_cache_bytes */
  cacheBytes?: Gauge;
  log?: Log;
}

interface Failure {
  reason: FetchReason;
  detail: string;
  attempts: number;
  /** Not fetched again before this time (ms). */
  retryAt: number;
}

const PARTIAL = /^\.shard-(\d+)\.([0-9a-f]{16})\.partial$/;
const FINAL = /^shard-(\d+)\.tok$/;

export class ShardCache {
  readonly #o: Required<Omit<ShardCacheOptions, "fetches" | "cacheBytes" | "log">> &
    Pick<ShardCacheOptions, "fetches" | "cacheBytes" | "log">;
  readonly #local: boolean;
  #manifest: Manifest | undefined;
  /** Set when the source has no manifest (file:// only): shards are only checked to exist. */
  #unchecked = false;
  #manifestProblem: string | undefined;
  #manifestTried = 0;
  #loading: Promise<void> | undefined;
  readonly #disk = new Map<number, CachedShard>();
  readonly #inFlight = new Map<number, Promise<void>>();
  readonly #failures = new Map<number, Failure>();
  readonly #sets = new Map<string, number[]>();
  readonly #waiters = new Set<() => void>();
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #overWarned = false;

  constructor(opts: ShardCacheOptions) {
    this.#o = {
      maxBytes: 64 * 1024 ** 3,
      concurrency: 2,
      attempts: 4,
      backoffBaseMs: 1_000,
      backoffMaxMs: 30_000,
      ...opts,
    };
    this.#local = typeof opts.fetcher.localPath === "function";
  }

  /** The directory the engine reads shard-NNNNN.tok from (a local source's own: its "" path). */
  get dir(): string {
    return this.#local ? this.#o.fetcher.localPath!("") : this.#o.dir;
  }

  get manifest(): Manifest | undefined {
    return this.#manifest;
  }

  /** Replaces the wanted set `name` (e.g. "attached", "next") and starts what it needs. */
  want(name: string, shards: readonly number[]): void {
    this.#sets.set(name, [...shards]);
    const now = Date.now();
    for (const s of shards) {
      const d = this.#disk.get(s);
      if (d) d.lastUsed = now;
    }
    void this.#ensureManifest().then(() => this.#pump());
  }

  /** Wanted shards, most urgent first (sets in the order they were first named). */
  get wanted(): number[] {
    return [...new Set([...this.#sets.values()].flat())];
  }

  /** Whether a shard is checked and in place. */
  isReady(shard: number): boolean {
    return this.#disk.get(shard)?.verified === true;
  }

  /**
   * Waits until every shard of `shards` is checked and in place; answers undefined then, or
   * why not once every missing one has run out of attempts or `timeoutMs` has passed. Asking
   * again gives shards that ran out of attempts a fresh set (a fixed object is fetched again).
   */
  async ready(shards: readonly number[], timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    this.#sets.set("requested", [...shards]);
    for (const s of shards) {
      const f = this.#failures.get(s);
      if (f && f.attempts >= this.#o.attempts) {
        f.attempts = 0;
        f.retryAt = 0;
      }
    }
    this.#manifestTried = 0;
    await this.#ensureManifest();
    if (this.#manifestProblem) return this.#manifestProblem;
    const bad = shards.find((s) => !Number.isSafeInteger(s) || s < 0 || s >= this.#count());
    if (bad !== undefined) return `shard ${bad} is not one of the run's ${this.#count()} shards`;
    this.#pump();
    return new Promise((resolve) => {
      const check = () => {
        const missing = shards.filter((s) => !this.isReady(s));
        if (missing.length === 0) return done(undefined);
        const stuck = missing.every((s) => (this.#failures.get(s)?.attempts ?? 0) >= this.#o.attempts);
        if (stuck || Date.now() >= deadline || this.#abort.signal.aborted)
          return done(this.#describe(missing) ?? `still fetching shards [${missing.join(",")}]`);
      };
      const timer = setTimeout(check, Math.max(0, deadline - Date.now()));
      const done = (why: string | undefined) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(why);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Why the wanted data is not usable (for the worker's readiness), or undefined. */
  problem(): string | undefined {
    if (this.#manifestProblem) return this.#manifestProblem;
    return this.#describe(this.wanted.filter((s) => !this.isReady(s)));
  }

  async close(): Promise<void> {
    this.#abort.abort();
    clearTimeout(this.#timer);
    for (const w of [...this.#waiters]) w();
    await Promise.allSettled([...this.#inFlight.values()]);
  }

  #count(): number {
    return this.#manifest?.shards.length ?? this.#o.expect.shards;
  }

  /** The failures among `shards` in words: the first one in full, how many more. */
  #describe(shards: readonly number[]): string | undefined {
    const failed = shards.filter((s) => this.#failures.has(s));
    if (failed.length === 0) return undefined;
    const s = failed[0]!;
    const f = this.#failures.get(s)!;
    const where = this.#o.fetcher.where(this.#entry(s)?.object ?? shardObjectName(s));
    const state = f.attempts >= this.#o.attempts ? `gave up after ${f.attempts} attempts` : "retrying";
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more shards failing)` : "";
    return `shard ${s} (${where}) ${f.reason.replace("_", " ")}: ${f.detail}; ${state}${more}`;
  }

  #entry(shard: number): ShardEntry | undefined {
    return this.#manifest?.shards[shard];
  }

  /** The download in progress; named by the digest so a new corpus never resumes an old file. */
  #partialPath(e: ShardEntry): string {
    return join(this.#o.dir, `.shard-${String(e.index).padStart(5, "0")}.${e.sha256.slice(0, 16)}.partial`);
  }

  #finalPath(shard: number): string {
    return join(this.dir, shardObjectName(shard));
  }

  /** Loads the manifest once (again after a failure, at most once per backoff base). */
  #ensureManifest(): Promise<void> {
    if (this.#manifest || this.#unchecked) return Promise.resolve();
    if (this.#loading) return this.#loading;
    if (this.#manifestProblem && Date.now() - this.#manifestTried < this.#o.backoffBaseMs)
      return Promise.resolve();
    this.#manifestTried = Date.now();
    this.#loading = this.#loadManifest().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async #loadManifest(): Promise<void> {
    const f = this.#o.fetcher;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await f.read(MANIFEST_NAME, MAX_MANIFEST_BYTES);
    } catch (err) {
      this.#manifestProblem = `cannot read the data manifest ${f.where(MANIFEST_NAME)}: ${(err as Error).message}`;
      return this.#manifestFailed();
    }
    if (!bytes) {
      if (this.#local) {
        this.#unchecked = true;
        this.#manifestProblem = undefined;
        this.#o.log?.warn(`${f.url} has no ${MANIFEST_NAME}: its shards are used unchecked`);
        return;
      }
      this.#manifestProblem = `the data source has no manifest (${f.where(MANIFEST_NAME)}); publish the data with worker/data/upload.ts`;
      return this.#manifestFailed();
    }
    const parsed = parseManifest(new TextDecoder().decode(bytes), this.#o.expect);
    let problems = parsed.ok ? [] : parsed.problems;
    if (parsed.ok && this.#local) {
      // The engine reads <dir>/shard-NNNNN.tok; files checked in place must be those.
      const renamed = parsed.manifest.shards.find((s) => s.object !== shardObjectName(s.index));
      if (renamed)
        problems = [
          `file:// sources name shard ${renamed.index} ${shardObjectName(renamed.index)}, not ${renamed.object}`,
        ];
    }
    if (!parsed.ok || problems.length) {
      this.#manifestProblem = `the data manifest ${f.where(MANIFEST_NAME)} is not usable: ${problems.join("; ")}`;
      return this.#manifestFailed();
    }
    if (!this.#local) {
      try {
        await this.#scan(parsed.manifest);
      } catch (err) {
        this.#manifestProblem = `cannot use the shard cache ${this.#o.dir}: ${(err as Error).message}`;
        return this.#manifestFailed();
      }
    }
    this.#manifest = parsed.manifest;
    this.#manifestProblem = undefined;
    this.#wake();
  }

  #manifestFailed(): void {
    this.#o.log?.warn(this.#manifestProblem!);
    this.#wake();
  }

  /**
   * Takes stock of the cache directory after a restart: shard files of the right size stay
   * (checked again before use), others and partial downloads of another corpus go.
   */
  async #scan(manifest: Manifest): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true });
    for (const name of await readdir(this.#o.dir)) {
      const path = join(this.#o.dir, name);
      const fin = FINAL.exec(name);
      const part = PARTIAL.exec(name);
      if (fin) {
        const e = manifest.shards[Number(fin[1])];
        const st = await stat(path);
        if (e && name === shardObjectName(e.index) && st.size === e.bytes)
          this.#disk.set(e.index, { bytes: st.size, lastUsed: st.mtimeMs, verified: false });
        else await unlink(path).catch(() => undefined);
      } else if (part) {
        const e = manifest.shards[Number(part[1])];
        if (!e || e.sha256.slice(0, 16) !== part[2]) await unlink(path).catch(() => undefined);
      }
    }
    this.#gauge();
  }

  #gauge(): void {
    let bytes = 0;
    for (const d of this.#disk.values()) bytes += d.bytes;
    this.#o.cacheBytes?.set(bytes);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Plans and starts: evictions, fetches, and a timer for the next retry that falls due. */
  #pump(): void {
    if (this.#abort.signal.aborted || (!this.#manifest && !this.#unchecked)) return;
    const now = Date.now();
    const held = new Set<number>();
    let nextRetry = Infinity;
    for (const [s, f] of this.#failures) {
      if (f.attempts >= this.#o.attempts) held.add(s);
      else if (f.retryAt > now) {
        held.add(s);
        nextRetry = Math.min(nextRetry, f.retryAt);
      }
    }
    const wanted = this.wanted.filter((s) => s >= 0 && s < this.#count());
    const plan = planCache({
      wanted,
      cached: this.#disk,
      inFlight: new Set(this.#inFlight.keys()),
      held,
      sizeOf: (s) => this.#entry(s)?.bytes ?? 0,
      maxBytes: this.#local ? Infinity : this.#o.maxBytes,
      maxConcurrent: this.#o.concurrency,
    });
    for (const s of plan.evict) void this.#evict(s);
    for (const s of plan.fetch) {
      const task = this.#obtain(s).finally(() => {
        this.#inFlight.delete(s);
        this.#wake();
        this.#pump();
      });
      this.#inFlight.set(s, task);
    }
    if (plan.overBy > 0 && !this.#overWarned) {
      this.#overWarned = true;
      this.#o.log?.warn(
        `the wanted shards exceed the cache bound of ${this.#o.maxBytes} bytes by ${plan.overBy}`,
      );
    }
    clearTimeout(this.#timer);
    if (nextRetry < Infinity) this.#timer = setTimeout(() => this.#pump(), nextRetry - now).unref();
  }

  async #evict(shard: number): Promise<void> {
    this.#disk.delete(shard);
    await unlink(this.#finalPath(shard)).catch(() => undefined);
    this.#gauge();
  }

  /** Brings one shard into place: checks a file already there, else fetches and checks. */
  async #obtain(shard: number): Promise<void> {
    const e = this.#entry(shard);
    const final = this.#finalPath(shard);
    try {
      if (!e) {
        // A file:// source without a manifest: the engine checks the format when it attaches.
        const st = await stat(final).catch(() => undefined);
        if (!st) throw new FetchError("missing", `${final} does not exist`);
        return this.#accept(shard, st.size, "cached");
      }
      if (this.#local || this.#disk.has(shard)) {
        const v = await verifyFile(final, e);
        if (v.ok) return this.#accept(shard, e.bytes, "cached");
        if (this.#local) throw new FetchError(v.reason, v.detail);
        // An earlier process's file that no longer matches: fetch it anew.
        await this.#evict(shard);
      }
      const partial = this.#partialPath(e);
      const started = performance.now();
      await this.#o.fetcher.fetch(e.object, e.bytes, partial, this.#abort.signal);
      const v = await verifyFile(partial, e);
      if (!v.ok) {
        await unlink(partial).catch(() => undefined);
        throw new FetchError(v.reason, v.detail);
      }
      await fsyncPath(partial);
      await rename(partial, final);
      await fsyncPath(this.#o.dir);
      this.#o.log?.info(
        `fetched shard ${shard} (${e.bytes} bytes) from ${this.#o.fetcher.where(e.object)} in ${((performance.now() - started) / 1000).toFixed(2)} s`,
      );
      this.#accept(shard, e.bytes, "verified");
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      const fe = err instanceof FetchError ? err : new FetchError("unreachable", (err as Error).message);
      // Bytes that failed their check are never resumed from.
      if (fe.reason !== "unreachable" && e && !this.#local)
        await unlink(this.#partialPath(e)).catch(() => undefined);
      this.#refuse(shard, fe);
    }
  }

  #accept(shard: number, bytes: number, reason: "verified" | "cached"): void {
    this.#failures.delete(shard);
    this.#disk.set(shard, { bytes, lastUsed: Date.now(), verified: true });
    this.#o.fetches?.inc({ result: "ok", reason });
    this.#gauge();
  }

  #refuse(shard: number, err: FetchError): void {
    const prev = this.#failures.get(shard);
    const attempts = (prev?.attempts ?? 0) + 1;
    const delay = backoffMs(attempts, this.#o.backoffBaseMs, this.#o.backoffMaxMs);
    this.#failures.set(shard, {
      reason: err.reason,
      detail: err.message,
      attempts,
      retryAt: Date.now() + delay,
    });
    this.#o.fetches?.inc({ result: fetchResult(err.reason), reason: err.reason });
    const next =
      attempts >= this.#o.attempts ? "giving up until it is asked for again" : `retrying in ${delay} ms`;
    this.#o.log?.warn(`shard ${shard} ${fetchResult(err.reason)} (${err.reason}): ${err.message}; ${next}`);
  }
}

/** fsync of a file or directory: the rename that follows survives a crash with the bytes. */
async function fsyncPath(path: string): Promise<void> {
  const f = await open(path, "r");
  try {
    await f.sync();
  } finally {
    await f.close();
  }
}
