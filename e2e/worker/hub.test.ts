// The worker acceptance run on the run's hub: 1 validator and 3 miners train llama3-tiny on
// the CPU backend over a 3-server JetStream cluster with TLS, every stream and bucket R3.
// No peer has NATS credentials: each logs in with its hotkey and is admitted by the
// admission service (auth callout) because it is registered on the local chain. The corpus
// is uploaded with the upload command into a nats:// bucket and every shard is fetched from
// it. One NATS server (the validator's) is SIGKILLed as round 8 opens and restarted a few
// rounds later. Checked: rounds go on without a stall, every selected payload is applied by
// every miner and is still on the bus, all peers hold bit-identical weights after every
// round, and loss falls. Then workers whose hotkeys are not registered are refused: they
// say why on /readyz and in their log and keep trying with backoff; one is stopped, the
// other is registered meanwhile, admitted on its next attempt, and catches up.
// test-limit: 600 s (the describe's 540 s, plus setup)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import type { BusClient } from "../../protocol/bus/client.ts";
import { payloadDigest } from "../../protocol/envelope.ts";
import { busNames, kvStream, objectStream } from "../../protocol/names.ts";
import { verifySelection } from "../../protocol/selection.ts";
import type { SignedSelection } from "../../protocol/selection.ts";
import { RawRpc } from "../chain/rpc-client.ts";
import { get } from "../stack/http.ts";
import type { NatsClusterServer } from "../stack/nats.ts";
import { waitFor } from "../stack/wait.ts";
import { metricValue, startLocalRun } from "./harness.ts";
import type { HubRun, Worker } from "./harness.ts";

const RUN = "hub";
const names = busNames(RUN);
const ROUNDS = 22;
const MINERS = ["Alice", "Bob", "Carol"];
const SHARDS = 8;
/** The validator's server is killed as round KILL_AT opens, restarted as RESTART_AT opens. */
const KILL_AT = 8;
const RESTART_AT = 11;
/** No two consecutive selections further apart than this, the crash included. */
const STALL_BOUND_MS = 90_000;

interface Heartbeat {
  hotkey: string;
  /** The round the peer is in: ROUNDS once it has applied the last one. */
  round: number;
  weights: string;
}

interface Connection {
  name?: string;
  authorized_user?: string;
}

/** The run account's client connections on one server, from its /connz. */
async function connections(server: NatsClusterServer): Promise<Connection[]> {
  const url = `${server.monitorUrl}/connz?auth=true&acc=${names.account}`;
  const connz = JSON.parse((await get(url)).body) as { connections?: Connection[] };
  return connz.connections ?? [];
}

/** Admission decisions of one result and reason, from the service's /metrics text. */
const decisions = (metrics: string, result: string, reason: string) =>
  metricValue(metrics, "covenant_admission_decisions_total", { result, reason });

/** Round -> value of the first capture group, from a worker's log lines matching `re` (round first). */
function byRound(log: string, re: RegExp): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of log.matchAll(re)) if (!out.has(Number(m[1]))) out.set(Number(m[1]), m[2]!);
  return out;
}

