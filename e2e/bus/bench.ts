// Object Store put/get throughput on loopback against a raw TCP loopback copy of the
// same bytes in the same run, on one server, one server with TLS, and the run's hub
// shape (3 servers, R3, TLS). Prints a Markdown table (committed in docs/bus.md).
//   node --import tsx e2e/bus/bench.ts [sizes in MiB, default 64 256 1024]
import { createServer, connect as tcpConnect } from "node:net";
import type { AddressInfo } from "node:net";
import { randomFillSync } from "node:crypto";
import type { NatsEndpoint } from "../stack/nats.ts";
import { startBus } from "./fixture.ts";
import type { BusFixture, Identity } from "./fixture.ts";

const MiB = 1024 * 1024;

async function tcpCopy(data: Uint8Array): Promise<number> {
  let received = 0;
  const server = createServer((sock) => {
    sock.on("data", (b: Buffer) => {
      received += b.length;
      if (received >= data.length) sock.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = tcpConnect(port, "127.0.0.1", () => {
      const step = 4 * MiB;
      let o = 0;
      const pump = () => {
        while (o < data.length) {
          const ok = c.write(data.subarray(o, Math.min(o + step, data.length)));
          o += step;
          if (!ok) return void c.once("drain", pump);
        }
      };
      pump();
    });
    c.on("end", resolve);
    c.on("error", reject);
  });
  const s = (performance.now() - t0) / 1000;
  await new Promise((r) => server.close(r));
  if (received !== data.length) throw new Error(`tcp copy moved ${received} of ${data.length} bytes`);
  return s;
}

interface Setup {
  label: string;
  start: () => Promise<BusFixture<NatsEndpoint>>;
}

/** The same client code against each shape of bus: plain TCP, TLS, and the R3 TLS cluster. */
function setups(largest: number): Setup[] {
  const opts = {
    run: "bench",
    peers: [
      { name: "Writer", role: "miner" as const },
      { name: "Reader", role: "miner" as const },
    ],
    spec: { maxPayloadBytes: largest, retainRounds: 2 },
  };
  return [
    { label: "1 server", start: () => startBus(opts) },
    { label: "1 server, TLS", start: () => startBus({ ...opts, cluster: { servers: 1 } }) },
    { label: "3 servers R3, TLS", start: () => startBus({ ...opts, cluster: { servers: 3 } }) },
  ];
}

/** Put then get of each size through the bus client, each beside a raw TCP copy of the same bytes. */
async function benchOne(bus: BusFixture<NatsEndpoint>, label: string, sizes: number[]): Promise<string[]> {
  const [writer, reader] = bus.peers as [Identity, Identity];
  const rows: string[] = [];
  for (const chunk of [128 * 1024, MiB]) {
    const w = await bus.connect(writer, "w", { chunkBytes: chunk, requestTimeoutMs: 30_000 });
    const r = await bus.connect(reader, "r", { requestTimeoutMs: 30_000 });
    try {
      for (const [i, mib] of sizes.entries()) {
        const data = new Uint8Array(mib * MiB);
        for (let o = 0; o < data.length; o += 64 * MiB)
          randomFillSync(data, o, Math.min(64 * MiB, data.length - o));
        const t0 = performance.now();
        await w.putPayload(writer.hotkey, i, data);
        const put = (performance.now() - t0) / 1000;
        const t1 = performance.now();
        const got = await r.getPayload(writer.hotkey, i, { maxBytes: data.length, timeoutMs: 600_000 });
        const get = (performance.now() - t1) / 1000;
        if (!got || got.length !== data.length) throw new Error(`get returned ${got?.length} bytes`);
        const tcp = await tcpCopy(data);
        const mbps = (s: number) => (mib / s).toFixed(0);
        rows.push(
          `| ${label} | ${mib} MiB | ${chunk / 1024} KiB | ${mbps(put)} | ${mbps(get)} | ${mbps(tcp)} | ${((put + get) / tcp).toFixed(1)}x |`,
        );
        process.stderr.write(`${rows.at(-1)}\n`);
      }
    } finally {
      await w.close();
      await r.close();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const sizes = (process.argv.slice(2).length ? process.argv.slice(2) : ["64", "256", "1024"]).map(Number);
  const rows: string[] = [];
  // One bus at a time: the machine's cores go to the servers under test only.
  for (const setup of setups(Math.max(...sizes) * MiB)) {
    const bus = await setup.start();
    try {
      rows.push(...(await benchOne(bus, setup.label, sizes)));
    } finally {
      await bus.stop();
    }
  }
  console.log("| bus | payload | chunk | put MiB/s | get MiB/s | raw TCP MiB/s | (put+get) / TCP time |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
