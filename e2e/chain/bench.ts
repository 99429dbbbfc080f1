/**
 * Timings of the local chain with an unmodified ApiPromise:
 *   node --import tsx e2e/chain/bench.ts [neurons=64,256]
 * Connect (metadata download and decode), a metagraph read by runtime call and by storage,
 * submit-to-inBlock latency of set_weights, and how fast blocks are made on request.
 */
import { ApiPromise, WsProvider } from "@polkadot/api";
import { readMetagraph, readMetagraphByStorage } from "../../operator/chain/metagraph.ts";
import { WorkerChain } from "../../worker/chain/client.ts";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";

const sizes = (process.argv[2] ?? "64,256").split(",").map(Number);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [
  "| neurons | connect ms | metagraph by call ms | metagraph by storage ms | set_weights to inBlock ms | blocks/s on request |",
  "| --- | --- | --- | --- | --- | --- |",
];
for (const n of sizes) {
  const lc = await startLocalChain({
    netuid: 3,
    neurons: n,
    validators: 1,
    blockTimeMs: 100,
    subnet: { weightsSetRateLimit: 0n },
  });
  let t = process.hrtime.bigint();
  const api = await ApiPromise.create({ provider: new WsProvider(lc.url), noInitWarn: true });
  const connect = ms(t);
  const call: number[] = [];
  const storage: number[] = [];
  for (let i = 0; i < 5; i++) {
    const head = await api.rpc.chain.getHeader();
    t = process.hrtime.bigint();
    await readMetagraph(api, 3, head.hash.toHex(), head.number.toNumber());
    call.push(ms(t));
    t = process.hrtime.bigint();
    await readMetagraphByStorage(api, 3, head.hash.toHex(), head.number.toNumber());
    storage.push(ms(t));
  }
  const w = await WorkerChain.connect({
    endpoint: lc.url,
    netuid: 3,
    hotkey: seededKeys(devKeyring(), 0).hot,
  });
  const inclusion: number[] = [];
  for (let i = 0; i < 5; i++) {
    t = process.hrtime.bigint();
    await w.setWeights([1, 2], [1, 2]);
    inclusion.push(ms(t));
  }
  await w.disconnect();
  await api.disconnect();
  lc.chain.stop();
  const raw = await RawRpc.connect(lc.url);
  t = process.hrtime.bigint();
  await raw.result("covenantTest_advanceBlocks", [200]);
  const bps = 200 / (ms(t) / 1000);
  raw.close();
  await lc.stop();
  rows.push(
    `| ${n} | ${connect.toFixed(0)} | ${median(call).toFixed(1)} | ${median(storage).toFixed(1)} | ${median(inclusion).toFixed(0)} | ${bps.toFixed(0)} |`,
  );
}
process.stdout.write(rows.join("\n") + "\n");
