// Admission on the hub as it is meant to run (ARCHITECTURE.md, "Topology"): a 3-server
// cluster with TLS, the admission service connected to one server. Each server sends its
// authorization requests into the AUTH account, which spans the cluster, so a peer
// connecting to any server is admitted by the service wherever it is connected; when the
// service's server goes down, the service moves to another and admission goes on.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createAccount, createUser } from "@nats-io/nkeys";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { calloutServerConfig } from "../../admission/server-config.ts";
import { startAdmissionService } from "./process.ts";
import { hotkeyAuthenticator } from "../../protocol/bus/hotkey-auth.ts";
import { busNames } from "../../protocol/names.ts";
import { startLocalChain, type LocalChain } from "../chain/local.ts";
import { get } from "../stack/http.ts";
import { startNatsCluster, type NatsCluster } from "../stack/nats.ts";
import { tempDir } from "../stack/paths.ts";
import type { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";

const RUN = "adm-cluster";
const NETUID = 3;
const names = busNames(RUN);

describe("admission on a 3-server TLS cluster", { timeout: 150_000 }, () => {
  const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
  let miner: KeyringPair, watcher: KeyringPair, stranger: KeyringPair;
  let chain: LocalChain | undefined;
  let cluster: NatsCluster | undefined;
  let admission: ManagedProcess | undefined;
  const tmp = tempDir("admission-cluster");
  const open: NatsConnection[] = [];

  const peerOn = async (server: number, pair: KeyringPair): Promise<NatsConnection> => {
    const nc = await connect({
      servers: cluster!.servers[server]!.url,
      tls: { caFile: cluster!.caFile! },
      authenticator: hotkeyAuthenticator(pair, { run: RUN, role: "miner" }),
      reconnect: false,
    });
    open.push(nc);
    return nc;
  };

  before(async () => {
    await cryptoWaitReady();
    [miner, watcher, stranger] = ["Miner", "Watcher", "Stranger"].map((n) =>
      keyring.addFromUri(`//admission-cluster/${n}`),
    ) as [KeyringPair, KeyringPair, KeyringPair];
    chain = await startLocalChain({
      netuid: NETUID,
      registered: [{ hotkey: miner.address }, { hotkey: watcher.address }],
      blockTimeMs: 250,
    });
    const issuer = createAccount();
    const callout = createUser();
    const issuerFile = join(tmp.path, "issuer.nk");
    const calloutFile = join(tmp.path, "callout.nk");
    writeFileSync(issuerFile, issuer.getSeed(), { mode: 0o600 });
    writeFileSync(calloutFile, callout.getSeed(), { mode: 0o600 });
    cluster = await startNatsCluster({
      servers: 3,
      extraConfig: calloutServerConfig({
        run: RUN,
        issuer: issuer.getPublicKey(),
        calloutNkey: callout.getPublicKey(),
        operatorNkey: createUser().getPublicKey(),
        maxFileBytes: 1024 ** 3,
        maxMemoryBytes: 64 * 1024 ** 2,
      }),
    });
    const service = await startAdmissionService({
      run: RUN,
      // Server 0 first, so the service is on another server than the peers below.
      natsUrl: cluster.servers.map((s) => s.url).join(","),
      caFile: cluster.caFile,
      calloutFile,
      issuerFile,
      chainEndpoint: chain.url,
      netuid: NETUID,
      dir: tmp.path,
    });
    admission = service.proc;
  });

  after(async () => {
    await Promise.allSettled(open.map((nc) => nc.close()));
    try {
      if (admission) assert.equal((await admission.stop()).code, 0, admission.logTail());
    } finally {
      await cluster?.stop();
      await chain?.stop();
      tmp.remove();
    }
  });

  /** The server the service is connected to, from the servers' /connz. */
  const serviceServer = () =>
    waitFor("the admission service's server", async () => {
      for (const [i, s] of cluster!.servers.entries()) {
        if (!s.running) continue;
        const connz = JSON.parse((await get(`${s.monitorUrl}/connz?auth=true&acc=AUTH`)).body) as {
          connections?: { name?: string }[];
        };
        if (connz.connections?.some((c) => c.name === "covenant-admission")) return i;
      }
      return undefined;
    });

  test("a peer is admitted on every server, wherever the service is connected", async () => {
    const home = await serviceServer();
    const others = [0, 1, 2].filter((i) => i !== home);
    const watch = await peerOn(others[0]!, watcher);
    const sub = watch.subscribe(names.heartbeat(miner.address), { max: 1 });
    await watch.flush();
    const nc = await peerOn(others[1]!, miner);
    nc.publish(names.heartbeat(miner.address), "beat");
    for await (const m of sub) assert.equal(m.string(), "beat");
    await assert.rejects(() => peerOn(others[1]!, stranger), /authorization violation/i);
  });

  test("when the service's server goes down, the service moves and admission goes on", async () => {
    const home = await serviceServer();
    await cluster!.servers[home]!.kill();
    try {
      const other = [0, 1, 2].find((i) => i !== home)!;
      // Until the service has reconnected, logins time out; then they are admitted again.
      await waitFor("admission through another server", () => peerOn(other, miner).then(() => true), {
        timeoutMs: 30_000,
        intervalMs: 500,
      });
      assert.notEqual(await serviceServer(), home);
    } finally {
      await cluster!.servers[home]!.restart();
    }
  });
});
