/**
 * A thin Kubernetes REST client over node:https: JSON requests, merge/JSON/apply patches and
 * streaming watches, with every request counted in the operator metrics.
 *
 * Credentials (CA, client certificate, bearer token, exec plugins) come from a KubeConfig of
 * @kubernetes/client-node; the transport (transport.ts) keeps one keep-alive agent per client
 * and follows rotated credential files. See docs/decisions/controller-runtime.md for why the
 * runtime does not use the generated API classes or ListWatch of that package.
 *
 * Under pressure: non-watch requests wait for a client-side token bucket (ratelimit.ts, when
 * configured), and a request the server pushed back on (429, or a GET answered 5xx with
 * Retry-After) is repeated after the server's Retry-After (retry.ts). Both waits honour the
 * request's AbortSignal.
 */
import http from "node:http";
import https from "node:https";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import type { OperatorMetrics } from "../metrics/registry.ts";
import { resourceLabel, resourcePath, type ResourceRef } from "./keys.ts";
import { TokenBucketLimiter, realClock, type Clock, type RateLimit } from "./ratelimit.ts";
import { DEFAULT_RETRY_POLICY, retryDelay, type RetryPolicy } from "./retry.ts";
import { transportFromKubeConfig, type Transport } from "./transport.ts";

/** A Kubernetes `Status` as returned with error responses. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly status?: KubeStatus,
  ) {
    super(message);
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.statusCode === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.statusCode === 409;
export const isGone = (e: unknown): boolean => e instanceof ApiError && e.statusCode === 410;
export const isAlreadyExists = (e: unknown): boolean =>
  e instanceof ApiError && e.statusCode === 409 && e.reason === "AlreadyExists";

export const PATCH_TYPES = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
} as const;
export type PatchType = keyof typeof PATCH_TYPES;

export interface RequestOptions {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Metric labels; derived from the method and path when absent. */
  verb?: string;
  resource?: string;
  signal?: AbortSignal;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  continue?: string;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

/** Largest single watch event line accepted (a malformed stream must not exhaust memory). */
export const MAX_WATCH_LINE_BYTES = 32 * 1024 * 1024;
/** Largest response body accepted. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;

export interface KubeClientOptions {
  metrics?: OperatorMetrics;
  /** Label `controller` of API request metrics. */
  caller?: string;
  userAgent?: string;
  /** Per-request timeout for non-watch requests; default 30 s. */
  timeoutMs?: number;
  /**
   * Client-side token bucket for non-watch requests, shared by every client derived with
   * `withCaller`/`withSignal`. Absent: not limited (test harnesses, tools); the Manager passes
   * DEFAULT_RATE_LIMIT (50 QPS, burst 100) unless told otherwise.
   */
  rateLimit?: RateLimit;
  /** Repeats after 429 / 5xx with Retry-After; default 3 of at most 10 s each. */
  retry?: RetryPolicy;
  /** How often credential files (CA, client certificate and key, token file) are re-checked; default 5 s. */
  credentialReloadMs?: number;
  /** Time source of the rate limiter and retry waits; injectable for tests. */
  clock?: Clock;
}

export class KubeClient {
  private constructor(
    private readonly transport: Transport,
    private readonly options: KubeClientOptions,
    private readonly limiter: TokenBucketLimiter | undefined,
    /** Aborts every request of this client (a reconcile's deadline), with each request's own. */
    private readonly signal?: AbortSignal,
  ) {}

  static fromKubeConfig(kc: KubeConfig, options: KubeClientOptions = {}): KubeClient {
    const clock = options.clock;
    const transport = transportFromKubeConfig(kc, {
      reloadIntervalMs: options.credentialReloadMs,
      now: clock && (() => clock.now()),
    });
    return new KubeClient(transport, options, KubeClient.limiterFor(options));
  }

  private static limiterFor(options: KubeClientOptions): TokenBucketLimiter | undefined {
    const r = options.rateLimit;
    return r && r.qps > 0 ? new TokenBucketLimiter(r, options.clock) : undefined;
  }

