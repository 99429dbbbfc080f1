// A real nats-server with JetStream (file storage) on loopback, alone (startNats) or as
// a cluster of several (startNatsCluster, further down).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CertificateAuthority } from "./certs.ts";
import { get } from "./http.ts";
import { binary, tempDir } from "./paths.ts";
import { freePort } from "./ports.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

export interface NatsOptions {
  /** Extra server configuration appended to the generated file (accounts, authorization, limits). */
  extraConfig?: string;
  /** Largest message payload in bytes (default 8 MiB). */
  maxPayload?: number;
}

/** What a bus needs of its servers, one or a cluster. */
export interface NatsEndpoint {
  /** Client URL(s), comma-separated for several servers. */
  url: string;
  monitorUrl: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsServer extends NatsEndpoint {
  /** nats://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT of the monitoring endpoint (/varz, /jsz, /healthz). */
  monitorUrl: string;
  storeDir: string;
  configFile: string;
  process(): ManagedProcess;
  /** Stops and starts the server again on the same ports and storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const tmp = tempDir("nats");
  const [port, monitorPort] = [await freePort(), await freePort()];
  const storeDir = join(tmp.path, "jetstream");
  const configFile = join(tmp.path, "nats.conf");
  writeFileSync(
    configFile,
    [
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      `server_name: "covenant-local"`,
      `max_payload: ${opts.maxPayload ?? 8 * 1024 * 1024}`,
      "jetstream {",
      `  store_dir: "${storeDir}"`,
      "  max_memory_store: 256MB",
      "  max_file_store: 16GB",
      "}",
      opts.extraConfig ?? "",
    ].join("\n"),
  );
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  let current: ManagedProcess;
  const launch = async () => {
    current = ManagedProcess.start({
      name: "nats-server",
      command: binary("nats-server"),
      args: ["-c", configFile],
      logFile: join(tmp.path, "nats-server.log"),
    });
    // /healthz (without js-enabled-only) answers 200 only once JetStream has recovered every stream.
    await current.untilReady(
      waitFor(
        "nats-server JetStream health",
        async () => (await get(`${monitorUrl}/healthz`)).status === 200,
        {
          timeoutMs: 60_000,
        },
      ),
    );
  };
  try {
    await launch();
  } catch (err) {
    tmp.remove();
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    storeDir,
    configFile,
    process: () => current,
    async restart() {
      await current.stop();
      await launch();
    },
    async stop() {
      await current.stop();
      tmp.remove();
    },
  };
}

// ---------------------------------------------------------------------------
// A JetStream cluster: several nats-server processes on loopback joined by routes,
// each with its own server_name and store directory, TLS on the client port (and on
// the routes, mutually verified) with certificates from a throwaway CA. This is the
// shape of the run's hub (ARCHITECTURE.md, "Topology"): 3 servers, streams and
// buckets replicated R3, so the loss of any one server loses nothing acknowledged.

export interface NatsClusterOptions extends NatsOptions {
  /** Number of servers (default 3). One server makes a standalone server with the same TLS setup. */
  servers?: number;
  /** TLS on the client port and the routes (default true). */
  tls?: boolean;
  /** cluster.name (default "covenant"). */
  name?: string;
}

/** One server of a cluster, stoppable and restartable on its own. */
export interface NatsClusterServer {
  /** Its server_name, e.g. "covenant-0". */
  name: string;
  /** tls://127.0.0.1:PORT (nats:// without TLS). */
  url: string;
  monitorUrl: string;
  storeDir: string;
  configFile: string;
  readonly running: boolean;
  process(): ManagedProcess;
  /**
   * Starts it again (after kill or stop, or while it runs) on the same ports and storage,
   * until its /healthz says 200. That can come before it has heard it is behind: compare
   * localStreams() with the other servers' to know it has caught up.
   */
  restart(): Promise<void>;
  /** SIGKILL, as a crash: nothing is flushed; it stays down until restart(). */
  kill(): Promise<void>;
  /** SIGTERM (an orderly shutdown); it stays down until restart(). */
  stop(): Promise<void>;
  /** This server's own copy of each stream of an account (from its /jsz), by stream name. */
  localStreams(account: string): Promise<Map<string, LocalStreamState>>;
}

/** A stream's state as one server holds it: behind the others until it has caught up. */
export interface LocalStreamState {
  messages: number;
  bytes: number;
  first_seq: number;
  last_seq: number;
}

export interface NatsCluster extends NatsEndpoint {
  /** Every server's client URL, comma-separated: tls://127.0.0.1:P1,tls://127.0.0.1:P2,... */
  url: string;
  /** The first server's monitoring endpoint (each server has its own: servers[i].monitorUrl). */
  monitorUrl: string;
  servers: NatsClusterServer[];
  tls: boolean;
  /** The CA that signed the servers' certificates (clients verify the servers with it); TLS only. */
  caFile?: string;
  caPem?: string;
  /** Waits until every running server is healthy under one meta leader; returns its server_name. */
  waitHealthy(timeoutMs?: number): Promise<string>;
  /** Restarts the servers one at a time, each until healthy (a rolling restart). */
  restart(): Promise<void>;
  /** Stops every server and removes their directories. */
  stop(): Promise<void>;
}

export interface MemberSetup {
  name: string;
  dir: string;
  port: number;
  monitorPort: number;
  clusterPort: number;
  /** Other members' route ports. */
  routes: number[];
  clusterName?: string;
  tls?: { certFile: string; keyFile: string; caFile: string };
  maxPayload: number;
  extraConfig: string;
}

/** A `tls { }` block; `mutual` also checks the peer's certificate against the CA (routes). */
function tlsBlock(tls: NonNullable<MemberSetup["tls"]>, mutual: boolean): string[] {
  const q = JSON.stringify;
  return [
    "tls {",
    `  cert_file: ${q(tls.certFile)}`,
    `  key_file: ${q(tls.keyFile)}`,
    ...(mutual ? [`  ca_file: ${q(tls.caFile)}`, "  verify: true"] : []),
    // A loaded machine can take more than the default 2 s for a handshake.
    "  timeout: 5",
    "}",
  ];
}

/**
 * The configuration of one member. Client TLS only proves the server to the client
 * (clients authenticate with nkeys or auth callout, not certificates); route TLS is
 * mutual, so only holders of a certificate from the run's CA can join the cluster.
 */
export function clusterMemberConfig(m: MemberSetup): string {
  const q = JSON.stringify;
  const lines = [
    `server_name: ${q(m.name)}`,
    `listen: "127.0.0.1:${m.port}"`,
    `http: "127.0.0.1:${m.monitorPort}"`,
    `max_payload: ${m.maxPayload}`,
  ];
  if (m.tls) lines.push(...tlsBlock(m.tls, false));
  if (m.clusterName) {
    lines.push(
      "cluster {",
      `  name: ${q(m.clusterName)}`,
      `  listen: "127.0.0.1:${m.clusterPort}"`,
      `  routes: [${m.routes.map((p) => q(`nats-route://127.0.0.1:${p}`)).join(", ")}]`,
      ...(m.tls ? tlsBlock(m.tls, true).map((l) => `  ${l}`) : []),
      "}",
    );
  }
  lines.push(
    "jetstream {",
    `  store_dir: ${q(join(m.dir, "jetstream"))}`,
    "  max_memory_store: 256MB",
    "  max_file_store: 16GB",
    "}",
    m.extraConfig,
  );
  return lines.join("\n");
}

class ClusterMember implements NatsClusterServer {
  readonly url: string;
  readonly monitorUrl: string;
  readonly storeDir: string;
  readonly configFile: string;
  #current: ManagedProcess | undefined;

