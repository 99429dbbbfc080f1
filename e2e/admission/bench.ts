// Benchmark of admission by chain identity (`make bench-admission`): the time for a client
// to connect when the auth callout checks its hotkey's signature and registration on the
// chain, against a static nkey login on the same server in the same run (the reference: what
// NATS costs without the callout). Prints a Markdown table.
//
//   node --import tsx e2e/admission/bench.ts [--logins=200] [--hotkeys=16]
import { nkeyAuthenticator, type Authenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { hotkeyAuthenticator } from "../../protocol/bus/hotkey-auth.ts";
import { startAdmissionHub } from "./harness.ts";

const arg = (name: string, dflt: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : dflt;
};
const LOGINS = arg("logins", 200);
const HOTKEYS = arg("hotkeys", 16);
const RUN = "adm-bench";

/** Milliseconds from connect() to an established, authorised connection, one at a time. */
async function loginTimes(url: string, auth: (i: number) => Authenticator, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const nc = await connect({ servers: url, authenticator: auth(i), reconnect: false });
    out.push(performance.now() - t0);
    await nc.close();
  }
  return out;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const ms = (x: number) => x.toFixed(1);

async function main(): Promise<void> {
  const hub = await startAdmissionHub({ run: RUN, netuid: 3, registered: HOTKEYS });
  try {
    const url = hub.nats.url;
    // A few untimed logins of each kind warm the server, the service and the chain client.
    await loginTimes(url, () => nkeyAuthenticator(hub.operatorSeed), 5);
    await loginTimes(
      url,
      (i) => hotkeyAuthenticator(hub.hotkeys[i % HOTKEYS]!, { run: RUN, role: "miner" }),
      5,
    );
    const staticTimes = await loginTimes(url, () => nkeyAuthenticator(hub.operatorSeed), LOGINS);
    const calloutTimes = await loginTimes(
      url,
      (i) => hotkeyAuthenticator(hub.hotkeys[i % HOTKEYS]!, { run: RUN, role: "miner" }),
      LOGINS,
    );
    const rows: [string, number[]][] = [
      ["static nkey user (no callout; reference)", staticTimes],
      ["hotkey via auth callout (signature + chain registration)", calloutTimes],
    ];
    const p50s = quantile(staticTimes, 0.5);
    console.log(
      `\n${LOGINS} sequential logins each, ${HOTKEYS} registered hotkeys, one nats-server, the local chain (250 ms blocks).\n`,
    );
    console.log("| login | p50 ms | p99 ms | max ms | p50 / reference |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const [name, t] of rows) {
      const p50 = quantile(t, 0.5);
      console.log(
        `| ${name} | ${ms(p50)} | ${ms(quantile(t, 0.99))} | ${ms(Math.max(...t))} | ${(p50 / p50s).toFixed(1)}x |`,
      );
    }
  } finally {
    await hub.stop();
  }
}

await main();
