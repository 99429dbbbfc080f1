// The bus client used by workers (and the operator): one NATS connection that
// reconnects forever, every operation under a deadline, transfers under a shared
// byte budget (back-pressure), and idempotent retries across server restarts.
import { createHash } from "node:crypto";
import { createInbox } from "@nats-io/nats-core";
import type { Authenticator, NatsConnection } from "@nats-io/nats-core";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { JetStreamClient, JsMsg, PubAck } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { Objm, setSha256Backend } from "@nats-io/obj";
import type { ObjectInfo, ObjectStore } from "@nats-io/obj";
import { busNames, objectStream } from "../names.ts";
import type { BusNames } from "../names.ts";
import { connectBus, type BusTls } from "./connection.ts";
import { ByteBudget, TimeoutError, withTimeout } from "./limiter.ts";

// Node's SHA-256 instead of the library's browser-safe pure-JS default (several
// times faster on multi-MiB payloads; identical digests).
setSha256Backend("native");

export interface BusClientOptions {
  /** nats://host:port (tls://host:port), comma-separated for several servers. */
  servers: string;
  run: string;
  /** Connection name shown by the server's monitoring (e.g. the hotkey and role). */
  name: string;
  /** NATS user nkey seed ("SU..."); omitted for an open server. */
  nkeySeed?: string;
  /**
   * Answers the server's login challenge (e.g. a hotkey signature checked by the run's
   * auth callout). Used together with nkeySeed when both are given (their fields merge).
   */
  authenticator?: Authenticator;
  /**
   * Connect only over TLS and verify the server's certificate against this CA (a file,
   * or the PEM text itself); without it the system's trusted CAs are used if the
   * server asks for TLS. A server that does not offer TLS is refused.
   */
  tls?: BusTls;
  /** Deadline of one request or publish acknowledgement (ms, default 10 s). */
  requestTimeoutMs?: number;
  /** Bytes of payload transfers in flight at once (default 512 MiB). */
  maxInFlightBytes?: number;
  /** Object Store chunk size for puts (default 1 MiB; must stay below the server's max_payload). */
  chunkBytes?: number;
  /** Attempts of an idempotent operation across disconnects (default 5). */
  attempts?: number;
  /** Called on connection status changes (disconnect, reconnect) for logs and metrics. */
  onStatus?: (status: string) => void;
}

/**
 * Bytes asked for in one direct get. The server queues a whole batch for the client at
 * once, and closes a client with more than 64 MiB pending (max_pending) as a slow
 * consumer; 16 MiB also keeps one batch per round trip near a long link's capacity.
 */
const DIRECT_BATCH_BYTES = 16 * 1024 * 1024;

/** An object whose chunks do not add up to what its writer recorded. */
export class CorruptObject extends Error {
  constructor(bucket: string, name: string, why: string) {
    super(`${bucket}/${name} is corrupt: ${why}`);
    this.name = "CorruptObject";
  }
}

export class PayloadTooLarge extends Error {
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super(`payload of ${size} bytes is larger than ${max}`);
    this.name = "PayloadTooLarge";
  }
}

export interface StreamMessage {
  subject: string;
  data: Uint8Array;
  /** When the server stored the message (ms since the epoch). */
  storedMs: number;
  seq: number;
}

export class BusClient {
  readonly names: BusNames;
  readonly budget: ByteBudget;
  readonly #timeout: number;
  readonly #attempts: number;
  readonly #chunkBytes: number;
  readonly #js: JetStreamClient;
  readonly #objm: Objm;
  readonly #stores = new Map<string, ObjectStore>();
  /** Called after every reconnect (consumers restart from where they were). */
  readonly #onReconnect = new Set<() => void>();
  #kv: KV | undefined;

