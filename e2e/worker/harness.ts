// A whole run on one machine: a real nats-server configured by the operator's
// generated accounts, the run provisioned by the operator user, a synthetic token
// corpus on disk, a resolved run configuration, and covenant-worker processes.
// With `hub`, the run's hub instead: a 3-server TLS cluster with every stream and bucket
// R3, peers admitted by the admission service by their registration on a local chain
// (no NATS credentials for peers), and the corpus uploaded with the upload command into
// a nats:// bucket, from which every worker fetches its shards.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { get } from "node:http";
import { applyDefaults } from "../../api/defaults.ts";
import { resolveRunConfig } from "../../api/runconfig.ts";
import type { ResolvedRunConfig } from "../../api/runconfig.ts";
import type { TrainingRun } from "../../api/trainingrun.ts";
import { trainingRunSpecSchema } from "../../api/trainingrun.ts";
import { freePort } from "../stack/ports.ts";
import { stateKeys } from "../../protocol/names.ts";
import { nodeTs, repoRoot, tempDir } from "../stack/paths.ts";
import { ManagedProcess } from "../stack/process.ts";
import { shardPath, syntheticTokens, writeShard } from "../../worker/shards.ts";
import { identities, startBus } from "../bus/fixture.ts";
import type { BusFixture, HubFixture, Identity } from "../bus/fixture.ts";
import type { PeerRole } from "../../protocol/bus/auth.ts";
import { startLocalChain } from "../chain/local.ts";
import type { LocalChain } from "../chain/local.ts";
import { writeCorpus } from "../data/corpus.ts";
import type { NatsCluster, NatsEndpoint, NatsServer } from "../stack/nats.ts";

export interface RunOptions {
  run: string;
  miners: string[];
  validator: string;
  /** Extra members that are not started as workers (adversaries driven by the test). */
  extraMembers?: string[];
  rounds: number;
  innerSteps: number;
  shards: number;
  tokensPerShard: number;
  sequenceLength: number;
  roundDeadlineSeconds: number;
  checkpointEvery: number;
  spec?: Record<string, unknown>;
}

/** The run's hub instead of one server with static accounts. */
export interface HubOptions {
  /** NATS servers (default 3; streams and buckets get as many replicas). */
  servers?: number;
  /** Bucket of the corpus (default "covdata"); the run's name is the prefix. */
  bucket?: string;
  /**
   * Peers that can be started as miners but are not registered on the chain (nor members):
   * the admission service refuses their login.
   */
  strangers?: string[];
}

/** The token shards are text uploaded with the command, about tokensPerShard byte tokens each. */
const DOCUMENTS_PER_SHARD = 2;

export interface Worker {
  who: Identity;
  proc: ManagedProcess;
  metricsPort: number;
}

export interface LocalRun<N extends NatsEndpoint = NatsServer> {
  bus: BusFixture<N>;
  cfg: ResolvedRunConfig;
  dir: string;
  identity(name: string): Identity;
  start(name: string): Promise<Worker>;
  metrics(port: number): Promise<string>;
  stop(): Promise<void>;
}

export interface HubRun extends LocalRun<NatsCluster> {
  bus: HubFixture;
  /** The chain on which every peer is registered (the validator with a permit). */
  chain: LocalChain;
  /** spec.data.source: nats://BUCKET/RUN */
  source: string;
  /** The upload command's output. */
  uploadLog: string;
}

export function runConfig(o: RunOptions, natsUrl: string, dataDir: string): ResolvedRunConfig {
  const spec = applyDefaults(trainingRunSpecSchema.json, {
    model: { preset: "llama3-tiny" },
    data: { source: `file://${dataDir}`, shards: o.shards, sequenceLength: o.sequenceLength },
    rounds: o.rounds,
    innerSteps: o.innerSteps,
    innerOptimizer: { learningRate: 0.01, batchSize: 4, schedule: { kind: "constant" } },
    outer: { learningRate: 1, warmupRounds: 0 },
    compression: { chunk: 64, topK: 64, wireFormat: 1 },
    aggregation: { gatherPeers: 20, reserves: 10, minPeers: 1 },
    roundDeadlineSeconds: o.roundDeadlineSeconds,
    chain: { endpoint: "ws://127.0.0.1:9944", netuid: 3 },
    transport: { natsUrl },
    worker: { image: `covenant/worker@sha256:${"0".repeat(64)}` },
    checkpoints: { everyRounds: o.checkpointEvery, keep: 3 },
    validator: { sequences: 4 },
    ...o.spec,
  });
  const run = {
    apiVersion: "covenant.io/v1alpha1",
    kind: "TrainingRun",
    metadata: { name: o.run, namespace: "default", uid: "local", generation: 1 },
    spec,
  } as unknown as TrainingRun;
  const r = resolveRunConfig(run);
  if (!r.ok) throw new Error(`run configuration: ${r.problems.join("; ")}`);
  return r.config;
}

