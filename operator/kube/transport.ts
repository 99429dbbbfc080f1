/**
 * The transport of the API client: the server URL, a keep-alive agent carrying the cluster CA
 * and the user's client certificate, and the auth headers of each request.
 *
 * Credentials rotate under a long-running operator: cert-manager or kubeadm renew client
 * certificates in place, and the kubelet replaces the projected service-account token (and
 * CA bundle) of a pod every hour or so. So when the kubeconfig names FILES (CA, client
 * certificate and key, the in-cluster token file) they are re-read at most every
 * `reloadIntervalMs`, and on the next request after one failed in a way rotation explains
 * (no HTTP response, or 401). New TLS material gets a new agent; the old agent is retired:
 * its idle connections close at once, busy ones (a watch) when their response ends, so
 * requests in flight are not cut off. Inline data (`*-data`) never changes and is used as is.
 *
 * Exec plugins and auth providers other than the token file (OIDC, cloud) keep their own
 * caches and expiry: for those the headers (and an exec plugin's client certificate) are
 * asked of the KubeConfig for every request, as before.
 *
 * A kubeconfig `token-file` is read once by @kubernetes/client-node when the kubeconfig is
 * loaded and cannot be followed here; in-cluster configuration uses the rotating token file.
 */
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";

/** How often credential files are re-checked by default: a rotated file is in use within 5 s. */
export const DEFAULT_RELOAD_INTERVAL_MS = 5000;

export interface TransportOptions {
  /** Re-check credential files at most this often; 0 checks before every request. */
  reloadIntervalMs?: number;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
}

export interface Prepared {
  agent: http.Agent;
  headers: Record<string, string>;
}

export interface Transport {
  readonly server: URL;
  /** The agent and auth headers for the next request, picking up rotated credentials. */
  prepare(): Promise<Prepared>;
  /**
   * A request failed in a way rotated credentials explain (a TLS or connection error, 401):
   * re-read the files before the next request, whatever the interval.
   */
  rejected(): void;
}

/** A credential file, re-read at most every `intervalMs` (or when forced). */
export class ReloadingFile {
  private content: Buffer | undefined;
  private checkedAt = -Infinity;

  constructor(
    readonly path: string,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * The file's content. A read that fails after an earlier one succeeded keeps the last good
   * content (the file may be mid-rotation) and is tried again at the next check.
   */
  async read(force = false): Promise<Buffer> {
    const t = this.now();
    if (this.content && !force && t - this.checkedAt < this.intervalMs) return this.content;
    // Marked before the read: concurrent requests use the current content meanwhile.
    this.checkedAt = t;
    try {
      this.content = await readFile(this.path);
    } catch (e) {
      if (!this.content) throw e;
    }
    return this.content;
  }
}

export interface TlsMaterial {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

const sameBytes = (a: Buffer | undefined, b: Buffer | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.equals(b));

/** True when both carry the same CA, certificate and key bytes. */
export function sameTls(a: TlsMaterial, b: TlsMaterial): boolean {
  return sameBytes(a.ca, b.ca) && sameBytes(a.cert, b.cert) && sameBytes(a.key, b.key);
}

/** An https agent that can be retired: it stops keeping connections alive, closing idle ones. */
export class RetirableAgent extends https.Agent {
  private retired = false;

  retire(): void {
    this.retired = true;
    for (const sockets of Object.values(this.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }

  // Node's Agent destroys a socket freed by a finished response when this answers false
  // (@types/node declares it void, the runtime reads a boolean).
  override keepSocketAlive(socket: Duplex): boolean {
    if (this.retired) return false;
    return super.keepSocketAlive(socket) as unknown as boolean;
  }
}

type Source = Buffer | ReloadingFile | undefined;

async function readSource(s: Source, force: boolean): Promise<Buffer | undefined> {
  return s instanceof ReloadingFile ? s.read(force) : s;
}

const toBuffer = (v: unknown): Buffer | undefined =>
  Buffer.isBuffer(v) ? v : typeof v === "string" ? Buffer.from(v) : undefined;

/** Builds the transport of the current context of `kc`. */
export function transportFromKubeConfig(kc: KubeConfig, options: TransportOptions = {}): Transport {
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new Error("kubeconfig has no current cluster: set current-context or pass --kubeconfig");
  const user = kc.getCurrentUser();
  const server = new URL(cluster.server);
  // As @kubernetes/client-node: credentials in clear text only when asked for explicitly.
  if (server.protocol === "http:" && !cluster.skipTLSVerify) {
    throw new Error("HTTP protocol is not allowed when skipTLSVerify is not set or false");
  }
  const interval = options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
  const now = options.now ?? (() => performance.now());
  const source = (file: string | undefined, data: string | undefined): Source =>
    file ? new ReloadingFile(file, interval, now) : data ? Buffer.from(data, "base64") : undefined;
  const ca = source(cluster.caFile, cluster.caData);
  const cert = source(user?.certFile, user?.certData);
  const key = source(user?.keyFile, user?.keyData);
  const provider = user?.authProvider as { name?: string; config?: { tokenFile?: unknown } } | undefined;
  const tokenPath = provider?.config?.tokenFile;
  const tokenFile =
    typeof tokenPath === "string" && tokenPath !== ""
      ? new ReloadingFile(tokenPath, interval, now)
      : undefined;
  const delegated = tokenFile === undefined && Boolean(user?.exec || user?.authProvider);

  const agentOptions: https.AgentOptions = { keepAlive: true, maxSockets: 64 };
  if (cluster.skipTLSVerify) agentOptions.rejectUnauthorized = false;
  if (cluster.tlsServerName) agentOptions.servername = cluster.tlsServerName;
  const plain = server.protocol === "http:" ? new http.Agent(agentOptions) : undefined;
  let current: { agent: RetirableAgent; tls: TlsMaterial } | undefined;
  let force = false;

  const agentFor = (tls: TlsMaterial): http.Agent => {
    if (plain) return plain;
    if (current && sameTls(current.tls, tls)) return current.agent;
    current?.agent.retire();
    current = { agent: new RetirableAgent({ ...agentOptions, ...tls }), tls };
    return current.agent;
  };

  return {
    server,
    rejected() {
      force = true;
    },
    async prepare() {
      const forced = force;
      force = false;
      const [caBytes, certBytes, keyBytes] = await Promise.all([
        readSource(ca, forced),
        readSource(cert, forced),
        readSource(key, forced),
      ]);
      const tls: TlsMaterial = { ca: caBytes, cert: certBytes, key: keyBytes };
      const headers: Record<string, string> = {};
      if (delegated) {
        const opts: https.RequestOptions = {};
        await kc.applyToHTTPSOptions(opts);
        for (const [k, v] of Object.entries(opts.headers ?? {})) {
          if (typeof v === "string" || typeof v === "number") headers[k] = String(v);
        }
        if (opts.auth) headers.Authorization = "Basic " + Buffer.from(opts.auth).toString("base64");
        // An exec plugin may hand out a client certificate, which rotates like a file.
        tls.cert = toBuffer(opts.cert) ?? tls.cert;
        tls.key = toBuffer(opts.key) ?? tls.key;
      } else {
        if (tokenFile) {
          const token = (await tokenFile.read(forced)).toString("utf8").trim();
          if (token) headers.Authorization = `Bearer ${token}`;
        } else if (user?.token) {
          headers.Authorization = `Bearer ${user.token}`;
        } else if (user?.username) {
          headers.Authorization =
            "Basic " + Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64");
        }
        if (user?.impersonateUser) headers["Impersonate-User"] = user.impersonateUser;
      }
      return { agent: agentFor(tls), headers };
    },
  };
}
