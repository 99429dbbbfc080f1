// The whole system on one machine, as `make demo` and the end-to-end test run it:
// a control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)
// with the CRDs, nats-server with the run's accounts, the local chain, Prometheus,
// the operator, and a node agent playing B200 nodes whose pods are worker processes.
// A TrainingRun and its CovenantPeers are applied like a user would; the operator
// makes the worker pods; the workers train over the bus.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { stringify } from "yaml";
import type { TrainingRun } from "../operator/api/index.ts";
import { shardPath, writeShard } from "../worker/shards.ts";
import { startBus, type BusFixture } from "./bus/fixture.ts";
import { startLocalChain, type LocalChain } from "./chain/local.ts";
import { B200_LABELS, NodeAgent } from "./node-agent/agent.ts";
import { startKube, type KubeStack } from "./stack/kube.ts";
import { binary, nodeTs, repoRoot, tempDir } from "./stack/paths.ts";
import { freePort } from "./stack/ports.ts";
import { ManagedProcess } from "./stack/process.ts";
import { startPrometheus, writeTargets, type PrometheusServer } from "./stack/prometheus.ts";
import { waitFor } from "./stack/wait.ts";

const run = promisify(execFile);

export interface SystemOptions {
  run: string;
  miners: number;
  rounds: number;
  innerSteps: number;
  roundDeadlineSeconds: number;
  /** Members the run needs before rounds run (spec.aggregation.minPeers; default every miner). */
  minPeers?: number;
  /** B200 nodes beyond one per peer, for pods that must move (default 0). */
  spareNodes?: number;
  /** How long a node may be NotReady before its pods move (default 20 s). */
  nodeNotReadyGrace?: string;
  /** Merged into the TrainingRun's spec. */
  spec?: Record<string, unknown>;
  /** Called with each line of progress (worker output, run status). */
  say: (line: string) => void;
}

export interface System {
  kube: KubeStack;
  bus: BusFixture;
  chain: LocalChain;
  prom: PrometheusServer;
  agent: NodeAgent;
  operator: ManagedProcess;
  operatorPort: number;
  dir: string;
  readRun(): Promise<TrainingRun>;
  /** Refreshes Prometheus' targets from the pods running now. */
  refreshTargets(): void;
  stop(): Promise<void>;
}

/** Real text found on the machine, as byte-level tokens (llama3-tiny's vocabulary holds all 256 bytes). */
export function textCorpus(): Uint8Array {
  const files = [
    join(repoRoot, "README.md"),
    ...listText(join(repoRoot, "docs")),
    ...listText("/usr/share/common-licenses"),
  ];
  const parts = files.map((f) => readFileSync(f));
  return new Uint8Array(Buffer.concat(parts));
}

function listText(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(dir, e.name))
      .sort();
  } catch {
    return [];
  }
}

const GROUP = { group: "covenant.io", version: "v1alpha1" };

