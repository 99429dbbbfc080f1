/**
 * Runs the local subtensor chain standalone (for the demo and for pointing a bridge at it):
 *   node --import tsx e2e/chain/main.ts --netuid 3 --neurons 64 --validators 4 --port 9944
 * Prints the WebSocket URL on stdout and serves until SIGINT/SIGTERM. `--commit-reveal-netuid`
 * adds a second subnet with the same neurons and commit-reveal of weights on.
 */
import { parseArgs } from "node:util";
import { startLocalChain } from "./local.ts";

const { values } = parseArgs({
  options: {
    netuid: { type: "string", default: "3" },
    neurons: { type: "string", default: "0" },
    validators: { type: "string", default: "0" },
    "block-time-ms": { type: "string", default: "250" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "9944" },
    fund: { type: "string", multiple: true, default: [] },
    "commit-reveal-netuid": { type: "string" },
    "commit-reveal-tempo": { type: "string", default: "360" },
    help: { type: "boolean", default: false },
  },
});

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

if (values.help) {
  process.stdout.write(
    "usage: main.ts [--netuid N] [--neurons N] [--validators N] [--block-time-ms MS] [--host H] [--port P] [--fund SS58]...\n" +
      "               [--commit-reveal-netuid N [--commit-reveal-tempo T]]\n",
  );
  process.exit(0);
}

const lc = await startLocalChain({
  netuid: int("netuid", values.netuid, 0, 65535),
  neurons: int("neurons", values.neurons, 0, 4096),
  validators: int("validators", values.validators, 0, 4096),
  blockTimeMs: int("block-time-ms", values["block-time-ms"], 10, 600_000),
  host: values.host,
  port: int("port", values.port, 0, 65535),
  funded: values.fund,
  extraSubnets:
    values["commit-reveal-netuid"] === undefined
      ? []
      : [
          {
            netuid: int("commit-reveal-netuid", values["commit-reveal-netuid"], 0, 65535),
            subnet: {
              commitRevealWeightsEnabled: true,
              tempo: int("commit-reveal-tempo", values["commit-reveal-tempo"], 1, 65535),
            },
          },
        ],
});
process.stdout.write(`${lc.url}\n`);
const shutdown = () => {
  void lc.stop().then(() => process.exit(0));
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
