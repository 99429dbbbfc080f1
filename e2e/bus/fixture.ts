// A real nats-server configured for one run the way the operator configures it:
// the run's account with per-peer users and permissions, and the run's stream and
// buckets provisioned by the operator user.
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { createUser } from "@nats-io/nkeys";
import { accountsConfig } from "../../operator/bus/auth.ts";
import type { PeerRole } from "../../operator/bus/auth.ts";
import { BusClient } from "../../operator/bus/client.ts";
import { applyBus, planBus } from "../../operator/bus/provision.ts";
import type { BusSpec } from "../../operator/bus/provision.ts";
import { startNats } from "../stack/nats.ts";
import type { NatsServer } from "../stack/nats.ts";

export interface Identity {
  hotkey: string;
  pair: KeyringPair;
  role: PeerRole;
  /** NATS user nkey seed. */
  seed: string;
  nkey: string;
}

export interface BusFixture {
  run: string;
  nats: NatsServer;
  operatorSeed: string;
  peers: Identity[];
  spec: BusSpec;
  connect(who: Identity | "operator", name?: string): Promise<BusClient>;
  stop(): Promise<void>;
}

export async function identities(names: { name: string; role: PeerRole }[]): Promise<Identity[]> {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
  return names.map(({ name, role }) => {
    const pair = keyring.addFromUri(`//${name}`);
    const user = createUser();
    return {
      hotkey: pair.address,
      pair,
      role,
      seed: new TextDecoder().decode(user.getSeed()),
      nkey: user.getPublicKey(),
    };
  });
}

export async function startBus(opts: {
  run: string;
  peers: { name: string; role: PeerRole }[];
  spec?: Partial<BusSpec>;
  maxPayload?: number;
}): Promise<BusFixture> {
  const peers = await identities(opts.peers);
  const op = createUser();
  const operatorSeed = new TextDecoder().decode(op.getSeed());
  const extraConfig = accountsConfig([
    {
      run: opts.run,
      operatorNkey: op.getPublicKey(),
      peers: peers.map((p) => ({ hotkey: p.hotkey, role: p.role, nkey: p.nkey })),
      maxFileBytes: 8 * 1024 ** 3,
      maxMemoryBytes: 64 * 1024 ** 2,
    },
  ]);
  const nats = await startNats({ extraConfig, maxPayload: opts.maxPayload });
  const spec: BusSpec = {
    run: opts.run,
    roundMs: 60_000,
    retainRounds: 4,
    maxPayloadBytes: 64 * 1024 * 1024,
    retainCheckpoints: 2,
    maxCheckpointBytes: 64 * 1024 * 1024,
    miners: peers.filter((p) => p.role === "miner").map((p) => p.hotkey),
    validators: peers.filter((p) => p.role === "validator").map((p) => p.hotkey),
    ...opts.spec,
  };
  const connect = (who: Identity | "operator", name?: string) =>
    BusClient.connect({
      servers: nats.url,
      run: opts.run,
      name: name ?? (who === "operator" ? "operator" : who.hotkey),
      nkeySeed: who === "operator" ? operatorSeed : who.seed,
      requestTimeoutMs: 5_000,
    });
  try {
    const admin = await connect("operator");
    try {
      await applyBus(admin.nc, planBus(spec));
    } finally {
      await admin.close();
    }
  } catch (err) {
    await nats.stop();
    throw err;
  }
  return { run: opts.run, nats, operatorSeed, peers, spec, connect, stop: () => nats.stop() };
}