export function startLocalRun(o: RunOptions & { hub: HubOptions }): Promise<HubRun>;
export function startLocalRun(o: RunOptions): Promise<LocalRun>;
export async function startLocalRun(
  o: RunOptions & { hub?: HubOptions },
): Promise<LocalRun<NatsServer> | HubRun> {
  const tmp = tempDir("worker-run");
  try {
    return o.hub ? await hubRun(o, o.hub, tmp) : await localRun(o, tmp);
  } catch (err) {
    tmp.remove();
    throw err;
  }
}

type Tmp = ReturnType<typeof tempDir>;

/** Every peer of the run with its role: the miners, members not run as workers, the validator. */
function peersOf(o: RunOptions): { name: string; role: PeerRole }[] {
  return [
    ...o.miners.map((name) => ({ name, role: "miner" as const })),
    ...(o.extraMembers ?? []).map((name) => ({ name, role: "miner" as const })),
    { name: o.validator, role: "validator" },
  ];
}

/** Stream and bucket sizes for the run's rounds (every round's payloads kept to the end). */
function busSpecOf(o: RunOptions) {
  return {
    roundMs: o.roundDeadlineSeconds * 1000,
    retainRounds: Math.min(4 * (o.rounds + 4), 200),
    maxPayloadBytes: 2 * 1024 * 1024,
  };
}

/** One nats-server with the run's static accounts; shards written to a directory. */
async function localRun(o: RunOptions, tmp: Tmp): Promise<LocalRun> {
  const dataDir = join(tmp.path, "data");
  mkdirSync(dataDir);
  for (let s = 0; s < o.shards; s++) {
    writeShard(shardPath(dataDir, s), 512, syntheticTokens(o.run, o.tokensPerShard, 512, 4, s));
  }
  const peers = peersOf(o);
  const bus = await startBus({ run: o.run, peers, spec: busSpecOf(o) });
  try {
    const cfg = runConfig(o, bus.nats.url, dataDir);
    return await workersOf(o, tmp, bus, peers, cfg, (who, secrets) => {
      writeFileSync(join(secrets, "nats.seed"), who.seed, { mode: 0o600 });
      return ["--nats-creds", join(secrets, "nats.seed")];
    });
  } catch (err) {
    await bus.stop();
    throw err;
  }
}

/**
 * The run's hub: the local chain with every peer registered, the cluster and the admission
 * service, the corpus uploaded over TLS as the operator, workers that log in by hotkey.
 */
async function hubRun(o: RunOptions, hub: HubOptions, tmp: Tmp): Promise<HubRun> {
  const registered = peersOf(o);
  const peers = [...registered, ...(hub.strangers ?? []).map((name) => ({ name, role: "miner" as const }))];
  const netuid = 3;
  const ids = await identities(registered);
  const chain = await startLocalChain({
    netuid,
    registered: ids.map((p) =>
      p.role === "validator"
        ? { hotkey: p.hotkey, stake: 10n ** 12n, validatorPermit: true }
        : { hotkey: p.hotkey },
    ),
    blockTimeMs: 1000,
  });
  let bus: HubFixture | undefined;
  try {
    bus = await startBus({
      run: o.run,
      peers,
      spec: busSpecOf(o),
      cluster: { servers: hub.servers ?? 3 },
      admission: { chainEndpoint: chain.url, netuid },
    });
    const source = `nats://${hub.bucket ?? "covdata"}/${o.run}`;
    const uploadLog = await uploadCorpus(o, tmp.path, bus, source);
    const cfg = runConfig(
      {
        ...o,
        spec: {
          ...o.spec,
          data: { source, shards: o.shards, sequenceLength: o.sequenceLength },
          chain: { endpoint: chain.url, netuid },
        },
      },
      bus.nats.url,
      "",
    );
    const caFile = bus.tls.caFile;
    const run = await workersOf(o, tmp, bus, peers, cfg, (_who, secrets) => [
      "--bus-auth",
      "hotkey",
      "--bus-ca",
      caFile,
      "--data-dir",
      join(secrets, "shards"),
    ]);
    const stopRun = run.stop;
    return {
      ...run,
      bus,
      chain,
      source,
      uploadLog,
      async stop() {
        await stopRun();
        await chain.stop();
      },
    };
  } catch (err) {
    await bus?.stop();
    await chain.stop();
    throw err;
  }
}

