// nats://BUCKET/PREFIX sources: an Object Store bucket in the run's account on the run's
// bus, written by the organiser (operator user) and read-only for peers (their permissions
// allow direct gets and stream info on every stream of the account, publishes only under
// their own hotkey). Reads go through the worker's BusClient: deadlines, retries across
// reconnects, the shared byte budget, and the Object Store's own size and digest check.
import { writeFile } from "node:fs/promises";
import { CorruptObject, PayloadTooLarge } from "../../protocol/bus/client.ts";
import type { BusClient } from "../../protocol/bus/client.ts";
import { FetchError } from "./source.ts";
import type { ShardFetcher } from "./source.ts";

export type ObjectReader = Pick<BusClient, "getObject">;

export class NatsFetcher implements ShardFetcher {
  constructor(
    readonly url: string,
    readonly bus: ObjectReader,
    readonly bucket: string,
    readonly prefix: string,
  ) {}

  #name(object: string): string {
    return this.prefix ? `${this.prefix}/${object}` : object;
  }

  where(object: string): string {
    return `nats://${this.bucket}/${this.#name(object)}`;
  }

  async read(object: string, maxBytes: number): Promise<Uint8Array | undefined> {
    try {
      return await this.bus.getObject(this.bucket, this.#name(object), { maxBytes });
    } catch (err) {
      throw this.#classify(object, err);
    }
  }

  async fetch(object: string, bytes: number, partial: string): Promise<void> {
    // The Object Store is read whole (no ranges); an object larger than the manifest says
    // is refused before a byte moves.
    const data = await this.read(object, bytes);
    if (!data) throw new FetchError("missing", `${this.where(object)} does not exist`);
    await writeFile(partial, data);
  }

  #classify(object: string, err: unknown): FetchError {
    if (err instanceof FetchError) return err;
    const msg = `${this.where(object)}: ${(err as Error).message ?? String(err)}`;
    if (err instanceof PayloadTooLarge) return new FetchError("size_mismatch", msg);
    if (err instanceof CorruptObject) return new FetchError("digest_mismatch", msg);
    // A bucket that does not exist is a missing object to the peer, not an outage.
    if (/not found/i.test(msg)) return new FetchError("missing", msg);
    return new FetchError("unreachable", msg);
  }
}
