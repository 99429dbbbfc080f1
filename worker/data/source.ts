// Where a run's shards come from (spec.data.source) and the one interface every kind of
// source is read through. Parsing is pure; the fetchers live in fetch-*.ts.

/** A parsed spec.data.source. */
export type DataSource =
  /** An Object Store bucket in the run's account on the run's bus; objects under `prefix/`. */
  | { kind: "nats"; url: string; bucket: string; prefix: string }
  /** A web server; objects under `base` (which ends with "/"). */
  | { kind: "https"; url: string; base: URL }
  /** A directory on the worker's filesystem (a volume); read in place. */
  | { kind: "file"; url: string; dir: string };

/** Object Store bucket names (nats-server's rule). */
const BUCKET = /^[A-Za-z0-9_-]+$/;

export function parseDataSource(url: string): DataSource {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(url)?.[1];
  if (scheme === "nats") {
    // Parsed by hand: URL would lowercase nothing here, but also accepts ports and
    // credentials a bucket name cannot carry.
    const m = /^nats:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
    if (!m || !BUCKET.test(m[1]!))
      throw new Error(`${url}: nats:// sources are nats://BUCKET[/PREFIX] with an Object Store bucket name`);
    const prefix = (m[2] ?? "").replace(/\/+$/, "");
    if (prefix && !/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/.test(prefix))
      throw new Error(`${url}: the prefix ${JSON.stringify(prefix)} is not a plain object path`);
    return { kind: "nats", url, bucket: m[1]!, prefix };
  }
  if (scheme === "https") {
    const base = new URL(url);
    if (base.search || base.hash) throw new Error(`${url}: a data source URL takes no query or fragment`);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    return { kind: "https", url, base };
  }
  if (scheme === "file") return { kind: "file", url, dir: decodeURIComponent(new URL(url).pathname) };
  throw new Error(`${url}: data sources are nats://, https:// or file:// (got ${scheme ?? "no scheme"}://)`);
}

/** Why a fetch failed; the label of covenant_worker_shard_fetches_total{reason}. */
export type FetchReason = "missing" | "unreachable" | "size_mismatch" | "digest_mismatch";
export const FETCH_REASONS: readonly FetchReason[] = [
  "missing",
  "unreachable",
  "size_mismatch",
  "digest_mismatch",
];

/** Result label of a failed fetch: a shard that arrived but failed its check is "refused". */
export const fetchResult = (reason: FetchReason): "refused" | "failed" =>
  reason === "digest_mismatch" || reason === "size_mismatch" ? "refused" : "failed";

export class FetchError extends Error {
  constructor(
    readonly reason: FetchReason,
    detail: string,
  ) {
    super(detail);
    this.name = "FetchError";
  }
}

/** Reads objects of one source: the manifest and shards. */
export interface ShardFetcher {
  /** The source's URL, for messages. */
  readonly url: string;
  /** Where an object lives, for messages (a URL). */
  where(object: string): string;
  /**
   * The bytes of an object no larger than `maxBytes` (the manifest), or undefined when the
   * source has no such object. Throws FetchError.
   */
  read(object: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /**
   * Writes `object` (of `bytes` bytes by the manifest) to the file `partial`, continuing
   * from what the file already holds when the source can (an interrupted download resumes);
   * never writes more than `bytes`. The caller verifies the result. Throws FetchError.
   */
  fetch(object: string, bytes: number, partial: string, signal?: AbortSignal): Promise<void>;
  /**
   * For a source on the local filesystem: the path of the object itself, which is verified
   * in place instead of copied (file:// keeps today's behaviour: the engine reads the
   * source directory).
   */
  localPath?(object: string): string;
}
