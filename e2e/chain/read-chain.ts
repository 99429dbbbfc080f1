/**
 * Prints one subnet as @polkadot/api reads it (the path the operator's bridge uses), as JSON,
 * so the SDK conformance suite can compare the Python SDK's view with it:
 *   node --import tsx e2e/chain/read-chain.ts ws://127.0.0.1:9944 3
 * Works against any subtensor endpoint; uses only public RPC.
 */
import { ApiPromise, WsProvider } from "@polkadot/api";
import { u8aToString } from "@polkadot/util";

const [url, netuidArg] = process.argv.slice(2);
if (!url || !netuidArg) {
  process.stderr.write("usage: read-chain.ts <ws-url> <netuid>\n");
  process.exit(2);
}
const netuid = Number(netuidArg);
const api = await ApiPromise.create({
  provider: new WsProvider(url),
  noInitWarn: true,
  throwOnConnect: true,
});
try {
  const head = await api.rpc.chain.getFinalizedHead();
  const at = await api.at(head);
  const n = Number((await at.query.subtensorModule!.subnetworkN!(netuid)).toString());
  const neurons = [];
  for (let uid = 0; uid < n; uid++) {
    const hotkey = (await at.query.subtensorModule!.keys!(netuid, uid)).toString();
    const axon = (await at.query.subtensorModule!.axons!(netuid, hotkey)).toJSON() as Record<
      string,
      unknown
    > | null;
    const weights = (await at.query.subtensorModule!.weights!(netuid, uid)).toJSON() as [number, number][];
    const c = (await at.query.commitments!.commitmentOf!(netuid, hotkey)).toJSON() as {
      info?: { fields?: Record<string, string>[] };
    } | null;
    // A Raw<n> field holds the committed bytes; the SDK returns them as text.
    const raw = c?.info?.fields?.[0] ? Object.values(c.info.fields[0])[0] : undefined;
    neurons.push({
      uid,
      hotkey,
      axon: axon ? { ip: String(axon.ip), port: axon.port, version: axon.version } : null,
      weights,
      commitment: typeof raw === "string" ? u8aToString(Buffer.from(raw.slice(2), "hex")) : null,
    });
  }
  process.stdout.write(
    JSON.stringify({ block: Number((await at.query.system!.number!()).toString()), neurons }) + "\n",
  );
} finally {
  await api.disconnect();
}
