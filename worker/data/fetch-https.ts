// https://HOST/PATH sources: plain files on a web server (the directory `upload --source
// file://DIR` writes, served by any server that answers Range requests). The server is
// verified against a CA file from the worker's configuration (--data-ca) or the system's;
// an interrupted download resumes from the partial file with a Range request; a body
// longer than the manifest's size is cut off and refused, so a server cannot fill the
// disk. Integrity is the manifest's SHA-256, checked by the cache; TLS makes the manifest
// itself trustworthy.
import { readFileSync } from "node:fs";
import { open, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { request } from "node:https";
import type { IncomingMessage } from "node:http";
import { FetchError } from "./source.ts";
import type { ShardFetcher } from "./source.ts";

export interface HttpsFetcherOptions {
  /** PEM file of the CA that signs the server's certificate (default: the system's CAs). */
  caFile?: string;
  /** Or the PEM text itself. */
  caPem?: string;
  /** Abort a request after this long without a byte (default 30 s); the download resumes. */
  idleTimeoutMs?: number;
}

const sizeOf = (file: string) =>
  stat(file).then(
    (s) => s.size,
    () => 0,
  );

export class HttpsFetcher implements ShardFetcher {
  readonly #ca: string | undefined;
  readonly #idleMs: number;

  constructor(
    readonly url: string,
    readonly base: URL,
    opts: HttpsFetcherOptions = {},
  ) {
    if (opts.caFile && opts.caPem) throw new Error("give the data CA as a file or as PEM, not both");
    this.#ca = opts.caPem ?? (opts.caFile ? readFileSync(opts.caFile, "utf8") : undefined);
    this.#idleMs = opts.idleTimeoutMs ?? 30_000;
  }

  where(object: string): string {
    return new URL(object, this.base).href;
  }

  /** One GET; the response (any status) or FetchError("unreachable") for network and TLS failures. */
  #get(object: string, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const where = this.where(object);
    return new Promise((resolve, reject) => {
      const req = request(where, {
        method: "GET",
        // Ranges count bytes of the file, not of a compressed body.
        headers: { "accept-encoding": "identity", ...headers },
        ...(this.#ca ? { ca: this.#ca } : {}),
        signal,
      });
      req.setTimeout(this.#idleMs, () => req.destroy(new Error(`no data for ${this.#idleMs} ms`)));
      req.on("response", resolve);
      req.on("error", (err) => reject(new FetchError("unreachable", `${where}: ${err.message}`)));
      req.end();
    });
  }

  async read(object: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const res = await this.#get(object, {});
    if (res.statusCode === 404 || res.statusCode === 410) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new FetchError("unreachable", `${this.where(object)}: HTTP ${res.statusCode}`);
    }
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > maxBytes)
          throw new FetchError("size_mismatch", `${this.where(object)} is larger than ${maxBytes} bytes`);
        parts.push(chunk);
      }
    } catch (err) {
      res.destroy();
      if (err instanceof FetchError) throw err;
      throw new FetchError("unreachable", `${this.where(object)}: ${(err as Error).message}`);
    }
    return Buffer.concat(parts);
  }

  async fetch(object: string, bytes: number, partial: string, signal?: AbortSignal): Promise<void> {
    const where = this.where(object);
    let have = await sizeOf(partial);
    if (have > bytes) {
      await unlink(partial);
      have = 0;
    }
    // Complete already (an earlier attempt ended after the last byte): the cache verifies it.
    if (have === bytes) return;
    const res = await this.#get(object, have > 0 ? { range: `bytes=${have}-` } : {}, signal);
    const status = res.statusCode ?? 0;
    let append: boolean;
    if (status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers["content-range"] ?? "");
      if (!range || Number(range[1]) !== have) {
        res.resume();
        await unlink(partial).catch(() => undefined);
        throw new FetchError(
          "unreachable",
          `${where}: answered ${res.headers["content-range"]} to bytes=${have}-`,
        );
      }
      if (range[3] !== "*" && Number(range[3]) !== bytes) {
        res.resume();
        await unlink(partial).catch(() => undefined);
        throw new FetchError("size_mismatch", `${where} is ${range[3]} bytes, the manifest says ${bytes}`);
      }
      append = true;
    } else if (status === 200) {
      // A server without ranges sends everything again: start over.
      const length = res.headers["content-length"];
      if (length !== undefined && Number(length) !== bytes) {
        res.resume();
        throw new FetchError("size_mismatch", `${where} is ${length} bytes, the manifest says ${bytes}`);
      }
      append = false;
    } else {
      res.resume();
      if (status === 404 || status === 410) throw new FetchError("missing", `${where}: HTTP ${status}`);
      if (status === 416) {
        // The partial already reaches past the server's end: the object is shorter than listed.
        await unlink(partial).catch(() => undefined);
        throw new FetchError(
          "size_mismatch",
          `${where} is shorter than ${have} bytes, the manifest says ${bytes}`,
        );
      }
      throw new FetchError("unreachable", `${where}: HTTP ${status}`);
    }
    const file = await open(partial, append ? "a" : "w");
    try {
      const written = await this.#copy(res, file, append ? have : 0, bytes, where);
      if (written < bytes)
        throw new FetchError("unreachable", `${where}: the body ended after ${written} of ${bytes} bytes`);
    } finally {
      await file.close();
    }
  }

  /** Appends the body to `file`; answers the file's length. Refuses bytes beyond `bytes`. */
  async #copy(
    res: IncomingMessage,
    file: FileHandle,
    from: number,
    bytes: number,
    where: string,
  ): Promise<number> {
    let at = from;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        if (at + chunk.length > bytes) {
          await file.truncate(0);
          throw new FetchError("size_mismatch", `${where} sends more than the manifest's ${bytes} bytes`);
        }
        await file.write(chunk);
        at += chunk.length;
      }
    } catch (err) {
      res.destroy();
      if (err instanceof FetchError) throw err;
      // What arrived stays in the partial file: the next attempt asks for the rest.
      throw new FetchError(
        "unreachable",
        `${where}: ${(err as Error).message} after ${at} of ${bytes} bytes`,
      );
    }
    return at;
  }
}
