// A run's admission path on one machine: the local chain with hotkeys registered on the run's
// subnet, a nats-server configured for auth callout, and the admission service as its own
// process (admission/main.ts). Used by the admission benchmark; the tests set up the same
// pieces step by step to reach into each one.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createUser } from "@nats-io/nkeys";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { calloutServerConfig } from "../../admission/server-config.ts";
import { startLocalChain, type LocalChain } from "../chain/local.ts";
import { startAdmissionService } from "./process.ts";
import { startNats, type NatsServer } from "../stack/nats.ts";
import { tempDir } from "../stack/paths.ts";

export interface AdmissionHubOptions {
  run: string;
  netuid: number;
  /** Hotkeys registered on the subnet (uids in order). */
  registered: number;
  /** Lifetime of an issued user JWT (s). */
  ttlSeconds?: number;
}

export interface AdmissionHub {
  nats: NatsServer;
  chain: LocalChain;
  /** The registered hotkeys, uid order. */
  hotkeys: KeyringPair[];
  /** A static user that the callout passes by (auth_users), as the organiser's operator is. */
  operatorSeed: Uint8Array;
  /** http://host:port of the service's /metrics and /readyz. */
  serviceUrl: string;
  stop(): Promise<void>;
}

export async function startAdmissionHub(o: AdmissionHubOptions): Promise<AdmissionHub> {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
  const hotkeys = Array.from({ length: o.registered }, (_, i) => keyring.addFromUri(`//hub/${o.run}/${i}`));
  const tmp = tempDir("admission-hub");
  const stops: (() => Promise<unknown>)[] = [async () => tmp.remove()];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    const chain = await startLocalChain({
      netuid: o.netuid,
      neurons: 0,
      registered: hotkeys.map((k) => ({ hotkey: k.address })),
      blockTimeMs: 250,
    });
    stops.push(() => chain.stop());

    const issuer = createAccount();
    const callout = createUser();
    const operator = createUser();
    const issuerFile = join(tmp.path, "issuer.nk");
    const calloutFile = join(tmp.path, "callout.nk");
    writeFileSync(issuerFile, issuer.getSeed(), { mode: 0o600 });
    writeFileSync(calloutFile, callout.getSeed(), { mode: 0o600 });
    const nats = await startNats({
      extraConfig: calloutServerConfig({
        run: o.run,
        issuer: issuer.getPublicKey(),
        calloutNkey: callout.getPublicKey(),
        operatorNkey: operator.getPublicKey(),
        maxFileBytes: 1024 ** 3,
        maxMemoryBytes: 64 * 1024 ** 2,
      }),
    });
    stops.push(() => nats.stop());

    const service = await startAdmissionService({
      run: o.run,
      natsUrl: nats.url,
      calloutFile,
      issuerFile,
      chainEndpoint: chain.url,
      netuid: o.netuid,
      ttl: `${o.ttlSeconds ?? 300}s`,
      dir: tmp.path,
    });
    stops.push(() => service.proc.stop());
    const serviceUrl = service.url;
    return { nats, chain, hotkeys, operatorSeed: operator.getSeed(), serviceUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
