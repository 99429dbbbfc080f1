// A real nats-server configured for one run the way the operator configures it:
// the run's account with per-peer users and permissions, and the run's stream and
// buckets provisioned by the operator user. On one server (default), or on a
// JetStream cluster with TLS and every stream and bucket replicated (the run's hub).
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { createUser } from "@nats-io/nkeys";
import { accountsConfig } from "../../operator/bus/auth.ts";
import type { PeerRole } from "../../operator/bus/auth.ts";
import { BusClient } from "../../operator/bus/client.ts";
import type { BusClientOptions } from "../../operator/bus/client.ts";
import { applyBus, planBus } from "../../operator/bus/provision.ts";
import type { BusSpec } from "../../operator/bus/provision.ts";
import { startNats, startNatsCluster } from "../stack/nats.ts";
import type { NatsCluster, NatsEndpoint, NatsServer } from "../stack/nats.ts";

export interface Identity {
  hotkey: string;
  pair: KeyringPair;
  role: PeerRole;
  /** NATS user nkey seed. */
  seed: string;
  nkey: string;
}

/** Servers of a bus (one or a cluster): a single server unless the fixture asked for a cluster. */
export interface BusFixture<N extends NatsEndpoint = NatsServer> {
  run: string;
  nats: N;
  operatorSeed: string;
  peers: Identity[];
  spec: BusSpec;
  /** The CA clients verify the servers with, when they serve TLS. */
  tls?: { caFile: string };
  /** A client of the run as the operator or a peer; `extra` overrides the fixture's options. */
  connect(who: Identity | "operator", name?: string, extra?: Partial<BusClientOptions>): Promise<BusClient>;
  stop(): Promise<void>;
}

export interface BusOptions {
  run: string;
  peers: { name: string; role: PeerRole }[];
  spec?: Partial<BusSpec>;
  maxPayload?: number;
}

export interface ClusterBusOptions {
  /** Servers of the cluster (default 3); streams and buckets get as many replicas unless spec says otherwise. */
  servers?: number;
  /** TLS on client ports and routes (default true). */
  tls?: boolean;
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

export function startBus(opts: BusOptions & { cluster: ClusterBusOptions }): Promise<BusFixture<NatsCluster>>;
export function startBus(opts: BusOptions): Promise<BusFixture>;
export async function startBus(
  opts: BusOptions & { cluster?: ClusterBusOptions },
): Promise<BusFixture<NatsServer | NatsCluster>> {
  const peers = await identities(opts.peers);
  const op = createUser();
  const operatorSeed = new TextDecoder().decode(op.getSeed());
  const servers = opts.cluster ? (opts.cluster.servers ?? 3) : 1;
  const replicas = opts.spec?.replicas ?? Math.min(servers, 5);
  const extraConfig = accountsConfig([
    {
      run: opts.run,
      operatorNkey: op.getPublicKey(),
      peers: peers.map((p) => ({ hotkey: p.hotkey, role: p.role, nkey: p.nkey })),
      // JetStream counts every copy against the account (R3 reserves 3x max_bytes).
      maxFileBytes: 8 * 1024 ** 3 * replicas,
      maxMemoryBytes: 64 * 1024 ** 2,
    },
  ]);
  const nats = opts.cluster
    ? await startNatsCluster({
        servers,
        tls: opts.cluster.tls ?? true,
        extraConfig,
        maxPayload: opts.maxPayload,
      })
    : await startNats({ extraConfig, maxPayload: opts.maxPayload });
  const tls = "caFile" in nats && nats.caFile ? { caFile: nats.caFile } : undefined;
  const spec: BusSpec = {
    run: opts.run,
    roundMs: 60_000,
    retainRounds: 4,
    maxPayloadBytes: 64 * 1024 * 1024,
    retainCheckpoints: 2,
    maxCheckpointBytes: 64 * 1024 * 1024,
    miners: peers.filter((p) => p.role === "miner").map((p) => p.hotkey),
    validators: peers.filter((p) => p.role === "validator").map((p) => p.hotkey),
    replicas,
    ...opts.spec,
  };
  const connect = (who: Identity | "operator", name?: string, extra: Partial<BusClientOptions> = {}) =>
    BusClient.connect({
      servers: nats.url,
      run: opts.run,
      name: name ?? (who === "operator" ? "operator" : who.hotkey),
      nkeySeed: who === "operator" ? operatorSeed : who.seed,
      requestTimeoutMs: 5_000,
      tls,
      ...extra,
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
  return { run: opts.run, nats, operatorSeed, peers, spec, tls, connect, stop: () => nats.stop() };
}
