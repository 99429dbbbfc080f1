// Free TCP ports on the loopback interface, for servers the tests start with a fixed port.
//
// A port the kernel hands out for port 0 is an ephemeral port: between our check and the
// server's listen, any outgoing connection on the machine (a NATS client, an HTTP request
// of another test file) may take it as its local port, and the server fails with
// EADDRINUSE. So ports are drawn at random below the kernel's ephemeral range, where no
// outgoing connection ever lands, and checked free by binding them.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const handedOut = new Set<number>();

/** Ports below this are left alone (well-known and registered services people run). */
const LOWEST = 10_000;

/** [first, last] of the ports this process draws from: below the kernel's ephemeral range. */
export function drawRange(localPortRange: string | undefined): [number, number] | undefined {
  const first = Number(localPortRange?.trim().split(/\s+/)[0]);
  if (!Number.isInteger(first) || first - 1 - LOWEST < 1_000) return undefined;
  return [LOWEST, first - 1];
}

function ephemeralRange(): string | undefined {
  try {
    return readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
  } catch {
    return undefined;
  }
}

const range = drawRange(ephemeralRange());

/** Binds `port` (0: any) on loopback and releases it; the port bound, or 0 when taken. */
function probe(port: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(0));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A loopback port nobody listens on now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const wanted = range ? range[0] + Math.floor(Math.random() * (range[1] - range[0] + 1)) : 0;
    const port = await probe(wanted);
    if (port && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
