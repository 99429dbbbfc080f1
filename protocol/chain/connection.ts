/**
 * One connection to a subtensor endpoint that survives the endpoint going away: connects
 * with @polkadot/api, follows best and finalized heads, and on any failure drops the client
 * and reconnects with exponential backoff and jitter. A fresh client per attempt keeps no
 * half-dead subscriptions behind. Emits "state" on every phase change and "head" per block.
 */
import { EventEmitter } from "node:events";
import { ApiPromise, WsProvider } from "@polkadot/api";
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from "./backoff.ts";
import { redactEndpoint, validateEndpoint } from "./endpoint.ts";
import type { HeadInfo, RpcErrorKind, SyncSnapshot } from "./state.ts";

export interface ConnectionOptions {
  endpoint: string;
  backoff?: BackoffPolicy;
  /** Give up an attempt that has not connected and decoded metadata in this many ms. */
  connectTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
  onRpcError?: (kind: RpcErrorKind) => void;
  onReconnect?: () => void;
}

interface ConnectionEvents {
  state: [SyncSnapshot];
  head: [HeadInfo, ApiPromise];
  connected: [ApiPromise];
}

export class ChainConnection extends EventEmitter<ConnectionEvents> {
  private current: ApiPromise | undefined;
  private provider: WsProvider | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private generation = 0;
  private snap: SyncSnapshot;
  private readonly backoff: BackoffPolicy;
  private readonly now: () => number;

  constructor(private readonly o: ConnectionOptions) {
    super();
    validateEndpoint(o.endpoint);
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.now = o.now ?? Date.now;
    this.snap = { phase: "Connecting", endpoint: redactEndpoint(o.endpoint), failures: 0 };
  }

  get snapshot(): SyncSnapshot {
    return { ...this.snap };
  }
  get api(): ApiPromise | undefined {
    return this.current;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.teardown();
  }

  /** Reports a failed query on the current client; the connection decides whether to reconnect. */
  reportError(kind: RpcErrorKind, e: unknown): void {
    this.o.onRpcError?.(kind);
    if (kind === "disconnect" || kind === "timeout") this.fail(kind, e);
  }

  private set(s: Partial<SyncSnapshot>): void {
    const before = this.snap.phase;
    this.snap = { ...this.snap, ...s };
    if (before !== this.snap.phase || s.lastError !== undefined) this.emit("state", this.snapshot);
  }

  private async attempt(): Promise<void> {
    const gen = ++this.generation;
    const provider = new WsProvider(this.o.endpoint, false, {}, this.o.connectTimeoutMs ?? 10_000);
    // The provider reports socket errors as events; the attempt's outcome decides what happens.
    provider.on("error", () => undefined);
    this.provider = provider;
    try {
      await withTimeout(connectProvider(provider), this.o.connectTimeoutMs ?? 10_000, "connect");
      const api = await withTimeout(
        ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: true }),
        this.o.connectTimeoutMs ?? 10_000,
        "metadata",
      );
      if (gen !== this.generation) {
        await api.disconnect().catch(() => undefined);
        return;
      }
      this.current = api;
      provider.on("disconnected", () =>
        this.fail("disconnect", new Error("connection closed by the endpoint")),
      );
      await api.rpc.chain.subscribeNewHeads((h) => {
        const head: HeadInfo = { number: h.number.toNumber(), hash: h.hash.toHex(), seenAt: this.now() };
        this.set({ best: head });
        this.emit("head", head, api);
      });
      await api.rpc.chain.subscribeFinalizedHeads((h) => this.set({ finalized: h.number.toNumber() }));
      this.set({ phase: "Connected", failures: 0, retryAt: undefined });
      this.emit("connected", api);
    } catch (e) {
      if (gen === this.generation) this.fail("connect", e);
      else await provider.disconnect().catch(() => undefined);
    }
  }

  private fail(kind: RpcErrorKind, e: unknown): void {
    if (this.stopped || this.timer) return;
    this.o.onRpcError?.(kind);
    this.generation++;
    const failures = this.snap.failures + 1;
    const delay = backoffDelay(failures, this.backoff, this.o.random);
    this.set({ phase: "Unreachable", failures, lastError: describe(e), retryAt: this.now() + delay });
    void this.teardown();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.o.onReconnect?.();
      void this.attempt();
    }, delay);
  }

  private async teardown(): Promise<void> {
    const api = this.current;
    const provider = this.provider;
    this.current = undefined;
    this.provider = undefined;
    if (api) await api.disconnect().catch(() => undefined);
    else if (provider) await provider.disconnect().catch(() => undefined);
  }
}

function connectProvider(provider: WsProvider): Promise<void> {
  return new Promise((resolve, reject) => {
    const offOk = provider.on("connected", () => {
      offOk();
      offErr();
      resolve();
    });
    const offErr = provider.on("error", (e: unknown) => {
      offOk();
      offErr();
      reject(e instanceof Error ? e : new Error(describe(e)));
    });
    provider.connect().catch(reject);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

/** A one-line reason without URLs (they may carry credentials). */
export function describe(e: unknown): string {
  const text =
    e instanceof Error
      ? e.message
      : typeof e === "object" && e && "message" in e
        ? String((e as { message: unknown }).message)
        : String(e);
  const line = text.split("\n")[0] ?? "";
  return line.replace(/wss?:\/\/\S+/g, "<endpoint>").slice(0, 200) || "connection failed";
}