  private constructor(
    readonly nc: NatsConnection,
    opts: BusClientOptions,
  ) {
    this.names = busNames(opts.run);
    this.budget = new ByteBudget(opts.maxInFlightBytes ?? 512 * 1024 * 1024);
    this.#timeout = opts.requestTimeoutMs ?? 10_000;
    this.#attempts = opts.attempts ?? 5;
    this.#chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    this.#js = jetstream(nc, { timeout: this.#timeout });
    this.#objm = new Objm(this.#js);
  }

  static async connect(opts: BusClientOptions): Promise<BusClient> {
    const nc = await connectBus({ ...opts, timeoutMs: opts.requestTimeoutMs });
    const client = new BusClient(nc, opts);
    void (async () => {
      for await (const s of nc.status()) {
        opts.onStatus?.(s.type);
        if (s.type === "reconnect") for (const f of client.#onReconnect) f();
      }
    })();
    return client;
  }

  /** Retries an idempotent operation while the connection is away (server restart). */
  async #retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.#attempts; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err)) throw err;
        last = err;
        await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * 2 ** i)));
      }
    }
    throw new Error(`${what} failed after ${this.#attempts} attempts: ${String(last)}`);
  }

  async #store(bucket: string): Promise<ObjectStore> {
    let s = this.#stores.get(bucket);
    if (!s) {
      s = await this.#retry(`open bucket ${bucket}`, () => this.#objm.open(bucket));
      this.#stores.set(bucket, s);
    }
    return s;
  }

  async state(): Promise<KV> {
    this.#kv ??= await this.#retry("open state bucket", () => new Kvm(this.#js).open(this.names.stateBucket));
    return this.#kv;
  }

  /** Puts bytes under `name` in `bucket` (replacing the previous object of that name). */
  async putObject(bucket: string, name: string, data: Uint8Array, timeoutMs?: number): Promise<void> {
    await this.budget.with(data.length, () =>
      this.#retry(`put ${bucket}/${name}`, async () => {
        const store = await this.#store(bucket);
        await withTimeout(
          store.putBlob({ name, options: { max_chunk_size: this.#chunkBytes } }, data, {
            timeout: this.#timeout,
          }),
          timeoutMs ?? this.#transferTimeout(data.length),
          `put ${bucket}/${name}`,
        );
      }),
    );
  }

  /** The object's description (size, chunks, digest), or undefined when there is none. */
  async #objectInfo(bucket: string, name: string): Promise<ObjectInfo | undefined> {
    const store = await this.#store(bucket);
    const info = await this.#retry(`info ${bucket}/${name}`, () =>
      withTimeout(store.info(name), this.#timeout, `info ${bucket}/${name}`),
    );
    if (info?.options?.link) throw new Error(`${bucket}/${name} is a link; links are not followed`);
    return info && !info.deleted ? info : undefined;
  }

  /** Size of an object, or undefined when there is none. */
  async objectSize(bucket: string, name: string): Promise<number | undefined> {
    return (await this.#objectInfo(bucket, name))?.size;
  }

  /**
   * Fetches an object. The size is checked before a byte is transferred, so an
   * oversized object costs nothing; undefined when the object does not exist.
   * Each attempt reads the description again: a replaced object has new chunks.
   */
  async getObject(
    bucket: string,
    name: string,
    opts: { maxBytes: number; timeoutMs?: number },
  ): Promise<Uint8Array | undefined> {
    const size = await this.objectSize(bucket, name);
    if (size === undefined) return undefined;
    if (size > opts.maxBytes) throw new PayloadTooLarge(size, opts.maxBytes);
    return this.budget.with(size, () =>
      this.#retry(`get ${bucket}/${name}`, async () => {
        const info = await this.#objectInfo(bucket, name);
        if (!info) return undefined;
        if (info.size > opts.maxBytes) throw new PayloadTooLarge(info.size, opts.maxBytes);
        return this.#readChunks(bucket, info, opts.timeoutMs ?? this.#transferTimeout(info.size));
      }),
    );
  }

  /**
   * An object's bytes, read chunk by chunk with batched direct gets rather than the
   * Object Store's own reader. Why: that reader creates a consumer, which the cluster's
   * meta leader places on one of the bucket's servers, and a server that crashed (no
   * orderly shutdown) still counts as online for 150-240 s (nats-server's orphan sweep),
   * so in that window about a third to a half of the reads waited on a consumer placed
   * on the dead server and timed out (measured on the 3-server test cluster). A direct
   * get is answered by whichever live copy of the stream receives it, so reads also
   * spread over the replicas. The result is checked against the size and the SHA-256
   * digest the writer recorded.
   */
  async #readChunks(bucket: string, info: ObjectInfo, timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    const subject = `$O.${bucket}.C.${info.nuid}`;
    const out = new Uint8Array(info.size);
    const sha = createHash("sha256");
    let filled = 0;
    let chunks = 0;
    let seq = 1;
    while (chunks < info.chunks) {
      if (Date.now() > deadline) throw new TimeoutError(`get ${bucket}/${info.name}`, timeoutMs);
      const batch = await this.#chunkBatch(objectStream(bucket), subject, seq, deadline);
      // A copy that has not applied the newest chunks yet answers short; ask again.
      if (!batch.length) await new Promise((r) => setTimeout(r, 50));
      for (const c of batch.slice(0, info.chunks - chunks)) {
        if (filled + c.data.length > out.length)
          throw new CorruptObject(bucket, info.name, "more bytes than its size");
        out.set(c.data, filled);
        sha.update(c.data);
        filled += c.data.length;
        chunks++;
        seq = c.seq + 1;
      }
    }
    if (filled !== info.size) throw new CorruptObject(bucket, info.name, `${filled} bytes of ${info.size}`);
    if (!sameDigest(info.digest, sha.digest())) throw new CorruptObject(bucket, info.name, "digest mismatch");
    return out;
  }

  /**
   * One direct-get batch: the messages on `subject` from `seq` on, up to
   * DIRECT_BATCH_BYTES, ended by the server's end-of-batch (204) or no-results (404).
   */
  async #chunkBatch(
    stream: string,
    subject: string,
    seq: number,
    deadline: number,
  ): Promise<{ seq: number; data: Uint8Array }[]> {
    const inbox = createInbox();
    const sub = this.nc.subscribe(inbox);
    const got: { seq: number; data: Uint8Array }[] = [];
    const read = async () => {
      for await (const m of sub) {
        const code = m.headers?.code ?? 0;
        if (code === 204 || code === 404) return;
        if (code !== 0) throw new Error(`direct get from ${stream}: ${code} ${m.headers?.description ?? ""}`);
        got.push({ seq: Number(m.headers?.get("Nats-Sequence")), data: m.data });
      }
    };
    try {
      const request = { seq, next_by_subj: subject, batch: 1024, max_bytes: DIRECT_BATCH_BYTES };
      this.nc.publish(`$JS.API.DIRECT.GET.${stream}`, JSON.stringify(request), { reply: inbox });
      const ms = Math.max(1, Math.min(this.#timeout, deadline - Date.now()));
      await withTimeout(read(), ms, `direct get from ${stream}`);
      return got;
    } finally {
      sub.unsubscribe();
    }
  }

  /** A peer's payload for a round: its own bucket, one object per round. */
  putPayload(hotkey: string, round: number, data: Uint8Array): Promise<void> {
    return this.putObject(this.names.payloadBucket(hotkey), this.names.payloadObject(round), data);
  }

  getPayload(
    hotkey: string,
    round: number,
    opts: { maxBytes: number; timeoutMs?: number },
  ): Promise<Uint8Array | undefined> {
    return this.getObject(this.names.payloadBucket(hotkey), this.names.payloadObject(round), opts);
  }

  /**
   * Publishes into the run's stream and waits for the server's acknowledgement.
   * `msgID` makes a retried publish land once (server-side de-duplication).
   */
  async publish(subject: string, data: Uint8Array, msgID: string): Promise<PubAck> {
    return this.#retry(`publish ${subject}`, () =>
      this.#js.publish(subject, data, { msgID, timeout: this.#timeout }),
    );
  }

  /**
   * Messages of the run's stream matching `filter`, from the first kept one, as they
   * arrive. The consumer is recreated from the next sequence after a reconnect or if
   * it ends, so a server restart loses nothing and repeats nothing.
   */
  async *messages(filter: string, signal?: AbortSignal): AsyncGenerator<StreamMessage> {
    let next = 1;
    while (!signal?.aborted && !this.nc.isClosed()) {
      let iter: Awaited<ReturnType<Awaited<ReturnType<JetStreamClient["consumers"]["get"]>>["consume"]>>;
      try {
        const consumer = await this.#retry(`consume ${filter}`, () =>
          this.#js.consumers.get(this.names.stream, {
            filter_subjects: [filter],
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: next,
          }),
        );
        iter = await consumer.consume({ max_messages: 256 });
      } catch (err) {
        if (signal?.aborted || this.nc.isClosed()) return;
        if (!isTransient(err)) throw err;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      const stop = () => void iter.stop();
      signal?.addEventListener("abort", stop, { once: true });
      this.#onReconnect.add(stop);
      try {
        for await (const m of iter) {
          next = m.seq + 1;
          yield toStreamMessage(m);
        }
      } catch (err) {
        if (!isTransient(err) && !signal?.aborted) throw err;
      } finally {
        signal?.removeEventListener("abort", stop);
        this.#onReconnect.delete(stop);
        await iter.close().catch(() => undefined);
      }
      if (!signal?.aborted) await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The last message on an exact subject, or undefined. */
  async lastMessage(subject: string): Promise<StreamMessage | undefined> {
    try {
      const m = await this.#retry(`last ${subject}`, () =>
        this.#js
          .jetstreamManager()
          .then((jsm) => jsm.streams.getMessage(this.names.stream, { last_by_subj: subject })),
      );
      if (!m) return undefined;
      return { subject: m.subject, data: m.data, storedMs: m.time.getTime(), seq: m.seq };
    } catch (err) {
      if (/no message found|not found/i.test(String((err as Error).message))) return undefined;
      throw err;
    }
  }

  /** The first message on `filter` within `timeoutMs`, or undefined. */
  async firstMessage(filter: string, timeoutMs: number): Promise<StreamMessage | undefined> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      for await (const m of this.messages(filter, ac.signal)) return m;
      return undefined;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }

  /** A transfer deadline that scales with size: 10 s plus 8 s per 64 MiB. */
  #transferTimeout(bytes: number): number {
    return this.#timeout + Math.ceil(bytes / (64 * 1024 * 1024)) * 8_000;
  }
}

/** The login answers to give the server: an nkey signature, a custom authenticator, or both. */
/** The Object Store records "SHA-256=" and the digest in base64url (hex from some old writers). */
function sameDigest(recorded: string, digest: Buffer): boolean {
  const text = recorded.replace(/^SHA-256=/, "");
  const bytes = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64url");
  return bytes.equals(digest);
}

function toStreamMessage(m: JsMsg): StreamMessage {
  return {
    subject: m.subject,
    data: m.data,
    storedMs: Math.floor(m.info.timestampNanos / 1e6),
    seq: m.seq,
  };
}

/** Errors a retry can outlive: timeouts and a connection that is away. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TimeoutError) return true;
  const e = err as { name?: string; message?: string; code?: string };
  const text = `${e?.name ?? ""} ${e?.message ?? ""} ${e?.code ?? ""}`;
  if (/permission|authori[sz]ation/i.test(text)) return false;
  // On a cluster a publish finds no responder while its stream has no leader (just
  // created, or electing one after a server is lost); nats.js calls that "not enabled".
  if (e?.name === "JetStreamNotEnabled") return true;
  return /timeout|timed out|disconnect|reconnect|connection|no responders|503|closed/i.test(text);
}
