// A whole run on one machine: a real nats-server configured by the operator's
// generated accounts, the run provisioned by the operator user, a synthetic token
// corpus on disk, a resolved run configuration, and covenant-worker processes.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { get } from "node:http";
import { applyDefaults } from "../../operator/api/defaults.ts";
import { resolveRunConfig } from "../../operator/api/runconfig.ts";
import type { ResolvedRunConfig } from "../../operator/api/runconfig.ts";
import type { TrainingRun } from "../../operator/api/trainingrun.ts";
import { trainingRunSpecSchema } from "../../operator/api/trainingrun.ts";
import { freePort } from "../stack/ports.ts";
import { stateKeys } from "../../operator/protocol/names.ts";
import { nodeTs, repoRoot, tempDir } from "../stack/paths.ts";
import { ManagedProcess } from "../stack/process.ts";
import { shardPath, syntheticTokens, writeShard } from "../../worker/shards.ts";
import { startBus } from "../bus/fixture.ts";
import type { BusFixture, Identity } from "../bus/fixture.ts";
import type { PeerRole } from "../../operator/bus/auth.ts";

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

export interface Worker {
  who: Identity;
  proc: ManagedProcess;
  metricsPort: number;
}

export interface LocalRun {
  bus: BusFixture;
  cfg: ResolvedRunConfig;
  dir: string;
  identity(name: string): Identity;
  start(name: string): Promise<Worker>;
  metrics(port: number): Promise<string>;
  stop(): Promise<void>;
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

export async function startLocalRun(o: RunOptions): Promise<LocalRun> {
  const tmp = tempDir("worker-run");
  const dataDir = join(tmp.path, "data");
  mkdirSync(dataDir);
  for (let s = 0; s < o.shards; s++) {
    writeShard(shardPath(dataDir, s), 512, syntheticTokens(o.run, o.tokensPerShard, 512, 4, s));
  }
  const peers: { name: string; role: PeerRole }[] = [
    ...o.miners.map((name) => ({ name, role: "miner" as const })),
    ...(o.extraMembers ?? []).map((name) => ({ name, role: "miner" as const })),
    { name: o.validator, role: "validator" },
  ];
  const names = peers.map((p) => p.name);
  const bus = await startBus({
    run: o.run,
    peers,
    spec: {
      roundMs: o.roundDeadlineSeconds * 1000,
      retainRounds: Math.min(4 * (o.rounds + 4), 200),
      maxPayloadBytes: 2 * 1024 * 1024,
    },
  });
  const cfg = runConfig(o, bus.nats.url, dataDir);
  const configFile = join(tmp.path, "run.json");
  writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  const identity = (name: string) => bus.peers[names.indexOf(name)]!;
  // The operator's part: membership and the validator to follow.
  const op = await bus.connect("operator");
  const kv = await op.state();
  const members = [...o.miners, ...(o.extraMembers ?? [])].map((n) => identity(n).hotkey).sort();
  await kv.put(stateKeys.membership, JSON.stringify({ epoch: 1, members }));
  await kv.put(stateKeys.validator, identity(o.validator).hotkey);
  await op.close();

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
      writeFileSync(join(secrets, "nats.seed"), who.seed, { mode: 0o600 });
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
          "--nats-creds",
          join(secrets, "nats.seed"),
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
