// The run organiser's operator (--provision-bus) against a real API server, a real
// nats-server with the run's account (protocol/bus/auth.ts) and the local chain: a
// TrainingRun gets its stream, state bucket and a payload bucket for every hotkey it knows
// (this cluster's peers and the subnet's registered hotkeys), a checkpoint bucket per
// validator, TransportReady=True; a hotkey that registers gets buckets and one that leaves
// loses them after the grace; a stopped bus turns TransportReady False and its return
// brings True back without restarting the operator; a deleted run keeps its finalizer while
// the bus is down, and once it is back its objects go from the bus and the run from the API.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, nkeyAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { BUS_OBJECTS_FINALIZER, type Condition, type TrainingRun } from "../../api/index.ts";
import { accountsConfig } from "../../protocol/bus/auth.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../../operator/controllers/resources.ts";
import { makePeer, makeRun } from "../../operator/controllers/testing.ts";
import { CORE, KubeClient } from "../../operator/kube/index.ts";
import { busNames, kvStream, objectStream } from "../../protocol/names.ts";
import { devKeyring, seededKeys } from "../chain/genesis.ts";
import { startLocalChain, type LocalChain } from "../chain/local.ts";
import { RawRpc } from "../chain/rpc-client.ts";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { startNats, type NatsServer } from "../stack/nats.ts";
import { waitFor } from "../stack/wait.ts";
import { installCrds, mintOperatorUser } from "./cluster.ts";
import { startOperator, type OperatorProcess } from "./operator-process.ts";

const NS = "organiser";
const RUN = "demo";
const NETUID = 3;
const WAIT = { timeoutMs: 30_000, intervalMs: 200 };
const names = busNames(RUN);

