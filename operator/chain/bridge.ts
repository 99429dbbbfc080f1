/**
 * The chain bridge of one TrainingRun: follows the run's chain endpoint, reads the subnet's
 * metagraph at each new head, plans CovenantPeer chain status and Events (pure, peers.ts),
 * turns the connection state into the ChainSynced condition (pure, sync.ts), and hands both
 * to a sink (the Kubernetes applier in kube.ts, or anything else).
 */
import type { ApiPromise } from "@polkadot/api";
import type { BackoffPolicy } from "../../protocol/chain/backoff.ts";
import { ChainConnection } from "../../protocol/chain/connection.ts";
import { readMetagraph, type MetagraphSnapshot } from "./metagraph.ts";
import type { ChainMetrics } from "./metrics.ts";
import { planPeerChainStatus, type PeerChainInput, type PeerChainPlan } from "./peers.ts";
import {
  chainSyncedCondition,
  DEFAULT_STALE_AFTER_MS,
  type ConditionSpec,
  type HeadInfo,
  type SyncSnapshot,
} from "./sync.ts";

export interface BridgeSink {
  /** The run's peers as they are now. */
  peers(): Promise<PeerChainInput[]>;
  applyPeers(plan: PeerChainPlan): Promise<void>;
  /** Called when the condition changes (status, reason or message) and when the chain becomes unreachable. */
  applySync(condition: ConditionSpec, snapshot: SyncSnapshot): Promise<void>;
}

export interface BridgeOptions {
  /** `<namespace>/<name>` of the TrainingRun, the metrics label. */
  run: string;
  endpoint: string;
  netuid: number;
  sink: BridgeSink;
  metrics?: ChainMetrics;
  backoff?: BackoffPolicy;
  connectTimeoutMs?: number;
  staleAfterMs?: number;
  /** A metagraph read that takes longer than this counts as a dead connection. */
  queryTimeoutMs?: number;
  /** How often the condition is re-evaluated without a new head (stall detection). */
  tickMs?: number;
  now?: () => number;
  onError?: (e: unknown) => void;
  /** Every metagraph read, before the sink sees it (the transport controller's view of the subnet). */
  onMetagraph?: (snapshot: MetagraphSnapshot) => void;
}

export class ChainBridge {
  readonly connection: ChainConnection;
  private previous: MetagraphSnapshot | undefined;
  private busy = false;
  private pendingHead: HeadInfo | undefined;
  private lastCondition = "";
  private tick: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private syncWrite: Promise<void> = Promise.resolve();

  constructor(private readonly o: BridgeOptions) {
    this.now = o.now ?? Date.now;
    const run = { run: o.run };
    this.connection = new ChainConnection({
      endpoint: o.endpoint,
      backoff: o.backoff,
      connectTimeoutMs: o.connectTimeoutMs,
      now: this.now,
      onRpcError: (kind) => o.metrics?.rpcErrors.inc({ ...run, kind }),
      onReconnect: () => o.metrics?.reconnects.inc(run),
    });
    this.connection.on("state", (s) => {
      o.metrics?.connected.set(run, s.phase === "Connected" ? 1 : 0);
      this.evaluate();
    });
    this.connection.on("head", (h, api) => {
      o.metrics?.blockHeight.set(run, h.number);
      const fin = this.connection.snapshot.finalized;
      if (fin !== undefined) o.metrics?.finalityLagBlocks.set(run, Math.max(0, h.number - fin));
      this.evaluate();
      void this.refresh(h, api);
    });
  }

  /** The latest metagraph read. */
  get metagraph(): MetagraphSnapshot | undefined {
    return this.previous;
  }

  start(): void {
    this.connection.start();
    this.evaluate();
    this.tick = setInterval(() => this.evaluate(), this.o.tickMs ?? 5_000);
  }

  async stop(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    await this.connection.stop();
    await this.syncWrite;
  }

  /** Waits until every sync write issued so far is done (for tests and shutdown). */
  settled(): Promise<void> {
    return this.syncWrite;
  }

  private evaluate(): void {
    const snap = this.connection.snapshot;
    const cond = chainSyncedCondition(snap, this.now(), this.o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
    // The retry countdown changes every second; only status and reason changes are written.
    const key = `${cond.status}/${cond.reason}/${snap.failures}`;
    if (key === this.lastCondition) return;
    this.lastCondition = key;
    this.syncWrite = this.syncWrite
      .then(() => this.o.sink.applySync(cond, snap))
      .catch((e) => this.o.onError?.(e));
  }

  private async refresh(head: HeadInfo, api: ApiPromise): Promise<void> {
    if (this.busy) {
      this.pendingHead = head;
      return;
    }
    this.busy = true;
    try {
      let next: HeadInfo | undefined = head;
      while (next) {
        this.pendingHead = undefined;
        await this.refreshAt(next, api);
        next = this.pendingHead;
      }
    } finally {
      this.busy = false;
    }
  }

  private async refreshAt(head: HeadInfo, api: ApiPromise): Promise<void> {
    let snapshot: MetagraphSnapshot;
    const timeoutMs = this.o.queryTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      snapshot = await Promise.race([
        readMetagraph(api, this.o.netuid, head.hash, head.number),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new QueryTimeout(timeoutMs)), timeoutMs);
        }),
      ]);
    } catch (e) {
      // A query that hangs means the connection is dead even if the socket looks open.
      this.connection.reportError(e instanceof QueryTimeout ? "timeout" : "query", e);
      this.o.onError?.(e);
      return;
    } finally {
      clearTimeout(timer);
    }
    try {
      this.o.onMetagraph?.(snapshot);
    } catch (e) {
      this.o.onError?.(e);
    }
    try {
      const peers = await this.o.sink.peers();
      const plan = planPeerChainStatus(snapshot, peers, this.previous);
      await this.o.sink.applyPeers(plan);
      this.previous = snapshot;
    } catch (e) {
      this.o.onError?.(e);
    }
  }
}

class QueryTimeout extends Error {
  constructor(ms: number) {
    super(`metagraph read timed out after ${ms} ms`);
  }
}
