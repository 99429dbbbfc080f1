// file:// sources: a directory on the worker's filesystem (a volume the provider mounts).
// The shard cache verifies these files in place (localPath) rather than copying them;
// fetch copies, for callers that want a copy on another volume.
import { createReadStream, createWriteStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { FetchError } from "./source.ts";
import type { ShardFetcher } from "./source.ts";

const notFound = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

export class FileFetcher implements ShardFetcher {
  constructor(
    readonly url: string,
    readonly dir: string,
  ) {}

  where(object: string): string {
    return `file://${this.localPath(object)}`;
  }

  /** Object names are relative and have no `..` (the manifest checks), so this stays inside dir. */
  localPath(object: string): string {
    return join(this.dir, object);
  }

  async read(object: string, maxBytes: number): Promise<Uint8Array | undefined> {
    let f;
    try {
      f = await open(this.localPath(object), "r");
    } catch (err) {
      if (notFound(err)) return undefined;
      throw new FetchError("unreachable", `${this.where(object)}: ${(err as Error).message}`);
    }
    try {
      const { size } = await f.stat();
      if (size > maxBytes)
        throw new FetchError(
          "size_mismatch",
          `${this.where(object)} is ${size} bytes, more than ${maxBytes}`,
        );
      return await f.readFile();
    } finally {
      await f.close();
    }
  }

  async fetch(object: string, bytes: number, partial: string): Promise<void> {
    const from = this.localPath(object);
    let size: number;
    try {
      size = (await stat(from)).size;
    } catch (err) {
      if (notFound(err)) throw new FetchError("missing", `${this.where(object)} does not exist`);
      throw new FetchError("unreachable", `${this.where(object)}: ${(err as Error).message}`);
    }
    if (size !== bytes)
      throw new FetchError("size_mismatch", `${this.where(object)} is ${size} bytes, not ${bytes}`);
    await pipeline(createReadStream(from), createWriteStream(partial));
  }
}