  /**
   * The same connection with a different `controller` label on its API request metrics.
   * With `ownRateLimit` it gets a token bucket of its own (same limits), so that its requests
   * never queue behind the others': leader election must renew its lease on time even while
   * controllers saturate the shared bucket (client-go gives it a client of its own for that).
   */
  withCaller(caller: string, opts: { ownRateLimit?: boolean } = {}): KubeClient {
    const options = { ...this.options, caller };
    const limiter = opts.ownRateLimit ? KubeClient.limiterFor(options) : this.limiter;
    return new KubeClient(this.transport, options, limiter, this.signal);
  }

  /** The same client whose every non-watch request is also aborted by `signal`. */
  withSignal(signal: AbortSignal): KubeClient {
    const combined = this.signal ? AbortSignal.any([this.signal, signal]) : signal;
    return new KubeClient(this.transport, this.options, this.limiter, combined);
  }

  get server(): string {
    return this.transport.server.toString();
  }

  /**
   * Sends one request and parses the JSON response; non-2xx responses throw ApiError. Waits
   * for the rate limiter first, and repeats the request when the server asks to (see retry.ts);
   * every attempt is counted in `covenant_kube_api_requests_total` with its own code.
   */
  async request<T = unknown>(req: RequestOptions): Promise<T> {
    const verb = req.verb ?? verbOf(req.method, req.path);
    const resource = req.resource ?? resourceOfPath(req.path);
    const signal = combineSignals(req.signal, this.signal);
    const policy = this.options.retry ?? DEFAULT_RETRY_POLICY;
    for (let attempt = 1; ; attempt++) {
      await this.throttle(signal);
      const started = performance.now();
      let code = "error";
      let res: Awaited<ReturnType<KubeClient["send"]>>;
      try {
        res = await this.send({ ...req, signal });
        code = String(res.status);
      } finally {
        this.count(verb, resource, code, started);
      }
      const { status, body } = res;
      const wait = retryDelay(req.method, status, res.retryAfter, attempt, policy, Date.now());
      if (wait !== undefined) {
        if (this.options.metrics) this.options.metrics.apiRetries.inc({ verb, resource, code });
        await (this.options.clock ?? realClock).sleep(wait, signal);
        continue;
      }
      const text = body.toString("utf8");
      if (status < 200 || status > 299) throw toApiError(status, text);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    }
  }

  /** Waits for the client-side rate limiter, if any, and records the wait. */
  private async throttle(signal: AbortSignal | undefined): Promise<void> {
    if (!this.limiter) return;
    const waitedMs = await this.limiter.wait(signal);
    const m = this.options.metrics;
    if (m) m.apiRateLimiterWait.observe({ controller: this.options.caller ?? "" }, waitedMs / 1000);
  }

  async get<T extends KubernetesObject>(
    r: ResourceRef,
    namespace: string | undefined,
    name: string,
  ): Promise<T> {
    return this.request<T>({
      method: "GET",
      path: resourcePath(r, namespace, name),
      resource: resourceLabel(r),
    });
  }

