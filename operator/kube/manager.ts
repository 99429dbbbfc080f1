/**
 * The Manager wires the runtime together:
 *
 *   informers (shared, started at once) -> caches synced -> leader election -> controllers
 *
 * and serves `/healthz` (the process is alive), `/readyz` (caches synced and, when this
 * replica leads, its controllers started) and `/metrics` (Prometheus text format).
 *
 * Shutdown (`stop()`, or SIGTERM/SIGINT with `run({ handleSignals: true })`): stop intake,
 * let in-flight reconciles finish, flush events, release the lease, stop informers, close
 * the HTTP server. Losing the lease also stops the manager: `run()` then resolves with
 * reason "lost-leadership" and the entry point should exit non-zero so that it restarts
 * with clean caches.
 */
import http from "node:http";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { createOperatorMetrics, type OperatorMetrics } from "../metrics/registry.ts";
import { KubeClient } from "./client.ts";
import { Controller, type ControllerSpec } from "./controller.ts";
import { AggregatingEventRecorder, type EventRecorder } from "./events.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import { resourceLabel, type ResourceRef } from "./keys.ts";
import { LeaderElector, type LeaderElectionOptions } from "./leader.ts";
import { silentLogger, type Logger } from "../../protocol/log.ts";
import { DEFAULT_RATE_LIMIT, type RateLimit } from "./ratelimit.ts";

export interface ManagerOptions {
  kubeConfig?: KubeConfig;
  /** Use this client instead of building one from `kubeConfig`. */
  client?: KubeClient;
  metrics?: OperatorMetrics;
  logger?: Logger;
  /** Watch one namespace; all when absent. */
  namespace?: string;
  /** `host:port` for /healthz, /readyz and /metrics; "" or absent disables the server. Port 0 picks a free one. */
  httpAddress?: string;
  /** Leader election; disabled (always leading) when false or absent. */
  leaderElection?:
    | false
    | (Omit<
        LeaderElectionOptions,
        "identity" | "onStartedLeading" | "onStoppedLeading" | "metrics" | "logger"
      > & {
        identity?: string;
      });
  /** Event source component; default `covenant-operator`. */
  component?: string;
  /** Resync period of informers; default 10 min. */
  resyncMs?: number;
  /**
   * Client-side rate limit of the client built from `kubeConfig` (not of `client`); default
   * DEFAULT_RATE_LIMIT, false disables it. Leader election gets a bucket
   * of its own with the same limits, so that renewals never queue behind reconciles.
   */
  rateLimit?: RateLimit | false;
  /** Deadline of one reconcile for controllers that set none; default 60 s. */
  reconcileTimeoutMs?: number;
}

export type StopReason = "signal" | "stopped" | "lost-leadership" | "error";

export class Manager {
  readonly client: KubeClient;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  readonly recorder: EventRecorder;
  readonly identity: string;
  private readonly informers = new Map<string, Informer<KubernetesObject>>();
  private readonly controllers: Controller<KubernetesObject>[] = [];
  private readonly elector: LeaderElector | undefined;
  private server: http.Server | undefined;
  private synced = false;
  private controllersStarted = false;
  private stopping: Promise<void> | undefined;
  private resolveDone: ((r: StopReason) => void) | undefined;
  private readonly done: Promise<StopReason>;
  private stopReason: StopReason = "stopped";

