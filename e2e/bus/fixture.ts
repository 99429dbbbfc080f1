// A real nats-server configured for one run the way the operator configures it:
// the run's account with per-peer users and permissions, and the run's stream and
// buckets provisioned by the operator user. On one server (default), or on a
// JetStream cluster with TLS and every stream and bucket replicated (the run's hub).
// With `admission`, peers are not listed at all: the servers hand every login but the
// operator's to the admission service (auth callout, admission/), started here as its own
// process, which admits a hotkey registered on the given chain (docs/admission.md).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { createAccount, createUser } from "@nats-io/nkeys";
import { calloutServerConfig } from "../../admission/server-config.ts";
import { startAdmissionService } from "../admission/process.ts";
import type { AdmissionService } from "../admission/process.ts";
import { accountsConfig } from "../../protocol/bus/auth.ts";
import type { PeerRole } from "../../protocol/bus/auth.ts";
import { BusClient } from "../../protocol/bus/client.ts";
import type { BusClientOptions } from "../../protocol/bus/client.ts";
import { hotkeyAuthenticator } from "../../protocol/bus/hotkey-auth.ts";
import { applyBus, planBus } from "../../operator/bus/provision.ts";
import type { BusSpec } from "../../operator/bus/provision.ts";
import { startNats, startNatsCluster } from "../stack/nats.ts";
import type { NatsCluster, NatsEndpoint, NatsServer } from "../stack/nats.ts";
import { tempDir } from "../stack/paths.ts";

export interface Identity {
  hotkey: string;
  pair: KeyringPair;
  role: PeerRole;
  /** NATS user nkey seed (unused with admission: peers log in with their hotkey). */
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

/** Admission by chain identity instead of per-peer users (a cluster's mode: the run's hub). */
export interface AdmissionBusOptions {
  /** WebSocket endpoint of the chain the service reads registrations from. */
  chainEndpoint: string;
  netuid: number;
  /** Lifetime of an admission (the service's --ttl, default its own 5m). */
  ttl?: string;
}

/** The admission service of a hub fixture, as its own process. */
export interface AdmissionProcess extends AdmissionService {
  /** The servers' configuration for auth callout (the run's account lists no peer). */
  serverConfig: string;
}

/** A cluster whose peers are admitted by the admission service. */
export interface HubFixture extends BusFixture<NatsCluster> {
  tls: { caFile: string };
  admission: AdmissionProcess;
  /** A file with the operator user's seed, for commands that take one (upload). */
  operatorSeedFile: string;
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

export function startBus(
  opts: BusOptions & { cluster: ClusterBusOptions; admission: AdmissionBusOptions },
): Promise<HubFixture>;
export function startBus(opts: BusOptions & { cluster: ClusterBusOptions }): Promise<BusFixture<NatsCluster>>;
export function startBus(opts: BusOptions): Promise<BusFixture>;
export async function startBus(
  opts: BusOptions & { cluster?: ClusterBusOptions; admission?: AdmissionBusOptions },
): Promise<BusFixture<NatsServer | NatsCluster>> {
  if (opts.admission) {
    if (!opts.cluster) throw new Error("admission is a hub's mode: give cluster options too");
    return startHub({ ...opts, cluster: opts.cluster, admission: opts.admission });
  }
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
  const spec = busSpec(opts, peers, replicas);
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
    await provision(() => connect("operator"), spec);
  } catch (err) {
    await nats.stop();
    throw err;
  }
  return { run: opts.run, nats, operatorSeed, peers, spec, tls, connect, stop: () => nats.stop() };
}

/** The run's stream and buckets with the fixture's defaults, for these peers. */
function busSpec(opts: BusOptions, peers: Identity[], replicas: number): BusSpec {
  return {
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
}

/** Creates the run's stream and buckets as the operator user, as the operator does. */
async function provision(admin: () => Promise<BusClient>, spec: BusSpec): Promise<void> {
  const op = await admin();
  try {
    await applyBus(op.nc, planBus(spec));
  } finally {
    await op.close();
  }
}

/**
 * The run's hub: a TLS cluster configured for auth callout (only the operator and the
 * service's own user are known to the servers), provisioned by the operator, and the
 * admission service connected to every server. Peers connect with their hotkey.
 */
async function startHub(
  opts: BusOptions & { cluster: ClusterBusOptions; admission: AdmissionBusOptions },
): Promise<HubFixture> {
  const peers = await identities(opts.peers);
  const tmp = tempDir("hub");
  const issuer = createAccount();
  const callout = createUser();
  const op = createUser();
  const operatorSeed = new TextDecoder().decode(op.getSeed());
  const file = (name: string, seed: Uint8Array) => {
    const path = join(tmp.path, name);
    writeFileSync(path, seed, { mode: 0o600 });
    return path;
  };
  const issuerFile = file("issuer.nk", issuer.getSeed());
  const calloutFile = file("callout.nk", callout.getSeed());
  const operatorSeedFile = file("operator.nk", op.getSeed());
  const servers = opts.cluster.servers ?? 3;
  const replicas = opts.spec?.replicas ?? Math.min(servers, 5);
  const serverConfig = calloutServerConfig({
    run: opts.run,
    issuer: issuer.getPublicKey(),
    calloutNkey: callout.getPublicKey(),
    operatorNkey: op.getPublicKey(),
    maxFileBytes: 8 * 1024 ** 3 * replicas,
    maxMemoryBytes: 64 * 1024 ** 2,
  });
  let nats: NatsCluster | undefined;
  let admission: AdmissionProcess | undefined;
  const stop = async () => {
    await admission?.proc.stop();
    await nats?.stop();
    tmp.remove();
  };
  try {
    nats = await startNatsCluster({
      servers,
      tls: true,
      extraConfig: serverConfig,
      maxPayload: opts.maxPayload,
    });
    const caFile = nats.caFile!;
    const url = nats.url;
    const spec = busSpec(opts, peers, replicas);
    const connect = (who: Identity | "operator", name?: string, extra: Partial<BusClientOptions> = {}) =>
      BusClient.connect({
        servers: url,
        run: opts.run,
        name: name ?? (who === "operator" ? "operator" : who.hotkey),
        ...(who === "operator"
          ? { nkeySeed: operatorSeed }
          : { authenticator: hotkeyAuthenticator(who.pair, { run: opts.run, role: who.role }) }),
        requestTimeoutMs: 5_000,
        tls: { caFile },
        ...extra,
      });
    await provision(() => connect("operator"), spec);
    admission = {
      ...(await startAdmissionService({
        run: opts.run,
        natsUrl: url,
        caFile,
        calloutFile,
        issuerFile,
        dir: tmp.path,
        ...opts.admission,
      })),
      serverConfig,
    };
    return {
      run: opts.run,
      nats,
      operatorSeed,
      operatorSeedFile,
      peers,
      spec,
      tls: { caFile },
      admission,
      connect,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