  /** GET that answers undefined on 404. */
  async getOrUndefined<T extends KubernetesObject>(
    r: ResourceRef,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(r, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async list<T extends KubernetesObject>(r: ResourceRef, opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>({
      method: "GET",
      path: resourcePath(r, opts.namespace),
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        resourceVersion: opts.resourceVersion,
        limit: opts.limit,
        continue: opts.continue,
      },
      verb: "list",
      resource: resourceLabel(r),
    });
  }

  async create<T extends KubernetesObject>(r: ResourceRef, obj: T, fieldManager?: string): Promise<T> {
    return this.request<T>({
      method: "POST",
      path: resourcePath(r, obj.metadata?.namespace),
      query: { fieldManager },
      body: obj,
      resource: resourceLabel(r),
    });
  }

  async replace<T extends KubernetesObject>(r: ResourceRef, obj: T, subresource?: string): Promise<T> {
    const name = obj.metadata?.name;
    if (!name) throw new Error(`replace ${r.kind}: object has no metadata.name`);
    return this.request<T>({
      method: "PUT",
      path: resourcePath(r, obj.metadata?.namespace, name, subresource),
      body: obj,
      resource: resourceLabel(r),
    });
  }

  async patch<T extends KubernetesObject>(
    r: ResourceRef,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType,
    query: { fieldManager?: string; force?: boolean; subresource?: string } = {},
  ): Promise<T> {
    return this.request<T>({
      method: "PATCH",
      path: resourcePath(r, namespace, name, query.subresource),
      query: { fieldManager: query.fieldManager, force: query.force },
      body: patch,
      contentType: PATCH_TYPES[type],
      verb: type === "apply" ? "apply" : "patch",
      resource: resourceLabel(r),
    });
  }

  /** DELETE; answers false when the object was already gone. */
  async delete(
    r: ResourceRef,
    namespace: string | undefined,
    name: string,
    opts: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; uid?: string } = {},
  ): Promise<boolean> {
    const body: Record<string, unknown> = { kind: "DeleteOptions", apiVersion: "v1" };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.uid) body.preconditions = { uid: opts.uid };
    try {
      await this.request({
        method: "DELETE",
        path: resourcePath(r, namespace, name),
        body,
        resource: resourceLabel(r),
      });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Opens a watch and calls `onEvent` for each event until the server closes the stream
   * (resolves) or the request fails (rejects with ApiError; a 410 as an ERROR event too).
   * Abort `signal` to close it early (resolves).
   */
  async watch<T>(
    r: ResourceRef,
    opts: WatchOptions,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const started = performance.now();
    const resource = resourceLabel(r);
    // Not rate limited: a watch is one long-running request, and re-watching is paced by the informer.
    const { agent, headers } = await this.transport.prepare();
    const url = this.url(resourcePath(r, opts.namespace), {
      watch: 1,
      allowWatchBookmarks: opts.allowWatchBookmarks,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
    });
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        if (err === undefined || signal.aborted) resolve();
        else reject(err);
      };
      const req = this.lib().request(url, {
        method: "GET",
        agent,
        headers: { ...headers, Accept: "application/json", ...this.ua() },
      });
      // A silently dropped connection sends no FIN: give up after the server-side timeout
      // plus a margin without any bytes, and let the informer re-watch.
      const idleMs = ((opts.timeoutSeconds ?? 600) + 30) * 1000;
      req.setTimeout(idleMs, () => req.destroy(new Error(`watch ${resource}: no data for ${idleMs} ms`)));
      const onAbort = (): void => {
        req.destroy();
        finish();
      };
      signal.addEventListener("abort", onAbort);
      req.on("error", (e) => {
        if (!signal.aborted) this.transport.rejected();
        finish(e);
      });
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        if (status === 401) this.transport.rejected();
        this.count("watch", resource, String(status), started);
        if (status !== 200) {
          readAll(res)
            .then((b) => finish(toApiError(status, b.toString("utf8"))))
            .catch((e) => finish(e));
          return;
        }
        let pending = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (settled) return;
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === "") continue;
            let ev: WatchEvent<T>;
            try {
              ev = JSON.parse(line) as WatchEvent<T>;
            } catch {
              req.destroy();
              return finish(new Error(`watch ${resource}: malformed event line (${line.length} bytes)`));
            }
            if (ev.type === "ERROR") {
              const st = ev.object as KubeStatus;
              req.destroy();
              return finish(
                new ApiError(st.code ?? 500, st.reason ?? "Unknown", st.message ?? "watch error", st),
              );
            }
            try {
              onEvent(ev);
            } catch (e) {
              req.destroy();
              return finish(e);
            }
          }
          if (pending.length > MAX_WATCH_LINE_BYTES) {
            req.destroy();
            finish(new Error(`watch ${resource}: event larger than ${MAX_WATCH_LINE_BYTES} bytes`));
          }
        });
        res.on("end", () => finish());
        res.on("error", (e) => finish(e));
        res.on("close", () => finish());
      });
      req.end();
    });
  }

  private lib(): typeof https | typeof http {
    return this.transport.server.protocol === "http:" ? http : https;
  }

  private ua(): Record<string, string> {
    return { "User-Agent": this.options.userAgent ?? "covenant-operator" };
  }

  private url(path: string, query?: RequestOptions["query"]): URL {
    const base = this.transport.server.toString().replace(/\/$/, "");
    const url = new URL(base + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    }
    return url;
  }

  private async send(
    req: RequestOptions,
  ): Promise<{ status: number; body: Buffer; retryAfter: string | undefined }> {
    const { agent, headers } = await this.transport.prepare();
    const url = this.url(req.path, req.query);
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const r = this.lib().request(url, {
        method: req.method,
        agent,
        headers: {
          ...headers,
          ...this.ua(),
          Accept: "application/json",
          ...(payload
            ? { "Content-Type": req.contentType ?? "application/json", "Content-Length": payload.length }
            : {}),
        },
        signal: req.signal,
      });
      r.setTimeout(timeoutMs, () =>
        r.destroy(new Error(`${req.method} ${req.path}: timed out after ${timeoutMs} ms`)),
      );
      r.on("error", (e) => {
        // No response at all: a rotated (expired, replaced) certificate or CA is one cause.
        if (!req.signal?.aborted) this.transport.rejected();
        reject(e);
      });
      r.on("response", (res) => {
        const status = res.statusCode ?? 0;
        if (status === 401) this.transport.rejected();
        const retryAfter = res.headers["retry-after"];
        readAll(res)
          .then((body) => resolve({ status, body, retryAfter }))
          .catch(reject);
      });
      r.end(payload);
    });
  }

  private count(verb: string, resource: string, code: string, started: number): void {
    const m = this.options.metrics;
    if (!m) return;
    m.apiRequests.inc({ verb, resource, code, controller: this.options.caller ?? "" });
    m.apiRequestDuration.observe({ verb, resource }, (performance.now() - started) / 1000);
  }
}

