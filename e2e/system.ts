// The whole system on one machine, as `make demo` and the end-to-end test run it:
// a control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager)
// with the CRDs, the local chain, the run's hub (a 3-server JetStream cluster with TLS and
// the admission service, which admits peers by their registration on the chain), the
// corpus uploaded into a nats:// bucket with the upload command, Prometheus, the
// organiser's operator (it provisions the run's stream and buckets, --provision-bus), and a
// node agent playing B200 nodes whose pods are worker processes. A TrainingRun and its
// CovenantPeers are applied like a user would; the operator makes the worker pods, which
// log in to the hub by their hotkey and verify it with the CA the run names; the workers
// train over the bus. `bus: "single"` is the older setup: one nats-server with static
// per-peer nkey accounts (credentials as files) and file:// data.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { stringify } from "yaml";
import { applyDefaults } from "../api/defaults.ts";
import { trainingRunSpecSchema, type TrainingRun, type TrainingRunSpec } from "../api/index.ts";
import { runBusSpec } from "../operator/bus/runspec.ts";
import { shardPath, writeShard } from "../worker/shards.ts";
import { startBus, type BusFixture, type HubFixture } from "./bus/fixture.ts";
import { startLocalChain, type LocalChain } from "./chain/local.ts";
import { B200_LABELS, NodeAgent } from "./node-agent/agent.ts";
import { startKube, type KubeStack } from "./stack/kube.ts";
import { binary, nodeTs, repoRoot, tempDir } from "./stack/paths.ts";
import type { NatsCluster, NatsServer } from "./stack/nats.ts";
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
  /**
   * The run's bus: "hub" (default) the 3-server TLS cluster with admission by hotkey and the
   * corpus over nats://; "single" one nats-server with per-peer nkey users and file:// data.
   */
  bus?: "hub" | "single";
  /** Merged into the TrainingRun's spec. */
  spec?: Record<string, unknown>;
  /** Called with each line of progress (worker output, run status). */
  say: (line: string) => void;
}

export interface System {
  kube: KubeStack;
  bus: BusFixture<NatsServer | NatsCluster>;
  /** The hub (cluster and admission service) when the system runs on one. */
  hub?: HubFixture;
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

/** Files of real text found on the machine: the README, docs/ and the common licenses. */
export function corpusFiles(): string[] {
  return [
    join(repoRoot, "README.md"),
    ...listText(join(repoRoot, "docs")),
    ...listText("/usr/share/common-licenses"),
  ];
}

/** Real text found on the machine, as byte-level tokens (llama3-tiny's vocabulary holds all 256 bytes). */
export function textCorpus(): Uint8Array {
  const parts = corpusFiles().map((f) => readFileSync(f));
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
const NETUID = 3;
/** The Secret with the hub's CA that the TrainingRun names (spec.transport.caSecretRef). */
const BUS_CA_SECRET = "bus-ca";

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
    // kubectl wait fails outright on a CRD whose status has no conditions yet: ask again.
    await waitFor(
      "the CRDs Established",
      async () =>
        kubectl(
          "wait",
          "--for=condition=Established",
          "--timeout=60s",
          "crd/trainingruns.covenant.io",
          "crd/covenantpeers.covenant.io",
        ).then(
          () => true,
          () => undefined,
        ),
      { timeoutMs: 60_000, intervalMs: 500 },
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
      netuid: NETUID,
      neurons: 0,
      funded: miners.map(address),
      // On the hub, the miners too: admission lets in registered hotkeys only, and a worker
      // registers (spec.chain.register) only once it is on the bus.
      registered: [
        ...((o.bus ?? "hub") === "hub" ? miners.map((m) => ({ hotkey: address(m) })) : []),
        { hotkey: address("validator"), stake: 1_000_000_000_000n, validatorPermit: true },
      ],
      // Blocks every 250 ms: let the validator set weights every few rounds.
      subnet: { weightsSetRateLimit: 2n },
    });
    stops.push(() => chain.stop());
    o.say(`    chain ${chain.url}`);
    const hubMode = (o.bus ?? "hub") === "hub";
    // On the hub the operator provisions the run's objects; the fixture's first provisioning
    // uses the operator's own sizes, so that the operator has nothing to change (JetStream
    // refuses to cut a stream's max_age below the duplicates window it was created with).
    const busSpec = hubMode
      ? operatorBusSpec(o, peers)
      : {
          roundMs: o.roundDeadlineSeconds * 1000,
          retainRounds: Math.min(4 * (o.rounds + 4), 200),
          maxPayloadBytes: 4 * 1024 * 1024,
        };
    let bus: BusFixture<NatsServer | NatsCluster>;
    let hub: HubFixture | undefined;
    if (hubMode) {
      o.say("starting the run's hub: 3 nats-servers (JetStream cluster, TLS) and the admission service");
      const startHub = () =>
        startBus({
          run: o.run,
          peers,
          spec: busSpec,
          cluster: { servers: 3 },
          admission: { chainEndpoint: chain.url, netuid: NETUID },
        });
      // The fixture provisions with 5 s requests; on a loaded machine the new cluster's first
      // R3 stream can take longer to place. It stops what it started when it fails: try again.
      hub = await startHub().catch((err: unknown) => {
        o.say(`    the hub did not come up (${(err as Error).message}); starting it again`);
        return startHub();
      });
      bus = hub;
      stops.push(() => hub!.stop());
      o.say(
        `    NATS hub ${hub.nats.url}   monitoring ${hub.nats.servers.map((s) => s.monitorUrl).join(" ")}`,
      );
      o.say(
        `    admission service ${hub.admission.url} (auth callout: admits hotkeys registered on netuid ${NETUID})`,
      );
    } else {
      o.say("starting nats-server with JetStream and the run's accounts");
      bus = await startBus({ run: o.run, peers, spec: busSpec });
      stops.push(() => bus.stop());
      o.say(`    NATS ${bus.nats.url}   monitoring ${bus.nats.monitorUrl}`);
    }

