// Regions joined into a NATS supercluster for tests: each region a JetStream cluster of one
// or more servers (routes inside it), the regions joined by gateways. JetStream is one domain
// across the supercluster, so a stream is placed in a region by `placement: { cluster }` and a
// region's copy of another's bucket is a mirror stream placed there (docs/bus-regions.md).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { get } from "../stack/http.ts";
import { binary, tempDir } from "../stack/paths.ts";
import { freePort } from "../stack/ports.ts";
import { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";

export interface RegionServer {
  name: string;
  region: string;
  url: string;
  monitorUrl: string;
  process: ManagedProcess;
}

export interface Supercluster {
  /** Client URLs of each region's servers, comma-separated, by region name. */
  urls: Record<string, string>;
  servers: RegionServer[];
  stop(): Promise<void>;
}

interface Ports {
  client: number;
  monitor: number;
  route: number;
  gateway: number;
}

/** Starts `regions` (name -> servers) joined by gateways; resolves once JetStream is healthy everywhere. */
export async function startSupercluster(regions: Record<string, number>): Promise<Supercluster> {
  const tmp = tempDir("regions");
  const plan: { name: string; region: string; ports: Ports }[] = [];
  for (const [region, n] of Object.entries(regions))
    for (let i = 0; i < n; i++)
      plan.push({
        name: `${region}-${i}`,
        region,
        ports: {
          client: await freePort(),
          monitor: await freePort(),
          route: await freePort(),
          gateway: await freePort(),
        },
      });
  const q = JSON.stringify;
  const servers: RegionServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.process.stop()));
    tmp.remove();
  };
  try {
    for (const s of plan) {
      const dir = join(tmp.path, s.name);
      mkdirSync(dir);
      // Routes list every server of the region, itself included (a server skips its own URL):
      // JetStream in a supercluster refuses to start without configured routes, even alone.
      const mates = plan.filter((o) => o.region === s.region);
      // Every server lists one gateway URL of each other region; gateways gossip the rest.
      const others = Object.keys(regions).filter((r) => r !== s.region);
      const conf = [
        `server_name: ${q(s.name)}`,
        `listen: "127.0.0.1:${s.ports.client}"`,
        `http: "127.0.0.1:${s.ports.monitor}"`,
        "cluster {",
        `  name: ${q(s.region)}`,
        `  listen: "127.0.0.1:${s.ports.route}"`,
        `  routes: [${mates.map((o) => q(`nats-route://127.0.0.1:${o.ports.route}`)).join(", ")}]`,
        "}",
        "gateway {",
        `  name: ${q(s.region)}`,
        `  listen: "127.0.0.1:${s.ports.gateway}"`,
        "  gateways: [",
        ...others.map((r) => {
          const first = plan.find((o) => o.region === r)!;
          return `    { name: ${q(r)}, urls: [${q(`nats://127.0.0.1:${first.ports.gateway}`)}] }`;
        }),
        "  ]",
        "}",
        "jetstream {",
        `  store_dir: ${q(join(dir, "jetstream"))}`,
        "  max_memory_store: 64MB",
        "  max_file_store: 1GB",
        "}",
      ].join("\n");
      writeFileSync(join(dir, "nats.conf"), conf);
      servers.push({
        name: s.name,
        region: s.region,
        url: `nats://127.0.0.1:${s.ports.client}`,
        monitorUrl: `http://127.0.0.1:${s.ports.monitor}`,
        process: ManagedProcess.start({
          name: `nats-server ${s.name}`,
          command: binary("nats-server"),
          args: ["-c", join(dir, "nats.conf")],
          logFile: join(dir, "nats-server.log"),
        }),
      });
    }
    await Promise.all(
      servers.map((s) =>
        s.process.untilReady(
          waitFor(
            `${s.name} JetStream health`,
            async () => (await get(`${s.monitorUrl}/healthz`)).status === 200,
            {
              timeoutMs: 30_000,
              intervalMs: 200,
            },
          ),
        ),
      ),
    );
    const urls: Record<string, string> = {};
    for (const r of Object.keys(regions))
      urls[r] = servers
        .filter((s) => s.region === r)
        .map((s) => s.url)
        .join(",");
    return { urls, servers, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Bytes this server has sent to (out) and received from (in) other regions' gateways, from /gatewayz. */
export async function gatewayBytes(s: RegionServer): Promise<{ in: number; out: number }> {
  const res = await get(`${s.monitorUrl}/gatewayz`);
  if (res.status !== 200) throw new Error(`GET ${s.monitorUrl}/gatewayz: ${res.status}`);
  type Conn = { connection?: { in_bytes?: number; out_bytes?: number } };
  const g = JSON.parse(res.body) as {
    outbound_gateways?: Record<string, Conn>;
    inbound_gateways?: Record<string, Conn[]>;
  };
  let [inB, outB] = [0, 0];
  const add = (c: Conn) => {
    inB += c.connection?.in_bytes ?? 0;
    outB += c.connection?.out_bytes ?? 0;
  };
  for (const c of Object.values(g.outbound_gateways ?? {})) add(c);
  for (const cs of Object.values(g.inbound_gateways ?? {})) for (const c of cs) add(c);
  return { in: inB, out: outB };
}