  constructor(private readonly options: ManagerOptions) {
    this.metrics = options.metrics ?? createOperatorMetrics();
    this.log = options.logger ?? silentLogger;
    if (options.client) this.client = options.client;
    else if (options.kubeConfig)
      this.client = KubeClient.fromKubeConfig(options.kubeConfig, {
        metrics: this.metrics,
        rateLimit: options.rateLimit === false ? undefined : (options.rateLimit ?? DEFAULT_RATE_LIMIT),
      });
    else throw new Error("manager: pass kubeConfig or client");
    const le = options.leaderElection;
    this.identity = (le && le.identity) || `${hostname()}_${randomBytes(4).toString("hex")}`;
    this.recorder = new AggregatingEventRecorder(this.client.withCaller("events"), {
      component: options.component ?? "covenant-operator",
      instance: this.identity,
      metrics: this.metrics,
      logger: this.log,
    });
    if (le) {
      this.elector = new LeaderElector(this.client.withCaller("leader-election", { ownRateLimit: true }), {
        ...le,
        identity: this.identity,
        metrics: this.metrics,
        logger: this.log,
        onStartedLeading: () => this.startControllers(),
        onStoppedLeading: () => {
          if (!this.stopping) {
            this.log.error("lost leadership; shutting down");
            void this.stop("lost-leadership");
          }
        },
      });
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /**
   * The shared informer for a resource: one per resource, namespace and selectors (a later
   * call with the same ones gets the first informer, with the first caller's options).
   */
  informer<T extends KubernetesObject>(
    resource: ResourceRef,
    opts: Omit<InformerOptions<T>, "resource" | "metrics" | "logger"> = {},
  ): Informer<T> {
    const namespace = resource.namespaced ? (opts.namespace ?? this.options.namespace) : undefined;
    const id = [
      resourceLabel(resource),
      namespace ?? "",
      opts.labelSelector ?? "",
      opts.fieldSelector ?? "",
    ].join("|");
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer<KubernetesObject>(this.client.withCaller("informer"), {
        resyncMs: this.options.resyncMs,
        ...(opts as Omit<InformerOptions, "resource" | "metrics" | "logger">),
        namespace,
        resource,
        metrics: this.metrics,
        logger: this.log,
      });
      this.informers.set(id, inf);
      if (this.stopping === undefined && this.startedInformers) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  addController<T extends KubernetesObject>(spec: ControllerSpec<T>): Controller<T> {
    if (this.controllers.some((c) => c.name === spec.name))
      throw new Error(`controller "${spec.name}" already added`);
    const c = new Controller<T>(spec, {
      client: this.client,
      recorder: this.recorder,
      metrics: this.metrics,
      logger: this.log,
      reconcileTimeoutMs: this.options.reconcileTimeoutMs,
    });
    this.controllers.push(c as unknown as Controller<KubernetesObject>);
    if (this.controllersStarted) c.start();
    return c;
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  /** Caches synced and, when leading, controllers started. */
  isReady(): boolean {
    if (!this.synced || this.stopping) return false;
    return !this.isLeader() || this.controllersStarted;
  }

  /** The bound address of the HTTP server, e.g. `http://127.0.0.1:41234`. */
  get httpUrl(): string | undefined {
    const a = this.server?.address();
    if (!a || typeof a === "string") return undefined;
    return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }

  private startedInformers = false;
  /** Aborted when shutdown begins. */
  private readonly lifetime = new AbortController();
  private readonly stopHooks: (() => Promise<void>)[] = [];

  /** Runs `fn` on shutdown, after the controllers have stopped (to close connections they used). */
  onStop(fn: () => Promise<void>): void {
    this.stopHooks.push(fn);
  }

  /**
   * Starts the HTTP server and informers, waits for cache sync, then campaigns for the lease
   * (or starts controllers at once without leader election). Resolves when controllers are
   * running or this replica is a standby candidate.
   */
  async start(): Promise<void> {
    if (this.stopping) throw new Error("manager: start after stop");
    await this.listen();
    this.startedInformers = true;
    for (const inf of this.informers.values()) inf.start();
    // Shutdown aborts the wait: an unreachable API server must not block a SIGTERM.
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(this.lifetime.signal)));
    if (this.stopping) return;
    this.synced = true;
    this.log.info("caches synced", { informers: this.informers.size });
    if (this.elector) {
      void this.elector.start();
    } else {
      this.startControllers();
    }
  }

  /** Starts, and resolves with the reason once stopped. With `handleSignals`, SIGTERM/SIGINT stop it. */
  async run(opts: { handleSignals?: boolean } = {}): Promise<StopReason> {
    // Repeated signals (a supervisor forwarding the one the process group already got) must
    // not cut the graceful shutdown short, so the handlers stay installed until it is done.
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.stopping) {
        this.log.info("signal received; shutdown already in progress", { signal: sig });
        return;
      }
      this.log.info("signal received; shutting down", { signal: sig });
      void this.stop("signal");
    };
    if (opts.handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    this.start().catch((e: unknown) => {
      if (this.stopping) return; // the wait for caches was aborted by the shutdown
      this.log.error("manager failed to start", { error: e });
      void this.stop("error");
    });
    const reason = await this.done;
    if (opts.handleSignals) {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
    return reason;
  }

  /** Graceful shutdown (idempotent). */
  stop(reason: StopReason = "stopped"): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private startControllers(): void {
    if (this.controllersStarted || this.stopping) return;
    this.controllersStarted = true;
    for (const c of this.controllers) c.start();
    this.log.info("controllers started", { controllers: this.controllers.map((c) => c.name) });
  }

  private async shutdown(reason: StopReason): Promise<void> {
    this.stopReason = reason;
    this.lifetime.abort();
    await Promise.all(this.controllers.map((c) => c.stop()));
    for (const hook of this.stopHooks) {
      await hook().catch((e: unknown) => this.log.warn("stop hook failed", { error: e }));
    }
    await this.recorder.flush();
    if (this.elector) await this.elector.release();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.log.info("manager stopped", { reason });
    this.resolveDone?.(this.stopReason);
  }

  private async listen(): Promise<void> {
    const addr = this.options.httpAddress;
    if (!addr) return;
    const { host, port } = parseAddress(addr);
    this.server = http.createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.log.info("serving health and metrics", { url: this.httpUrl });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD" }).end();
      } else if (path === "/healthz" || path === "/livez") {
        res.writeHead(200, { "Content-Type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const ready = this.isReady();
        res
          .writeHead(ready ? 200 : 503, { "Content-Type": "text/plain" })
          .end(ready ? "ok\n" : `not ready: ${this.readinessDetail()}\n`);
      } else if (path === "/metrics") {
        const body = await this.metrics.registry.metrics();
        res.writeHead(200, { "Content-Type": this.metrics.registry.contentType }).end(body);
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      }
    } catch (e) {
      this.log.error("http handler failed", { error: e, path });
      if (!res.headersSent) res.writeHead(500).end();
    }
  }

  private readinessDetail(): string {
    if (this.stopping) return "shutting down";
    if (!this.synced) {
      const pending = [...this.informers.values()]
        .filter((i) => !i.hasSynced())
        .map((i) => resourceLabel(i.resource));
      return `caches not synced (${pending.join(", ")})`;
    }
    return "leading but controllers not started";
  }
}

/** `host:port`, `:port`, `[::1]:port`. */
export function parseAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`invalid address "${addr}": expected host:port, e.g. 0.0.0.0:8080`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid address "${addr}": port ${port} out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}