    // Token shards from real text on this machine: uploaded to the hub by the organiser's
    // command (nats://), or written to a directory (file://).
    const corpus = textCorpus();
    const shards = 8;
    let source: string;
    if (hub) {
      source = `nats://covdata/${o.run}`;
      const uploaded = await uploadCorpus(o.run, hub, source, shards, tmp.path);
      o.say(`    corpus: ${(corpus.length / 1024).toFixed(0)} KiB of text, ${uploaded}`);
    } else {
      const dataDir = join(tmp.path, "data");
      mkdirSync(dataDir);
      const per = Math.floor(corpus.length / shards);
      for (let s = 0; s < shards; s++)
        writeShard(shardPath(dataDir, s), 512, corpus.subarray(s * per, (s + 1) * per));
      source = `file://${dataDir}`;
      o.say(`    corpus: ${(corpus.length / 1024).toFixed(0)} KiB of text in ${shards} shards`);
    }

    // Credentials: the hotkey as a Kubernetes Secret per peer; on the hub the bus's CA as a
    // Secret the run names (peers need nothing else), else NATS nkey seeds as files.
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
      if (!hub) writeFileSync(join(secretsDir, `${p.name}.nats`), hotkey(p.name).seed, { mode: 0o600 });
    }
    if (hub)
      await core.createNamespacedSecret({
        namespace: "default",
        body: {
          metadata: { name: BUS_CA_SECRET },
          stringData: { "ca.crt": readFileSync(hub.tls.caFile, "utf8") },
        },
      });
    const operatorSeedFile = hub ? hub.operatorSeedFile : join(secretsDir, "operator.nats");
    if (!hub) writeFileSync(operatorSeedFile, bus.operatorSeed, { mode: 0o600 });

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
        `--nats-creds=${operatorSeedFile}`,
        `--node-not-ready-grace=${o.nodeNotReadyGrace ?? "20s"}`,
        // The organiser's operator creates the run's stream and buckets (R3 on the hub) for
        // its peers and every hotkey registered on the subnet, and reports TransportReady.
        ...(hub ? ["--provision-bus", "--bus-replicas=3", `--nats-ca=${hub.tls.caFile}`] : []),
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
        if (!peer) return {};
        // On the hub the pod has all it needs (hotkey, CA); its shard cache goes under the
        // system's directory rather than the machine's /tmp.
        return hub
          ? { COVENANT_DATA_DIR: join(tmp.path, "shard-cache", peer) }
          : { COVENANT_NATS_CREDS: join(secretsDir, `${peer}.nats`) };
      },
      onOutput: (pod, line) => o.say(`[${pod.replace(/-worker$/, "")}] ${line}`),
    });
    await agent.start();
    stops.push(() => agent.stop());

    const targetsFile = join(tmp.path, "targets.json");
    writeTargets(targetsFile, []);
    const prom = await startPrometheus({
      jobs: [
        { job: "covenant-operator", targets: [`127.0.0.1:${operatorPort}`] },
        ...(hub ? [{ job: "covenant-admission", targets: [new URL(hub.admission.url).host] }] : []),
      ],
      fileSd: targetsFile,
      scrapeIntervalSec: 2,
    });
    stops.push(() => prom.stop());
    o.say(`    Prometheus ${prom.url}`);

    o.say(`applying TrainingRun ${o.run} and ${peers.length} CovenantPeers`);
    const manifests = runManifests(
      o,
      source,
      bus.nats.url,
      chain.url,
      peers,
      hub ? BUS_CA_SECRET : undefined,
    );
    const file = join(tmp.path, "run.yaml");
    writeFileSync(file, manifests.map((m) => stringify(m)).join("---\n"));
    await kubectl("apply", "-f", file);

    const objects = kc.makeApiClient(CustomObjectsApi);
    return {
      kube,
      bus,
      hub,
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
  source: string,
  natsUrl: string,
  chainUrl: string,
  peers: { name: string; role: "miner" | "validator" }[],
  caSecret?: string,
): Record<string, unknown>[] {
  const trainingRun = {
    apiVersion: "covenant.io/v1alpha1",
    kind: "TrainingRun",
    metadata: { name: o.run, namespace: "default" },
    spec: {
      model: { preset: "llama3-tiny" },
      data: { source, shards: 8, sequenceLength: 32 },
      rounds: o.rounds,
      innerSteps: o.innerSteps,
      innerOptimizer: { learningRate: 0.01, batchSize: 4, schedule: { kind: "constant" } },
      outer: { learningRate: 1, warmupRounds: 0 },
      compression: { chunk: 64, topK: 64, wireFormat: 1 },
      aggregation: { gatherPeers: 20, reserves: 10, minPeers: o.minPeers ?? o.miners },
      roundDeadlineSeconds: o.roundDeadlineSeconds,
      chain: { endpoint: chainUrl, netuid: NETUID, register: true },
      transport: { natsUrl, ...(caSecret ? { caSecretRef: { name: caSecret } } : {}) },
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

/** The sizes of the run's stream and buckets as the operator plans them from the run's spec (R3). */
function operatorBusSpec(o: SystemOptions, peers: { name: string; role: "miner" | "validator" }[]) {
  const manifest = runManifests(o, "file:///unused", "tls://unused", "ws://unused", peers)[0]!;
  const spec = applyDefaults(trainingRunSpecSchema.json, manifest.spec) as TrainingRunSpec;
  const {
    run: _run,
    miners: _m,
    validators: _v,
    ...sizes
  } = runBusSpec(o.run, spec, { miners: [], validators: [] }, 3);
  return sizes;
}

/**
 * The organiser's part: the corpus tokenized into the run's shards by the upload command
 * (its own process, as a person runs it) into an R3 bucket of the hub, over TLS as the
 * operator user. Answers its summary line.
 */
async function uploadCorpus(
  run: string,
  hub: HubFixture,
  source: string,
  shards: number,
  dir: string,
): Promise<string> {
  const texts = corpusFiles();
  const [cmd, ...pre] = nodeTs(join(repoRoot, "worker/data/upload.ts"));
  const proc = ManagedProcess.start({
    name: "upload",
    command: cmd!,
    args: [
      ...pre,
      `--source=${source}`,
      `--run=${run}`,
      `--nats-url=${hub.nats.url}`,
      `--creds=${hub.operatorSeedFile}`,
      `--nats-ca=${hub.tls.caFile}`,
      `--replicas=${hub.spec.replicas ?? 1}`,
      `--shards=${shards}`,
      ...texts.map((t) => `--text=${t}`),
    ],
    logFile: join(dir, "upload.log"),
  });
  const exit = await proc.exited;
  if (exit.code !== 0) throw new Error(`upload failed (${exit.signal ?? exit.code}):\n${proc.logTail()}`);
  // Its last line: "published N shards of nats://BUCKET/PREFIX".
  return (
    proc
      .logTail(shards + 10)
      .trim()
      .split("\n")
      .at(-1) ?? ""
  );
}