  constructor(readonly setup: MemberSetup) {
    this.url = `${setup.tls ? "tls" : "nats"}://127.0.0.1:${setup.port}`;
    this.monitorUrl = `http://127.0.0.1:${setup.monitorPort}`;
    this.storeDir = join(setup.dir, "jetstream");
    this.configFile = join(setup.dir, "nats.conf");
    writeFileSync(this.configFile, clusterMemberConfig(setup));
  }

  get name(): string {
    return this.setup.name;
  }

  get running(): boolean {
    return this.#current?.running ?? false;
  }

  process(): ManagedProcess {
    if (!this.#current) throw new Error(`${this.name} was never started`);
    return this.#current;
  }

  /** Starts the process without waiting: a member alone never becomes healthy (no meta quorum). */
  spawn(): void {
    this.#current = ManagedProcess.start({
      name: `nats-server ${this.name}`,
      command: binary("nats-server"),
      args: ["-c", this.configFile],
      logFile: join(this.setup.dir, "nats-server.log"),
    });
  }

  /**
   * /healthz answers 200 once this server knows the meta leader, is current with it,
   * and sees no copy it holds as behind (a copy that has not yet heard from its leader
   * after a restart does not know it is behind).
   */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await this.process().untilReady(
      waitFor(
        `${this.name} JetStream health`,
        async () => (await get(`${this.monitorUrl}/healthz`)).status === 200,
        { timeoutMs },
      ),
    );
  }

  async restart(): Promise<void> {
    await this.#current?.stop();
    this.spawn();
    await this.waitHealthy();
  }

  async kill(): Promise<void> {
    await this.#current?.kill();
  }

  async stop(): Promise<void> {
    await this.#current?.stop();
  }

  async localStreams(account: string): Promise<Map<string, LocalStreamState>> {
    const url = `${this.monitorUrl}/jsz?accounts=true&streams=true&acc=${encodeURIComponent(account)}`;
    const res = await get(url);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.body}`);
    const jsz = JSON.parse(res.body) as {
      account_details?: { name: string; stream_detail?: { name: string; state: LocalStreamState }[] }[];
    };
    const detail = jsz.account_details?.find((a) => a.name === account);
    return new Map((detail?.stream_detail ?? []).map((d) => [d.name, d.state]));
  }
}

interface MetaView {
  server_name?: string;
  meta_cluster?: {
    leader?: string;
    replicas?: { name: string; current?: boolean; offline?: boolean }[];
  };
}

/**
 * The meta leader's name once every running member names the same one and the leader
 * sees every other running member as current (a stream with R = servers can then be
 * placed at once); undefined until then.
 */
async function agreedMetaLeader(members: ClusterMember[]): Promise<string | undefined> {
  const up = members.filter((m) => m.running);
  const views = await Promise.all(
    up.map(async (m) => JSON.parse((await get(`${m.monitorUrl}/jsz`)).body) as MetaView),
  );
  if (members.length === 1) return up[0]?.name;
  const leader = views[0]?.meta_cluster?.leader;
  if (!leader || views.some((v) => v.meta_cluster?.leader !== leader)) return undefined;
  const seen = views[up.findIndex((m) => m.name === leader)]?.meta_cluster?.replicas;
  if (!seen) return undefined;
  const others = up.filter((m) => m.name !== leader);
  return others.every((m) => seen.some((p) => p.name === m.name && p.current && !p.offline))
    ? leader
    : undefined;
}

/** Ports and certificates of each member, and their configuration files. */
async function planMembers(dir: string, opts: NatsClusterOptions, ca?: CertificateAuthority) {
  const n = opts.servers ?? 3;
  if (!Number.isInteger(n) || n < 1) throw new Error(`servers ${n} must be a positive integer`);
  const ports: { port: number; monitorPort: number; clusterPort: number }[] = [];
  for (let i = 0; i < n; i++)
    ports.push({ port: await freePort(), monitorPort: await freePort(), clusterPort: await freePort() });
  return ports.map((p, i) => {
    const name = `covenant-${i}`;
    const memberDir = join(dir, name);
    mkdirSync(memberDir);
    const cert = ca?.peer(name, ["127.0.0.1"], ["localhost"]);
    return new ClusterMember({
      name,
      dir: memberDir,
      ...p,
      routes: ports.filter((_, j) => j !== i).map((o) => o.clusterPort),
      clusterName: n > 1 ? (opts.name ?? "covenant") : undefined,
      tls: cert && ca ? { ...cert, caFile: ca.certFile } : undefined,
      maxPayload: opts.maxPayload ?? 8 * 1024 * 1024,
      extraConfig: opts.extraConfig ?? "",
    });
  });
}

export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  const tmp = tempDir("nats-cluster");
  const tls = opts.tls ?? true;
  let members: ClusterMember[] = [];
  const stopAll = async () => {
    await Promise.all(members.map((m) => m.stop()));
    tmp.remove();
  };
  const waitHealthy = async (timeoutMs = 60_000) => {
    await Promise.all(members.filter((m) => m.running).map((m) => m.waitHealthy(timeoutMs)));
    return waitFor("one JetStream meta leader seen by every server", () => agreedMetaLeader(members), {
      timeoutMs,
      intervalMs: 200,
    });
  };
  try {
    const ca = tls ? CertificateAuthority.create(tmp.path, "covenant-nats-ca") : undefined;
    members = await planMembers(tmp.path, opts, ca);
    // All at once: the first server cannot become healthy before a quorum has joined it.
    for (const m of members) m.spawn();
    await waitHealthy();
    return {
      url: members.map((m) => m.url).join(","),
      monitorUrl: members[0]!.monitorUrl,
      servers: members,
      tls,
      caFile: ca?.certFile,
      caPem: ca?.certPem,
      waitHealthy,
      async restart() {
        for (const m of members) await m.restart();
        await waitHealthy();
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
