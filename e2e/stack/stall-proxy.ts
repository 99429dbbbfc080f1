// A TCP proxy on loopback whose traffic can be frozen, for tests against a server that stops
// answering without closing its connections (a hung load balancer, a partitioned network):
// clients see neither FIN nor RST, only silence, which is what request timeouts and
// deadlines must cope with. It forwards bytes unchanged, so TLS passes end to end.
import { createConnection, createServer, type Socket } from "node:net";

export interface StallProxy {
  /** The loopback port it listens on (127.0.0.1). */
  port: number;
  /** Stops forwarding in both directions; connections, old and new, stay open. */
  stall(): void;
  /** Forwards again, including what was held back. */
  resume(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  const sockets = new Set<Socket>();
  let stalled = false;

  const track = (s: Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    // Paused sockets stop reading, so nothing is forwarded and the sender's TCP window fills.
    if (stalled) s.pause();
  };

  const server = createServer((client) => {
    const upstream = createConnection(target);
    track(client);
    track(upstream);
    forward(client, upstream, () => stalled);
    forward(upstream, client, () => stalled);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("stall proxy: no listening address");

  return {
    port: address.port,
    stall() {
      stalled = true;
      for (const s of sockets) s.pause();
    },
    resume() {
      stalled = false;
      for (const s of sockets) s.resume();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** Copies `from` to `to` with backpressure; an error or close on either side ends both. */
function forward(from: Socket, to: Socket, isStalled: () => boolean): void {
  from.on("data", (chunk: Buffer) => {
    if (to.write(chunk)) return;
    from.pause();
    // Not while stalled: resume() restarts every socket then.
    to.once("drain", () => {
      if (!isStalled()) from.resume();
    });
  });
  from.on("end", () => to.end());
  from.on("error", () => to.destroy());
  from.on("close", () => to.destroy());
}
