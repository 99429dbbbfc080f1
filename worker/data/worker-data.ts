// The worker's data, as its round loop sees it: one object that picks the fetcher for the
// run's spec.data.source, keeps the shard cache on the worker's volume, fetches the peer's
// next shards as soon as the operator publishes a new membership (ahead of the round
// boundary where the miner adopts it), and says why the data is not ready.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Counter, Gauge } from "prom-client";
import { parseMembership } from "../../protocol/membership.ts";
import type { Membership } from "../../protocol/membership.ts";
import { assignShards } from "../../protocol/rendezvous.ts";
import type { Log } from "../log.ts";
import { ShardCache } from "./cache.ts";
import type { ShardCacheOptions } from "./cache.ts";
import { FileFetcher } from "./fetch-file.ts";
import { HttpsFetcher } from "./fetch-https.ts";
import { NatsFetcher } from "./fetch-nats.ts";
import type { ObjectReader } from "./fetch-nats.ts";
import type { ManifestExpectations } from "./manifest.ts";
import { parseDataSource } from "./source.ts";
import type { DataSource, ShardFetcher } from "./source.ts";

export interface WorkerDataOptions {
  /** spec.data.source */
  source: string;
  /** --data-dir: the directory of a file:// source (overriding its path), else the cache's. */
  dataDir?: string;
  /** --data-ca: CA of an https:// source's server. */
  caFile?: string;
  /** --data-cache-bytes */
  cacheBytes?: number;
  run: string;
  hotkey: string;
  expect: ManifestExpectations;
  /** The run's bus (nats:// sources are buckets on it). */
  bus: ObjectReader;
  metrics?: { shardFetches: Counter<"result" | "reason">; shardCacheBytes: Gauge };
  log?: Log;
  /** Retry and concurrency settings (tests shorten the backoff). */
  tuning?: Pick<ShardCacheOptions, "attempts" | "backoffBaseMs" | "backoffMaxMs" | "concurrency">;
}

/** Where a peer caches remote shards when --data-dir is not given: the pod's /tmp volume. */
export const defaultCacheDir = (run: string, hotkey: string): string =>
  join(tmpdir(), "covenant-data", run, hotkey);

export function fetcherFor(
  source: DataSource,
  deps: { bus: ObjectReader; caFile?: string; dataDir?: string },
): ShardFetcher {
  switch (source.kind) {
    case "nats":
      return new NatsFetcher(source.url, deps.bus, source.bucket, source.prefix);
    case "https":
      return new HttpsFetcher(source.url, source.base, deps.caFile ? { caFile: deps.caFile } : {});
    case "file":
      return new FileFetcher(source.url, deps.dataDir ?? source.dir);
  }
}

export class WorkerData {
  #following: AbortController | undefined;

  constructor(readonly cache: ShardCache) {}

  /** The directory the engine reads shard-NNNNN.tok from. */
  get dir(): string {
    return this.cache.dir;
  }

  want(name: string, shards: readonly number[]): void {
    this.cache.want(name, shards);
  }

  ready(shards: readonly number[], timeoutMs: number): Promise<string | undefined> {
    return this.cache.ready(shards, timeoutMs);
  }

  /** The readiness reason while wanted data is unusable. */
  problem(): string | undefined {
    const p = this.cache.problem();
    return p && `data: ${p}`;
  }

  /**
   * Waits until `shards` are ready, telling `onProblem` (the readiness reason) each time a
   * wait ends without them; false when `signal` ends the wait first.
   */
  async awaitShards(
    shards: readonly number[],
    signal: AbortSignal,
    onProblem: (why: string) => void,
    pollMs = 30_000,
  ): Promise<boolean> {
    for (;;) {
      if (signal.aborted) return false;
      const why = await this.cache.ready(shards, pollMs);
      if (why === undefined) return true;
      onProblem(`data: ${why}`);
      if (signal.aborted) return false;
      await new Promise((r) => setTimeout(r, Math.min(pollMs, 2_000)));
    }
  }

  /**
   * Fetch ahead: reads the run's membership every `intervalMs` and wants this peer's shards
   * under it ("next"), so a new assignment is on disk by the round that adopts it.
   */
  followAssignment(o: {
    readMembership: () => Promise<Membership | undefined>;
    run: string;
    shards: number;
    hotkey: string;
    intervalMs?: number;
    log?: Log;
  }): void {
    this.#following?.abort();
    const ac = (this.#following = new AbortController());
    let epoch: number | undefined;
    const tick = async () => {
      try {
        const m = await o.readMembership();
        if (!m || m.epoch === epoch || ac.signal.aborted) return;
        epoch = m.epoch;
        const mine = assignShards(o.run, o.shards, m.members).get(o.hotkey) ?? [];
        this.cache.want("next", mine);
      } catch (err) {
        o.log?.warn(`reading the membership for prefetching: ${(err as Error).message}`);
      }
    };
    void (async () => {
      while (!ac.signal.aborted) {
        await tick();
        await new Promise((r) => setTimeout(r, o.intervalMs ?? 5_000).unref());
      }
    })();
  }

  async close(): Promise<void> {
    this.#following?.abort();
    await this.cache.close();
  }
}

export function openWorkerData(o: WorkerDataOptions): WorkerData {
  const source = parseDataSource(o.source);
  const fetcher = fetcherFor(source, { bus: o.bus, caFile: o.caFile, dataDir: o.dataDir });
  const cache = new ShardCache({
    fetcher,
    dir: source.kind === "file" ? (o.dataDir ?? source.dir) : (o.dataDir ?? defaultCacheDir(o.run, o.hotkey)),
    expect: o.expect,
    ...(o.cacheBytes !== undefined ? { maxBytes: o.cacheBytes } : {}),
    fetches: o.metrics?.shardFetches,
    cacheBytes: o.metrics?.shardCacheBytes,
    log: o.log,
    ...o.tuning,
  });
  return new WorkerData(cache);
}

/** The membership in the run's state bucket (the operator's), for followAssignment. */
export function membershipReader(
  state: () => Promise<{ get(k: string): Promise<{ value: Uint8Array; string(): string } | null> }>,
  key: string,
): () => Promise<Membership | undefined> {
  return async () => {
    const e = await (await state()).get(key);
    if (!e || e.value.length === 0) return undefined;
    return parseMembership(e.string());
  };
}