describe("the organiser's operator owns the run's bus objects", { timeout: 150_000 }, () => {
  let chain: LocalChain | undefined;
  let control: RawRpc | undefined;
  let nats: NatsServer | undefined;
  let kube: KubeStack | undefined;
  let operator: OperatorProcess | undefined;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager;
  let admin: KubeClient;

  const keyring = devKeyring();
  const alice = keyring.addFromUri("//Alice").address;
  const validator = seededKeys(keyring, 0).hot.address; // neuron 0 holds a validator permit
  const miner = seededKeys(keyring, 1).hot.address;
  const newcomer = keyring.addFromUri("//covenant/newcomer/hot").address;

  const streams = async () => {
    const out = new Set<string>();
    for await (const si of jsm.streams.list()) out.add(si.config.name);
    return out;
  };
  const payload = (h: string) => objectStream(names.payloadBucket(h));
  const checkpoint = (h: string) => objectStream(names.checkpointBucket(h));
  const getRun = () => admin.getOrUndefined<TrainingRun & KubernetesObject>(TRAINING_RUNS, NS, RUN);
  const runEvents = async (reason: string) =>
    (
      await admin.list<
        KubernetesObject & { reason?: string; message?: string; involvedObject?: { name?: string } }
      >(CORE.events, { namespace: NS })
    ).items.filter((e) => e.involvedObject?.name === RUN && e.reason === reason);
  const transportReady = async (): Promise<Condition | undefined> =>
    (await getRun())?.status?.conditions?.find((c) => c.type === "TransportReady");

  before(async () => {
    chain = await startLocalChain({ netuid: NETUID, neurons: 2, validators: 1, blockTimeMs: 200 });
    control = await RawRpc.connect(chain.url);
    const op = createUser();
    const seed = new TextDecoder().decode(op.getSeed());
    nats = await startNats({
      extraConfig: accountsConfig([
        {
          run: RUN,
          operatorNkey: op.getPublicKey(),
          peers: [],
          maxFileBytes: 2 * 1024 ** 3,
          maxMemoryBytes: 64 * 1024 ** 2,
        },
      ]),
    });
    nc = await connect({
      servers: nats.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    jsm = await jetstreamManager(nc);

    kube = await startKube();
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    admin = KubeClient.fromKubeConfig(kube.kubeConfig());
    for (const name of ["covenant-system", NS])
      await admin.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    const identity = await mintOperatorUser(kube, "covenant-system");
    await admin.create(CORE.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "alice-hotkey", namespace: NS },
      stringData: { hotkey: "//Alice" },
    } as KubernetesObject);
    const peer = makePeer("alice", RUN, NS).obj() as unknown as KubernetesObject;
    delete peer.metadata!.uid;
    await admin.create(COVENANT_PEERS, peer);

    const seedFile = join(kube.dir, "operator.nk");
    writeFileSync(seedFile, seed, { mode: 0o600 });
    operator = await startOperator({
      kubeconfigPath: identity.kubeconfigPath,
      dir: kube.dir,
      identity: "organiser",
      args: [`--nats-creds=${seedFile}`, "--provision-bus", "--bus-departed-grace=1s", "--no-membership"],
    });
  });

  after(async () => {
    await operator?.process.stop();
    await nc?.close();
    await nats?.stop();
    control?.close();
    await kube?.stop();
    await chain?.stop();
  });

  it("applying a TrainingRun creates its stream and buckets, TransportReady=True", async () => {
    const run = makeRun(RUN, NS)
      .set("spec.transport.natsUrl", nats!.url)
      .set("spec.chain.endpoint", chain!.url)
      .set("spec.chain.netuid", NETUID)
      .obj() as unknown as KubernetesObject;
    delete run.metadata!.uid;
    await admin.create(TRAINING_RUNS, run);

    const want = [
      names.stream,
      kvStream(names.stateBucket),
      payload(alice),
      payload(validator),
      payload(miner),
      checkpoint(validator),
    ];
    await waitFor(
      "the run's stream and buckets",
      async () => {
        const have = await streams();
        return want.every((s) => have.has(s));
      },
      WAIT,
    );
    const c = await waitFor(
      "TransportReady=True with the subnet read",
      async () => {
        const c = await transportReady();
        return c?.status === "True" && /registered on subnet 3/.test(c.message ?? "") ? c : undefined;
      },
      WAIT,
    );
    assert.equal(c.reason, "Provisioned");
    assert.match(c.message ?? "", /3 payload buckets and 1 checkpoint bucket, 1 replica each/);
    assert.match(c.message ?? "", /1 from this cluster's peers, 2 more registered on subnet 3/);
    assert.deepEqual((await getRun())?.metadata?.finalizers, [BUS_OBJECTS_FINALIZER]);
    await waitFor(
      "a BusObjectsCreated Event",
      async () => (await runEvents("BusObjectsCreated")).length > 0,
      WAIT,
    );
    const info = await jsm.streams.info(names.stream);
    assert.deepEqual(info.config.subjects, [names.allSubjects]);
    assert.equal(info.config.num_replicas, 1);
  });

  it("a hotkey that registers gets a bucket; one gone from the subnet loses its after the grace", async () => {
    await control!.result("covenantTest_replaceNeuron", [NETUID, 1, newcomer, newcomer]);
    await waitFor(
      "the newcomer's bucket, the departed miner's gone",
      async () => {
        const s = await streams();
        return s.has(payload(newcomer)) && !s.has(payload(miner));
      },
      WAIT,
    );
    const removed = await waitFor(
      "a BusBucketsRemoved Event",
      async () => (await runEvents("BusBucketsRemoved"))[0],
      WAIT,
    );
    assert.match(removed.message ?? "", new RegExp(miner));
    const s = await streams();
    assert.ok(s.has(payload(alice)) && s.has(payload(validator)) && s.has(checkpoint(validator)));
  });

  it("a stopped bus turns TransportReady False; its return brings True back", async () => {
    // What the operator logs when it creates, updates or removes anything on the bus.
    const applied = () =>
      readFileSync(join(kube!.dir, "operator-organiser.log"), "utf8")
        .split("\n")
        .filter((l) => l.includes("provisioned the run's bus")).length;
    const before = applied();
    assert.ok(before > 0);
    await nats!.process().stop();
    const down = await waitFor(
      "TransportReady=False",
      async () => {
        const c = await transportReady();
        return c?.status === "False" ? c : undefined;
      },
      WAIT,
    );
    assert.equal(down.reason, "BusUnreachable");
    assert.doesNotMatch(down.message ?? "", /SU[A-Z2-7]{56}/);

    await nats!.restart();
    const up = await waitFor(
      "TransportReady=True again",
      async () => {
        const c = await transportReady();
        return c?.status === "True" ? c : undefined;
      },
      WAIT,
    );
    assert.equal(up.reason, "Provisioned");
    assert.equal(operator!.process.running, true, "the same operator process");
    // The bus kept everything on disk: nothing to create or update, so nothing was.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(applied(), before);
  });

  it("a deleted run keeps its finalizer while the bus is down, then its objects and the run go", async () => {
    await nats!.process().stop();
    await admin.delete(TRAINING_RUNS, NS, RUN);
    const stuck = await waitFor(
      "cleanup failing while the bus is down",
      async () => {
        const c = await transportReady();
        return c?.status === "False" && /deleting the run's stream and buckets/.test(c.message ?? "")
          ? c
          : undefined;
      },
      WAIT,
    );
    assert.equal(stuck.reason, "BusUnreachable");
    const run = await getRun();
    assert.ok(run?.metadata?.deletionTimestamp);
    assert.deepEqual(run?.metadata?.finalizers, [BUS_OBJECTS_FINALIZER]);

    await nats!.restart();
    await waitFor("the run gone from the API", async () => (await getRun()) === undefined, WAIT);
    // The test's own client may still be reconnecting to the restarted server: retry the listing.
    const left = await waitFor(
      "a listing of the bus",
      async () => [...(await streams())].filter((s) => s.includes(`covenant-${RUN}`)),
      WAIT,
    );
    assert.deepEqual(left, []);
  });
});
