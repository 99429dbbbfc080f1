// /metrics (Prometheus text), /healthz (the process answers) and /readyz (connected to both
// the bus and the chain, so a load balancer or a probe sees a service that cannot admit).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../protocol/log.ts";

export interface HealthServer {
  /** http://host:port actually bound (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** `host:port`, `:port` (all interfaces), `[::1]:port`. */
export function parseAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error(`invalid address "${addr}": expected host:port, e.g. 0.0.0.0:8080`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export async function serveHealth(
  address: string,
  registry: Registry,
  ready: () => string | undefined,
  log: Logger,
): Promise<HealthServer> {
  const { host, port } = parseAddress(address);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    void (async () => {
      try {
        if (req.method !== "GET" && req.method !== "HEAD") res.writeHead(405, { Allow: "GET, HEAD" }).end();
        else if (path === "/healthz" || path === "/livez")
          res.writeHead(200, { "Content-Type": "text/plain" }).end("ok\n");
        else if (path === "/readyz") {
          const why = ready();
          res
            .writeHead(why ? 503 : 200, { "Content-Type": "text/plain" })
            .end(why ? `not ready: ${why}\n` : "ok\n");
        } else if (path === "/metrics") {
          const body = await registry.metrics();
          res.writeHead(200, { "Content-Type": registry.contentType }).end(body);
        } else res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      } catch (e) {
        log.error("http handler failed", { err: e, path });
        if (!res.headersSent) res.writeHead(500).end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const shownHost = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return {
    url: `http://${shownHost}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