/** Both signals, either, or none. */
function combineSignals(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  return a && b ? AbortSignal.any([a, b]) : (a ?? b);
}

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy(new Error(`response larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on("end", () => resolve(Buffer.concat(chunks)));
    res.on("error", reject);
  });
}

function toApiError(status: number, text: string): ApiError {
  let st: KubeStatus | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object") st = parsed as KubeStatus;
  } catch {
    // not JSON: keep the first bytes of the text as the message
  }
  const message = st?.message ?? (text.slice(0, 500) || `HTTP ${status}`);
  return new ApiError(status, st?.reason ?? httpReason(status), message, st);
}

function httpReason(status: number): string {
  return http.STATUS_CODES[status]?.replace(/\s+/g, "") ?? "Unknown";
}

/** Metric verb from method and path (`list` vs `get` by whether the path names an object). */
export function verbOf(method: string, path: string): string {
  switch (method) {
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return isCollectionPath(path) ? "list" : "get";
  }
}

function segments(path: string): string[] {
  return path.split("?")[0]!.split("/").filter(Boolean);
}

/** True when a path ends at a collection: /api/v1/pods, /apis/g/v/namespaces/ns/plural. */
function isCollectionPath(path: string): boolean {
  const s = segments(path);
  const rest = s[0] === "api" ? s.slice(2) : s.slice(3);
  if (rest[0] === "namespaces" && rest.length >= 3) return rest.length === 3;
  return rest.length === 1;
}

/** `pods`, `leases.coordination.k8s.io` from a request path. */
export function resourceOfPath(path: string): string {
  const s = segments(path);
  const group = s[0] === "api" ? "" : (s[1] ?? "");
  let rest = s[0] === "api" ? s.slice(2) : s.slice(3);
  if (rest[0] === "namespaces" && rest.length >= 3) rest = rest.slice(2);
  const plural = rest[0] ?? "unknown";
  return group === "" ? plural : `${plural}.${group}`;
}
