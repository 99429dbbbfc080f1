// The operator's own connections to run buses, one per server list, each reconnecting
// forever. Whether a connection is up is tracked from its status events, so a caller learns
// that a bus is down at once instead of waiting for a request to time out, and is told
// (onChange) when a bus goes down or comes back, to re-check what depends on it.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBus } from "../../protocol/bus/connection.ts";

export interface BusPoolOptions {
  /** NATS user nkey seed (SU...) of the operator; never logged. */
  seed: string;
  /** CA bundle the servers' certificates are verified with (tls:// servers). */
  caFile?: string;
  /** Connection name shown by the servers. */
  name: string;
  /** Called with the server list whose connection went down or came back. */
  onChange?: (servers: string) => void;
  /** Deadline of the first connection attempt (ms, default 5000). */
  connectTimeoutMs?: number;
  /** Pause between reconnect attempts (ms, default 1000). */
  reconnectWaitMs?: number;
}

/** The bus could not be reached (refused, timed out, or the connection is down). */
export class BusUnreachableError extends Error {
  override readonly name = "BusUnreachableError";
}

interface Entry {
  conn: Promise<NatsConnection>;
  up: boolean;
}

export class BusConnectionPool {
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(private readonly o: BusPoolOptions) {}

  /**
   * The connection to `servers`, connecting first when there is none. Rejects with
   * BusUnreachableError while the connection is down; a failed first attempt is forgotten,
   * so the next call tries again.
   */
  async get(servers: string): Promise<NatsConnection> {
    if (this.#closed) throw new Error("the bus connection pool is closed");
    let e = this.#entries.get(servers);
    if (!e) {
      const entry: Entry = { conn: this.#connect(servers), up: false };
      e = entry;
      this.#entries.set(servers, entry);
      entry.conn.then(
        (nc) => {
          entry.up = true;
          void this.#follow(servers, entry, nc);
        },
        () => {
          if (this.#entries.get(servers) === entry) this.#entries.delete(servers);
        },
      );
    }
    let nc: NatsConnection;
    try {
      nc = await e.conn;
    } catch (err) {
      throw new BusUnreachableError(`connecting to the bus: ${(err as Error).message}`, { cause: err });
    }
    if (!e.up || nc.isClosed())
      throw new BusUnreachableError("the connection to the bus is down; reconnecting");
    return nc;
  }

  /** Whether the connection to `servers` is up (false when there is none). */
  isUp(servers: string): boolean {
    return this.#entries.get(servers)?.up ?? false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of all) await (await e.conn.catch(() => undefined))?.close();
  }

  #connect(servers: string): Promise<NatsConnection> {
    return connectBus({
      servers,
      name: this.o.name,
      nkeySeed: this.o.seed,
      tls: this.o.caFile ? { caFile: this.o.caFile } : undefined,
      timeoutMs: this.o.connectTimeoutMs ?? 5_000,
      reconnectWaitMs: this.o.reconnectWaitMs ?? 1_000,
      waitOnFirstConnect: false,
    });
  }

  async #follow(servers: string, entry: Entry, nc: NatsConnection): Promise<void> {
    const set = (up: boolean) => {
      if (entry.up === up) return;
      entry.up = up;
      this.o.onChange?.(servers);
    };
    const closed = nc.closed().then(() => {
      // Closed for good (by us, or by the client giving up): forget it, the next get reconnects.
      entry.up = false;
      if (this.#entries.get(servers) === entry) this.#entries.delete(servers);
      if (!this.#closed) this.o.onChange?.(servers);
    });
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") set(false);
      else if (s.type === "reconnect") set(true);
    }
    await closed;
  }
}