export async function startSystem(o: SystemOptions): Promise<System> {
  const tmp = tempDir("system");
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    o.say("starting the control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)");
    const kube = await startKube({ scheduler: true, controllerManager: true });
    stops.push(() => kube.stop());
    o.say(`    API server ${kube.server}`);
    const kubectl = (...args: string[]) =>
      run(binary("kubectl"), args, {
        env: { ...process.env, KUBECONFIG: kube.kubeconfigPath },
        timeout: 120_000,
      });
    await kubectl("apply", "--server-side", "-f", join(repoRoot, "crds"));
    await kubectl(
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/trainingruns.covenant.io",
      "crd/covenantpeers.covenant.io",
    );

    const miners = Array.from({ length: o.miners }, (_, i) => `miner-${i + 1}`);
    const peers = [
      ...miners.map((name) => ({ name, role: "miner" as const })),
      { name: "validator", role: "validator" as const },
    ];

    // The miners' hotkeys are funded and register themselves (spec.chain.register); the
    // validator registered and staked before the run, as a real one must to hold a permit.
    o.say("starting the local subtensor chain");
    await cryptoWaitReady();
    const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
    const address = (name: string) => keyring.addFromUri(`//${name}`).address;
    const chain = await startLocalChain({
      netuid: 3,
      neurons: 0,
      funded: miners.map(address),
      registered: [{ hotkey: address("validator"), stake: 1_000_000_000_000n, validatorPermit: true }],
      // Blocks every 250 ms: let the validator set weights every few rounds.
      subnet: { weightsSetRateLimit: 2n },
    });
    stops.push(() => chain.stop());
    o.say(`    chain ${chain.url}`);
    o.say("starting nats-server with JetStream and the run's accounts");
    const bus = await startBus({
      run: o.run,
      peers,
      spec: {
        roundMs: o.roundDeadlineSeconds * 1000,
        retainRounds: Math.min(4 * (o.rounds + 4), 200),
        maxPayloadBytes: 4 * 1024 * 1024,
      },
    });
    stops.push(() => bus.stop());
    o.say(`    NATS ${bus.nats.url}   monitoring ${bus.nats.monitorUrl}`);

    // Token shards from real text on this machine.
    const dataDir = join(tmp.path, "data");
    mkdirSync(dataDir);
    const corpus = textCorpus();
    const shards = 8;
    const per = Math.floor(corpus.length / shards);
    for (let s = 0; s < shards; s++)
      writeShard(shardPath(dataDir, s), 512, corpus.subarray(s * per, (s + 1) * per));
    o.say(`    corpus: ${(corpus.length / 1024).toFixed(0)} KiB of text in ${shards} shards`);

    // Credentials: the hotkey as a Kubernetes Secret per peer; NATS nkey seeds as files.
    // (Membership and the validator to follow are the operator's to publish.)
    const hotkey = (name: string) => bus.peers[peers.findIndex((p) => p.name === name)]!;
    const kc = kube.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const secretsDir = join(tmp.path, "secrets");
    mkdirSync(secretsDir, { mode: 0o700 });
    for (const p of peers) {
      await core.createNamespacedSecret({
        namespace: "default",
        body: { metadata: { name: `${p.name}-hotkey` }, stringData: { hotkey: `//${p.name}` } },
      });
      writeFileSync(join(secretsDir, `${p.name}.nats`), hotkey(p.name).seed, { mode: 0o600 });
    }
    writeFileSync(join(secretsDir, "operator.nats"), bus.operatorSeed, { mode: 0o600 });

    o.say("starting the covenant operator");
    const operatorPort = await freePort();
    const operator = ManagedProcess.start({
      name: "covenant-operator",
      command: nodeTs(join(repoRoot, "operator/main.ts"))[0]!,
      args: [
        ...nodeTs(join(repoRoot, "operator/main.ts")).slice(1),
        `--kubeconfig=${kube.kubeconfigPath}`,
        "--leader-elect=false",
        `--http-address=127.0.0.1:${operatorPort}`,
        `--nats-creds=${join(secretsDir, "operator.nats")}`,
        `--node-not-ready-grace=${o.nodeNotReadyGrace ?? "20s"}`,
      ],
      logFile: join(tmp.path, "operator.log"),
    });
    stops.push(() => operator.stop());
    await operator.untilReady(
      waitFor("operator /readyz", async () => (await fetch(`http://127.0.0.1:${operatorPort}/readyz`)).ok, {
        timeoutMs: 60_000,
      }),
    );

    o.say(
      `starting the node agent: ${peers.length + (o.spareNodes ?? 0)} B200 nodes whose pods run as local processes`,
    );
    const agent = new NodeAgent({
      kubeConfig: kc,
      nodes: Array.from({ length: peers.length + (o.spareNodes ?? 0) }, (_, i) => ({
        name: `b200-${i}`,
        labels: B200_LABELS,
      })),
      commands: { "covenant-worker": nodeTs(join(repoRoot, "worker/main.ts")) },
      extraEnv: { OMP_NUM_THREADS: "1" },
      envFor: (pod): Record<string, string> => {
        const peer = pod.metadata?.labels?.["covenant.io/peer"];
        return peer ? { COVENANT_NATS_CREDS: join(secretsDir, `${peer}.nats`) } : {};
      },
      onOutput: (pod, line) => o.say(`[${pod.replace(/-worker$/, "")}] ${line}`),
    });
    await agent.start();
    stops.push(() => agent.stop());

    const targetsFile = join(tmp.path, "targets.json");
    writeTargets(targetsFile, []);
    const prom = await startPrometheus({
      jobs: [{ job: "covenant-operator", targets: [`127.0.0.1:${operatorPort}`] }],
      fileSd: targetsFile,
      scrapeIntervalSec: 2,
    });
    stops.push(() => prom.stop());
    o.say(`    Prometheus ${prom.url}`);

    o.say(`applying TrainingRun ${o.run} and ${peers.length} CovenantPeers`);
    const manifests = runManifests(o, dataDir, bus.nats.url, chain.url, peers);
    const file = join(tmp.path, "run.yaml");
    writeFileSync(file, manifests.map((m) => stringify(m)).join("---\n"));
    await kubectl("apply", "-f", file);

    const objects = kc.makeApiClient(CustomObjectsApi);
    return {
      kube,
      bus,
      chain,
      prom,
      agent,
      operator,
      operatorPort,
      dir: tmp.path,
      readRun: async () =>
        (await objects.getNamespacedCustomObject({
          ...GROUP,
          namespace: "default",
          plural: "trainingruns",
          name: o.run,
        })) as TrainingRun,
      refreshTargets: () =>
        writeTargets(
          targetsFile,
          peers.flatMap((p) => {
            const port = agent.podPort("default", `${p.name}-worker`);
            return port
              ? [{ targets: [`127.0.0.1:${port}`], labels: { job: "covenant-worker", peer: p.name } }]
              : [];
          }),
        ),
      async stop() {
        await stopAll();
        tmp.remove();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The TrainingRun and CovenantPeers a user would apply, pointed at the local servers. */
export function runManifests(
  o: SystemOptions,
  dataDir: string,
  natsUrl: string,
  chainUrl: string,
  peers: { name: string; role: "miner" | "validator" }[],
): Record<string, unknown>[] {
  const trainingRun = {
    apiVersion: "covenant.io/v1alpha1",
    kind: "TrainingRun",
    metadata: { name: o.run, namespace: "default" },
    spec: {
      model: { preset: "llama3-tiny" },
      data: { source: `file://${dataDir}`, shards: 8, sequenceLength: 32 },
      rounds: o.rounds,
      innerSteps: o.innerSteps,
      innerOptimizer: { learningRate: 0.01, batchSize: 4, schedule: { kind: "constant" } },
      outer: { learningRate: 1, warmupRounds: 0 },
      compression: { chunk: 64, topK: 64, wireFormat: 1 },
      aggregation: { gatherPeers: 20, reserves: 10, minPeers: o.minPeers ?? o.miners },
      roundDeadlineSeconds: o.roundDeadlineSeconds,
      chain: { endpoint: chainUrl, netuid: 3, register: true },
      transport: { natsUrl },
      worker: { image: `covenant/worker@sha256:${"0".repeat(64)}` },
      checkpoints: { everyRounds: 5, keep: 3 },
      validator: { sequences: 4 },
      ...o.spec,
    },
  };
  const peerObjects = peers.map((p) => ({
    apiVersion: "covenant.io/v1alpha1",
    kind: "CovenantPeer",
    metadata: { name: p.name, namespace: "default" },
    spec: { runRef: { name: o.run }, role: p.role, hotkeySecretRef: { name: `${p.name}-hotkey` } },
  }));
  return [trainingRun, ...peerObjects];
}