/**
 * The organiser's part: text cut into the run's shards by the upload command (its own
 * process, as a person runs it), into an R-replicated bucket over TLS. Answers its output.
 */
async function uploadCorpus(o: RunOptions, dir: string, bus: HubFixture, source: string): Promise<string> {
  const texts = join(dir, "texts");
  // Byte tokens: about one per character, so these documents fill each shard with tokensPerShard.
  writeCorpus(texts, o.shards * DOCUMENTS_PER_SHARD, Math.ceil(o.tokensPerShard / DOCUMENTS_PER_SHARD));
  const [cmd, ...pre] = nodeTs(join(repoRoot, "worker/data/upload.ts"));
  const logFile = join(dir, "upload.log");
  const proc = ManagedProcess.start({
    name: "upload",
    command: cmd!,
    args: [
      ...pre,
      "--source",
      source,
      "--run",
      o.run,
      "--nats-url",
      bus.nats.url,
      "--creds",
      bus.operatorSeedFile,
      "--nats-ca",
      bus.tls.caFile,
      "--replicas",
      String(bus.spec.replicas ?? 1),
      "--text",
      texts,
      "--shards",
      String(o.shards),
      "--min-shard-tokens",
      String(Math.min(1024, o.sequenceLength + 1)),
    ],
    logFile,
  });
  const exit = await proc.exited;
  if (exit.code !== 0) throw new Error(`upload failed (${exit.signal ?? exit.code}):\n${proc.logTail()}`);
  return proc.logTail(o.shards + 10);
}

/**
 * The operator's part (membership and the validator to follow, in the state bucket), and
 * the workers' command lines: the common flags plus the login ones `loginArgs` gives.
 */
async function workersOf<N extends NatsEndpoint>(
  o: RunOptions,
  tmp: Tmp,
  bus: BusFixture<N>,
  peers: { name: string }[],
  cfg: ResolvedRunConfig,
  loginArgs: (who: Identity, secrets: string) => string[],
): Promise<LocalRun<N>> {
  const configFile = join(tmp.path, "run.json");
  writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  // The fixture's identities are in the order of the peers it was given.
  const names = peers.map((p) => p.name);
  const identity = (name: string) => bus.peers[names.indexOf(name)]!;
  const op = await bus.connect("operator");
  try {
    const kv = await op.state();
    const members = [...o.miners, ...(o.extraMembers ?? [])].map((n) => identity(n).hotkey).sort();
    await kv.put(stateKeys.membership, JSON.stringify({ epoch: 1, members }));
    await kv.put(stateKeys.validator, identity(o.validator).hotkey);
  } finally {
    await op.close();
  }

  const workers: Worker[] = [];
  return {
    bus,
    cfg,
    dir: tmp.path,
    identity,
    async start(name) {
      const who = identity(name);
      const secrets = join(tmp.path, name);
      mkdirSync(secrets, { recursive: true });
      writeFileSync(join(secrets, "hotkey"), `//${name}`, { mode: 0o600 });
      const metricsPort = await freePort();
      const [cmd, ...pre] = nodeTs(join(repoRoot, "worker/main.ts"));
      const proc = ManagedProcess.start({
        name: `worker-${name}`,
        command: cmd!,
        args: [
          ...pre,
          "--role",
          who.role,
          "--config",
          configFile,
          "--hotkey-file",
          join(secrets, "hotkey"),
          ...loginArgs(who, secrets),
          "--metrics-port",
          String(metricsPort),
          "--metrics-host",
          "127.0.0.1",
          // These runs have no chain (the chain's own tests cover the worker's calls).
          "--chain",
          "off",
        ],
        logFile: join(tmp.path, `${name}.log`),
        env: { OMP_NUM_THREADS: "1" },
      });
      const w = { who, proc, metricsPort };
      workers.push(w);
      return w;
    },
    metrics: (port) =>
      new Promise((resolve, reject) => {
        get(`http://127.0.0.1:${port}/metrics`, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(body));
        }).on("error", reject);
      }),
    async stop() {
      await Promise.all(workers.map((w) => w.proc.stop(5_000)));
      await bus.stop();
      tmp.remove();
    },
  };
}

/** A counter's value for one label set in Prometheus text, or 0. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;
    if (Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`)))
      return Number(line.split(" ").at(-1));
  }
  return 0;
}
