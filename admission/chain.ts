// A hotkey's standing on the run's subnet, read from the chain at the best block for every
// login. Nothing is cached: a login is admitted on what the chain says now, which is what
// bounds how long a deregistered hotkey keeps its connection (the user JWT's expiry).
//
// The connection (reconnects with backoff, follows heads) is the operator's chain bridge
// connection; a login while it is down is refused as chain_unreachable (fail closed).
import type { ApiPromise } from "@polkadot/api";
import type { Codec } from "@polkadot/types/types";
import { ChainConnection, describe } from "../protocol/chain/connection.ts";
import type { SyncSnapshot } from "../protocol/chain/state.ts";
import type { Standing } from "./decision.ts";

export class ChainUnavailable extends Error {
  override name = "ChainUnavailable";
}

export interface StandingSource {
  /** Throws ChainUnavailable when the chain cannot be asked. */
  standing(hotkey: string): Promise<Standing>;
}

/** Standing from decoded storage: `Uids(netuid, hotkey)` (Option<u16>) and `ValidatorPermit(netuid)`. Pure. */
export function standingFrom(uid: number | null | undefined, permits: readonly unknown[]): Standing {
  if (uid === null || uid === undefined) return { registered: false };
  return { registered: true, uid, validatorPermit: permits[uid] === true };
}

export interface ChainStandingsOptions {
  endpoint: string;
  netuid: number;
  /** Give up a query after this many ms (keep it under the server's auth timeout). */
  queryTimeoutMs?: number;
  onState?: (s: SyncSnapshot) => void;
}

export class ChainStandings implements StandingSource {
  readonly connection: ChainConnection;
  private readonly timeoutMs: number;

  constructor(private readonly o: ChainStandingsOptions) {
    if (!Number.isInteger(o.netuid) || o.netuid < 0 || o.netuid > 65535)
      throw new Error(`netuid ${o.netuid} is not a u16`);
    this.timeoutMs = o.queryTimeoutMs ?? 3_000;
    this.connection = new ChainConnection({ endpoint: o.endpoint, connectTimeoutMs: 10_000 });
    if (o.onState) this.connection.on("state", o.onState);
  }

  get connected(): boolean {
    return this.connection.snapshot.phase === "Connected" && this.connection.api !== undefined;
  }

  start(): void {
    this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  async standing(hotkey: string): Promise<Standing> {
    const api = this.connection.api;
    if (!api || this.connection.snapshot.phase !== "Connected")
      throw new ChainUnavailable(`chain ${this.connection.snapshot.endpoint} is not connected`);
    try {
      return await withTimeout(read(api, this.o.netuid, hotkey), this.timeoutMs);
    } catch (e) {
      const timedOut = e instanceof QueryTimeout;
      // A timeout usually means a dead socket: let the connection drop it and reconnect.
      this.connection.reportError(timedOut ? "timeout" : "query", e);
      throw new ChainUnavailable(timedOut ? `chain query timed out after ${this.timeoutMs} ms` : describe(e));
    }
  }
}

async function read(api: ApiPromise, netuid: number, hotkey: string): Promise<Standing> {
  const st = api.query.subtensorModule;
  if (!st?.uids || !st.validatorPermit) throw new Error("the chain's metadata has no SubtensorModule.Uids");
  const uid = (await st.uids(netuid, hotkey)) as Codec;
  const uidJson = uid.toJSON() as number | null;
  if (uidJson === null) return standingFrom(null, []);
  const permits = (await st.validatorPermit(netuid)).toJSON();
  return standingFrom(Number(uidJson), Array.isArray(permits) ? permits : []);
}

class QueryTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new QueryTimeout()), ms);
    }),
  ]);
}