describe(
  "covenant-worker on the run's hub: 3-server TLS cluster, admission by hotkey, data over nats://",
  { timeout: 540_000 },
  () => {
    let run: HubRun;
    let watch: BusClient;
    let validatorKey: string;
    /** Each round's selection and when the bus stored it. */
    const selections = new Map<number, { s: SignedSelection; at: number }>();
    let validator: Worker;
    const miners = new Map<string, Worker>();

    before(async () => {
      run = await startLocalRun({
        run: RUN,
        miners: MINERS,
        validator: "Val",
        rounds: ROUNDS,
        innerSteps: 4,
        shards: SHARDS,
        tokensPerShard: 6_000,
        sequenceLength: 32,
        roundDeadlineSeconds: 20,
        checkpointEvery: 5,
        hub: { servers: 3, strangers: ["Eve", "Mallory"] },
      });
      // The test reads the bus as the operator, with direct gets by subject rather than a
      // consumer: a consumer can sit on the crashed server while it still counts as online.
      watch = await run.bus.connect("operator", "test-watch");
      validatorKey = run.identity("Val").hotkey;
      validator = await run.start("Val");
      for (const m of MINERS) miners.set(m, await run.start(m));
    });

    after(async () => {
      await watch?.close();
      await run?.stop();
    });

    const workers = () => [validator, ...miners.values()];
    const logOf = (w: Worker) => readFileSync(w.proc.logFile, "utf8");

    /** The selection of `round`, polled by subject; fails early when a worker exits badly. */
    async function selectionOf(round: number): Promise<SignedSelection> {
      const until = Date.now() + STALL_BOUND_MS + 60_000;
      let lastError = "";
      while (Date.now() < until) {
        const got = selections.get(round);
        if (got) return got.s;
        for (const w of workers())
          if (!w.proc.running && (await w.proc.exited).code !== 0)
            throw new Error(`${w.proc.name} failed; its log:\n${w.proc.logTail(40)}`);
        try {
          const m = await watch.lastMessage(names.selection(round, validatorKey));
          const v = m && verifySelection(m.data, { run: RUN, round, validator: validatorKey });
          if (m && v?.ok) selections.set(round, { s: v.value, at: m.storedMs });
        } catch (err) {
          lastError = String(err); // a stream electing its leader; ask again
        }
        if (!selections.has(round)) await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(
        `no selection for round ${round} (${lastError}); validator log:\n${validator.proc.logTail(40)}`,
      );
    }

    /** The server the validator is connected to now, from the servers' /connz. */
    async function validatorServer(): Promise<NatsClusterServer> {
      const name = `validator-${validatorKey}`;
      for (let i = 0; i < 100; i++) {
        for (const s of run.bus.nats.servers.filter((x) => x.running))
          if ((await connections(s)).some((c) => c.name === name)) return s;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error("the validator is connected to no server");
    }

    test("trains 22 rounds through a server crash; every peer admitted by hotkey; every shard over nats://", async (t) => {
      const t0 = Date.now();
      const since = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
      const timeline: string[] = [];
      let killed: NatsClusterServer | undefined;
      let onKilled: string[] = [];
      const fetchMetrics = new Map<Worker, string>();

      await selectionOf(0);
      timeline.push(`round 0 closed at ${since()}`);
      // No static users: the servers' configuration names no peer; every peer's connection
      // is the user the admission service issued for its hotkey.
      for (const s of run.bus.nats.servers) {
        const conf = readFileSync(s.configFile, "utf8");
        for (const p of run.bus.peers) {
          assert.ok(!conf.includes(p.nkey) && !conf.includes(p.hotkey), `${s.name} lists no peer`);
        }
      }
      // Everything R3: the run's stream, its state and payload buckets, the corpus's bucket.
      const jsm = await jetstreamManager(watch.nc);
      for (const stream of [
        names.stream,
        kvStream(names.stateBucket),
        objectStream(new URL(run.source).host),
      ]) {
        assert.equal((await jsm.streams.info(stream)).config.num_replicas, 3, `${stream} replicas`);
      }
      for (const w of workers())
        assert.equal(
          (await jsm.streams.info(objectStream(names.payloadBucket(w.who.hotkey)))).config.num_replicas,
          3,
        );
      assert.match(run.uploadLog, new RegExp(`published ${SHARDS} shards of ${run.source}`));
      const peerConnections = (await Promise.all(run.bus.nats.servers.map(connections)))
        .flat()
        .filter((c) => /^(miner|validator)-/.test(c.name ?? ""));
      assert.equal(peerConnections.length, 4);
      for (const c of peerConnections)
        assert.equal(
          c.authorized_user,
          c.name!.split("-")[1],
          `${c.name} is the callout's user for its hotkey`,
        );

      for (let round = 1; round < ROUNDS; round++) {
        // Shards came over nats:// at the start (scraped now: workers exit after the last round).
        if (round === 3) for (const w of workers()) fetchMetrics.set(w, await run.metrics(w.metricsPort));
        if (round === KILL_AT) {
          killed = await validatorServer();
          await selectionOf(round - 1);
          onKilled = (await connections(killed)).map((c) => c.name ?? "?");
          await killed.kill();
          timeline.push(
            `killed ${killed.name} (SIGKILL) as round ${round} opened, at ${since()}; on it: ${onKilled.join(", ")}`,
          );
        }
        if (round === RESTART_AT && killed) {
          await selectionOf(round - 1);
          await killed.restart();
          timeline.push(`restarted ${killed.name} as round ${round} opened; healthy at ${since()}`);
        }
        await selectionOf(round);
        timeline.push(`round ${round} closed at ${since()}`);
      }
      for (const w of workers()) {
        const exit = await w.proc.exited;
        assert.deepEqual(exit, { code: 0, signal: null }, `${w.proc.name}:\n${w.proc.logTail(40)}`);
      }

      // Rounds went on: the largest gap between consecutive selections, the crash included.
      const gaps = [...Array(ROUNDS - 1).keys()].map(
        (r) => selections.get(r + 1)!.at - selections.get(r)!.at,
      );
      const worst = Math.max(...gaps);
      timeline.push(
        `largest gap between selections ${(worst / 1000).toFixed(1)} s (round ${gaps.indexOf(worst) + 1})`,
      );
      t.diagnostic(timeline.join("\n"));
      assert.ok(worst <= STALL_BOUND_MS, `a round took ${worst} ms`);
      assert.ok(
        onKilled.some((n) => n.startsWith("validator-")),
        "the validator was on the killed server",
      );

      // Every peer admitted by the callout, the validator again after its server died; no refusals.
      const adm = await run.bus.admission.metrics();
      const [asMiner, asValidator] = [
        decisions(adm, "admitted", "miner"),
        decisions(adm, "admitted", "validator"),
      ];
      t.diagnostic(`admissions: ${asMiner} as miner, ${asValidator} as validator`);
      assert.ok(asMiner + asValidator >= 4);
      assert.ok(asMiner >= 3);
      assert.ok(asValidator >= 2, "the validator was admitted again on another server");
      for (const reason of ["unregistered", "bad_signature", "not_validator", "wrong_run", "malformed"])
        assert.equal(decisions(adm, "refused", reason), 0, `refused as ${reason}`);
      for (const w of workers())
        assert.match(logOf(w), /logging in to the bus at tls:\/\/\S+ with the hotkey, TLS verified/);

      // Every shard over nats://: verified downloads, none refused; the validator holds them all.
      for (const w of workers()) {
        const m = fetchMetrics.get(w)!;
        const fetches = (result: string, reason: string) =>
          metricValue(m, "covenant_worker_shard_fetches_total", { result, reason });
        assert.ok(fetches("ok", "verified") > 0, `${w.proc.name} fetched shards`);
        if (w === validator) assert.equal(fetches("ok", "verified"), SHARDS);
        assert.equal(fetches("refused", "digest_mismatch") + fetches("refused", "size_mismatch"), 0);
        assert.match(logOf(w), new RegExp(`fetched shard \\d+ \\(\\d+ bytes\\) from ${run.source}/shard-`));
      }

      // Every selected payload applied by every miner, and the same weights everywhere after
      // every round (the validator reports its weights with each selection).
      const vlog = logOf(validator);
      const vWeights = byRound(
        vlog,
        // (a round that evaluated nothing, all its payloads late, logs loss NaN)
        /round (\d+): \d+ submissions, selected \d+, loss (?:[\d.]+|NaN).*, weights (\w+)/g,
      );
      for (const [name, w] of miners) {
        const log = logOf(w);
        // A miner whose bus request times out while the crashed server is still counted as
        // online goes through catch-up (its log says so) and may sit a round out; what must
        // hold is below: it applied every selected payload and held the validator's weights
        // after every round.
        const applied = byRound(log, /round (\d+): applied (\d+ payloads from \d+ peers, weights \w+)/g);
        for (let r = 0; r < ROUNDS; r++) {
          const n = selections.get(r)!.s.selected.length;
          assert.equal(
            applied.get(r),
            `${n} payloads from ${n} peers, weights ${vWeights.get(r)}`,
            `${name}, round ${r}`,
          );
        }
      }
      // A round is judged by what reached the validator in time: around the crash a miner's
      // upload may go to the dying server or wait for a stream to elect its leader, and the
      // round then has less (or nothing) to aggregate. What arrived must be aggregated: at
      // least two payloads when two or more arrived.
      const arrivedIn = (r: number) =>
        Number(new RegExp(`round ${r}: (\\d+) submissions`).exec(vlog)?.[1] ?? NaN);
      for (let r = 0; r < ROUNDS; r++) {
        const chosen = selections.get(r)!.s.selected;
        assert.ok(
          chosen.length >= Math.min(2, arrivedIn(r)),
          `round ${r} aggregated ${chosen.length} of ${arrivedIn(r)} payloads that arrived`,
        );
      }
      // Each peer's last heartbeat, sent after it applied the last round, carries the whole
      // digest of its weights: one digest for all four.
      // (Read again for a few seconds while it says an earlier round: a copy of the stream that
      // has not applied the newest message yet may answer the read.)
      const last: Heartbeat[] = [];
      for (const w of workers()) {
        let beat: Heartbeat | undefined;
        for (let i = 0; i < 50 && beat?.round !== ROUNDS; i++) {
          if (i > 0) await new Promise((r) => setTimeout(r, 100));
          const m = await watch.lastMessage(names.heartbeat(w.who.hotkey));
          beat = JSON.parse(new TextDecoder().decode(m!.data)) as Heartbeat;
        }
        last.push(beat!);
      }
      assert.deepEqual(
        last.map((b) => b.round),
        [ROUNDS, ROUNDS, ROUNDS, ROUNDS],
      );
      assert.equal(new Set(last.map((b) => b.weights)).size, 1, "identical final weights");
      assert.ok(last[0]!.weights.startsWith(vWeights.get(ROUNDS - 1)!));
      // The selected payloads are all still on the bus, as selected (R3: the crash lost no copy).
      for (const [r, { s }] of selections)
        for (const p of s.selected) {
          const bytes = await watch.getPayload(p.hotkey, r, { maxBytes: 64 << 20 });
          assert.ok(bytes, `payload of round ${r} from ${p.hotkey.slice(0, 8)} is still there`);
          assert.equal(payloadDigest(bytes), p.digest);
        }

      // Loss falls: the validator's loss of the global model, first rounds against the last.
      const vLoss = byRound(vlog, /round (\d+): \d+ submissions, selected \d+, loss ([\d.]+)/g);
      const mean = (from: number, to: number) => {
        const xs = [...Array(to - from + 1).keys()].map((i) => Number(vLoss.get(from + i)));
        assert.ok(xs.every(Number.isFinite), `validator losses ${xs.join(", ")}`);
        return xs.reduce((a, b) => a + b, 0) / xs.length;
      };
      const [early, late] = [mean(0, 2), mean(ROUNDS - 4, ROUNDS - 1)];
      t.diagnostic(
        `validator loss: rounds 0-2 ${early.toFixed(4)}, rounds ${ROUNDS - 4}-${ROUNDS - 1} ${late.toFixed(4)}`,
      );
      assert.ok(late < early * 0.8, `loss fell from ${early} to ${late}`);
    });

    test("unregistered hotkeys are refused and keep trying: one is stopped, one registers and joins", async () => {
      const refusals = async () => decisions(await run.bus.admission.metrics(), "refused", "unregistered");
      const before = await refusals();
      const [eve, mallory] = [await run.start("Eve"), await run.start("Mallory")];
      for (const w of [eve, mallory]) {
        const readyz = `http://127.0.0.1:${w.metricsPort}/readyz`;
        const ready = await w.proc.untilReady(
          waitFor(
            `${w.proc.name}'s refusal on /readyz`,
            async () => {
              const r = await get(readyz);
              return r.body.includes("refused") && r;
            },
            { timeoutMs: 60_000, intervalMs: 200 },
          ),
        );
        assert.equal(ready.status, 503);
        assert.equal(
          ready.body,
          `not ready: the bus refused the login of hotkey ${w.who.hotkey} as miner: authorization violation ` +
            "(the run's admission service refused it or did not answer in time: is the hotkey registered on netuid 3? " +
            "The service's covenant_admission_decisions_total counts refusals by reason)",
        );
      }
      // nats.js gives a connection up after two refusals in a row; each worker tries again.
      await eve.proc.untilReady(
        waitFor("a second attempt of each, after the backoff", async () => (await refusals()) >= before + 8, {
          timeoutMs: 60_000,
          intervalMs: 250,
        }),
      );
      for (const w of [eve, mallory]) {
        assert.ok(w.proc.running, "a refusal does not end the worker");
        const log = readFileSync(w.proc.logFile, "utf8");
        assert.match(
          log,
          /WARN .* the bus refused the login of hotkey \w+ as miner: .*; trying again in \d+\.\d s/,
        );
        assert.doesNotMatch(log, /SU[A-Z2-7]{20,}|0x[0-9a-f]{128}/, "no seed or signature in the log");
      }
      // Stopped while it waits to try again: at once, with 0.
      assert.deepEqual(await mallory.proc.stop(20_000), { code: 0, signal: null }, mallory.proc.logTail());

      // Eve takes Alice's uid (Alice's worker is done): her next attempt is admitted, she
      // catches up from the checkpoint to the end of the run and holds everyone's weights.
      const control = await RawRpc.connect(run.chain.url);
      try {
        await control.result("covenantTest_replaceNeuron", [3, 0, eve.who.hotkey, eve.who.hotkey]);
        await control.result("covenantTest_advanceBlocks", [1]);
      } finally {
        control.close();
      }
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        eve.proc.exited,
        new Promise((r) => (timer = setTimeout(() => r("still running"), 120_000))),
      ]);
      clearTimeout(timer);
      assert.deepEqual(exit, { code: 0, signal: null }, eve.proc.logTail());
      const final = readFileSync(validator.proc.logFile, "utf8").match(
        new RegExp(`round ${ROUNDS - 1}: .*, weights (\\w+)`),
      )![1]!;
      assert.match(
        eve.proc.logTail(),
        new RegExp(`joined run ${RUN} at round ${ROUNDS} \\(weights ${final}\\)`),
      );
    });
  },
);
