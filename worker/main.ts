#!/usr/bin/env -S node --import tsx
// covenant-worker: one peer of a Covenant run (miner or validator).
// Logs in to the run's bus (by its hotkey through the run's admission service, or with a
// NATS nkey), catches up to the latest round, then runs rounds until the run's last round
// or SIGTERM (the current round finishes its I/O, then it stops). A refused login is
// retried with backoff, and a bus that lets the worker go starts it again from catch-up.
// At every round boundary it re-reads the run configuration (the kubelet refreshes the
// mounted ConfigMap) and adopts the config epoch in force for the round, without a restart.
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import type { ConfigEpoch, ResolvedRunConfig } from "../api/runconfig.ts";
import { BusClient } from "../protocol/bus/client.ts";
import { changedFields } from "../protocol/configepoch.ts";
import { stateKeys } from "../protocol/names.ts";
import {
  busClientOptions,
  busDidNotAnswer,
  busProblem,
  connectWithRetry,
  nkeySeedIn,
  pause,
  retryDelayMs,
} from "./bus-login.ts";
import type { LoginTarget } from "./bus-login.ts";
import { busLogin, parseArgs, parseRunConfig, RunConfigEpochs, USAGE } from "./config.ts";
import type { WorkerOptions } from "./config.ts";
import { ChainDuties } from "./chain/duties.ts";
import { membershipReader, openWorkerData } from "./data/worker-data.ts";
import { consoleLog } from "./log.ts";
import type { Log } from "./log.ts";
import { serveMetrics, workerMetrics } from "./metrics.ts";
import type { WorkerMetrics } from "./metrics.ts";
import { Miner, type RoundReport } from "./miner.ts";
import { openKernels } from "./native.ts";
import { OutOfSync, Replica } from "./replica.ts";
import { Validator } from "./validator.ts";

/** Heartbeat period; well inside the operator's default heartbeat grace (30 s). */
const HEARTBEAT_MS = 10_000;

function fail(msg: string): never {
  process.stderr.write(`covenant-worker: ${msg}\n`);
  process.exit(2);
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    fail(`cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
}

/** The NATS nkey seed in a plain seed file or in a .creds file. */
function natsSeed(file: string): string {
  const text = readText(file, "NATS credentials file");
  const seed = nkeySeedIn(text);
  if (!seed) fail(`${file} holds no NATS user nkey seed (SU...)`);
  return seed;
}

/** What /readyz says: a data problem first (what a person has to fix), else the worker's state. */
interface Health {
  notReady: string | undefined;
  data: () => string | undefined;
}

/** What stays the same from one bus session to the next. */
interface Peer {
  opts: WorkerOptions;
  cfg: ResolvedRunConfig;
  epochs: RunConfigEpochs;
  pair: KeyringPair;
  log: Log;
  metrics: WorkerMetrics;
  health: Health;
  target: LoginTarget;
  /** The nkey seed of an nkey login, read once at start. */
  nkeySeed?: string;
}

/** How one session with the bus ended: the run is over (or we stop), or the bus let us go. */
type SessionEnd = { kind: "done" } | { kind: "lost"; why: string; joined: boolean };

export async function runWorker(opts: WorkerOptions, signal: AbortSignal): Promise<void> {
  const parsed = parseRunConfig(readText(opts.configFile, "run configuration"));
  if (!parsed.ok) fail(`${opts.configFile}: ${parsed.error}`);
  const cfg = parsed.config;
  const login = busLogin(opts, cfg);
  if (!login.ok) fail(login.error);
  const nkeySeed = login.login.kind === "nkey" ? natsSeed(login.login.credsFile) : undefined;
  await cryptoWaitReady();
  const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri(
    readText(opts.hotkeyFile, "hotkey file"),
  );
  const log = consoleLog(`[${opts.role} ${pair.address.slice(0, 8)}]`);
  // `run` is <namespace>/<name>, as on the operator's metrics, so dashboards join them.
  const metrics = workerMetrics({ run: `${cfg.run.namespace}/${cfg.run.name}`, role: opts.role });
  const health: Health = { notReady: "connecting to the bus", data: () => undefined };
  const server = await serveMetrics(
    metrics.registry,
    opts.metricsPort,
    opts.metricsHost,
    () => health.data() ?? health.notReady,
  );
  log.info(`metrics on http://${opts.metricsHost}:${(server.address() as AddressInfo).port}/metrics`);
  const target: LoginTarget = {
    servers: opts.natsUrl ?? cfg.transport.natsUrl,
    run: cfg.run.name,
    netuid: cfg.chain.netuid,
    role: opts.role,
    pair,
    login: login.login,
    caFile: opts.busCa,
  };
  log.info(
    `logging in to the bus at ${target.servers} with ` +
      (login.login.kind === "hotkey" ? "the hotkey" : `the NATS user in ${login.login.credsFile}`) +
      (opts.busCa ? `, TLS verified with ${opts.busCa}` : ""),
  );
  const peer: Peer = {
    opts,
    cfg,
    epochs: new RunConfigEpochs(cfg),
    pair,
    log,
    metrics,
    health,
    target,
    nkeySeed,
  };
  try {
    // A bus that lets the worker go for good (a login refused after its admission expired)
    // starts a new session: the worker catches up and goes on, like a restarted pod.
    for (let attempt = 0; !signal.aborted; ) {
      const end = await busSession(peer, signal);
      if (end.kind === "done") break;
      attempt = end.joined ? 0 : attempt + 1;
      const ms = retryDelayMs(attempt);
      health.notReady = `${end.why}; starting again`;
      log.warn(`lost the bus: ${end.why}; starting again in ${(ms / 1000).toFixed(1)} s`);
      if (!(await pause(ms, signal))) break;
    }
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/** Connects (retrying refused logins), runs the worker until the run ends, we stop, or the bus is lost. */
async function busSession(p: Peer, outer: AbortSignal): Promise<SessionEnd> {
  const { log, health, metrics, target } = p;
  health.notReady = "connecting to the bus";
  const bus = await connectWithRetry({
    connect: () =>
      BusClient.connect({
        ...busClientOptions(target, p.nkeySeed),
        onStatus: (s) => {
          if (s === "reconnect") metrics.busReconnects.inc();
          if (s === "disconnect" || s === "reconnect") log.warn(`bus ${s}`);
        },
      }),
    problem: (err) => busProblem(err, target),
    onProblem: (why) => (health.notReady = why),
    log,
    signal: outer,
  });
  if (!bus) return { kind: "done" };
  log.info(`connected to the bus at ${bus.nc.getServer()}`);
  // A connection nats.js gives up on ends this session; the round loop sees it as a stop.
  const lost = new AbortController();
  void bus.nc.closed().then(() => lost.abort());
  const joined = { value: false };
  let lostBus = false;
  try {
    await train(p, bus, AbortSignal.any([outer, lost.signal]), joined);
  } catch (err) {
    // Operations on a closed connection fail; that is the loss of the bus, not a crash.
    if (!bus.nc.isClosed()) throw err;
  } finally {
    lostBus = bus.nc.isClosed();
    await bus.close();
  }
  if (!lostBus || outer.aborted) return { kind: "done" };
  return { kind: "lost", why: busProblem(await bus.nc.closed(), target), joined: joined.value };
}

/** The worker on a connected bus: data, engine, catch-up, then rounds. */
async function train(
  p: Peer,
  bus: BusClient,
  signal: AbortSignal,
  joined: { value: boolean },
): Promise<void> {
  const { opts, cfg, epochs, pair, log, metrics, health } = p;
  // New config epochs from the mounted run configuration; a broken read keeps what is held.
  const reload = () => {
    let text: string;
    try {
      text = readFileSync(opts.configFile, "utf8");
    } catch (err) {
      log.warn(`cannot re-read ${opts.configFile}: ${(err as Error).message}`);
      return;
    }
    const next = parseRunConfig(text);
    if (!next.ok) return log.warn(`ignoring the re-read ${opts.configFile}: ${next.error}`);
    for (const e of epochs.update(next.config))
      log.info(`read config epoch ${e.epoch} (${e.digest.slice(0, 12)}), in force from round ${e.fromRound}`);
  };
  const setNotReady = (why: string | undefined) => (health.notReady = why);
  // spec.data.source: shards fetched ahead into the cache (nats://, https://) or read in place (file://).
  const shardData = openWorkerData({
    source: cfg.data.source,
    dataDir: opts.dataDir,
    caFile: opts.dataCa,
    cacheBytes: opts.dataCacheBytes,
    run: cfg.run.name,
    hotkey: pair.address,
    expect: { shards: cfg.data.shards, modelVocab: cfg.model.vocab, sequenceLength: cfg.data.sequenceLength },
    bus,
    metrics,
    log,
  });
  health.data = () => shardData.problem();
  const allShards = Array.from({ length: cfg.data.shards }, (_, i) => i);
  if (opts.role === "miner")
    shardData.followAssignment({
      readMembership: membershipReader(() => bus.state(), stateKeys.membership),
      run: cfg.run.name,
      shards: cfg.data.shards,
      hotkey: pair.address,
      log,
    });
  // The validator evaluates on sequences of every shard.
  else shardData.want("validator", allShards);
  let closeKernels = (): void => undefined;
  let chain: ChainDuties | undefined;
  let beat: NodeJS.Timeout | undefined;
  try {
    // The engine reads the corpus's sequence count from shard 0 when it opens.
    setNotReady("fetching the training data");
    if (!(await shardData.awaitShards([0], signal, setNotReady))) return;
    const kernels = await openKernels(cfg, shardData.dir, pair.address);
    closeKernels = () => kernels.close();
    let validator = opts.validator;
    if (!validator && opts.role === "validator") validator = pair.address;
    // The operator names the validator in the run's state bucket; wait for it.
    setNotReady("waiting for the operator to name the run's validator");
    for (let waited = 0; !validator && !signal.aborted; waited++) {
      validator = (await (await bus.state()).get(stateKeys.validator))?.string() || undefined;
      if (validator) break;
      if (waited === 0) log.info(`${health.notReady} ('${stateKeys.validator}' in the state bucket)`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (!validator) return;
    const replica = new Replica(epochs, bus, kernels.engine, kernels.codec, validator, metrics, log);
    replica.reload = reload;
    // The rounds of the run may change with a config epoch.
    const lastRound = () => Math.min(replica.cfg.rounds - 1, opts.untilRound ?? Number.MAX_SAFE_INTEGER);
    let inForce: ConfigEpoch | undefined;
    // At a round boundary: the config epoch in force for the round, its inner settings in the engine.
    const adopt = () => {
      reload();
      const e = replica.epoch;
      if (inForce && e.epoch === inForce.epoch && e.digest === inForce.digest) return;
      const changed = inForce ? changedFields(inForce.config, e.config) : [];
      kernels.engine.reconfigure?.(replica.cfg);
      log.info(
        `round ${replica.round}: config epoch ${e.epoch} (${e.digest.slice(0, 12)}) in force` +
          (changed.length ? `; changed ${changed.join(", ")}` : ""),
      );
      inForce = e;
    };
    // Catch-up, retried while the bus does not answer (a server of the hub crashed and its
    // streams are electing new leaders); a stop or the loss of the bus ends it.
    const catchUp = async () => {
      setNotReady("catching up with the run");
      for (;;) {
        try {
          await replica.catchUp(signal);
          break;
        } catch (err) {
          if (signal.aborted) break;
          if (!busDidNotAnswer(err)) throw err;
          log.warn(`catching up: the bus did not answer (${String(err)}); trying again`);
          await pause(1000, signal);
        }
      }
      setNotReady(undefined);
    };
    await catchUp();
    setNotReady("catching up with the run");
    if (opts.role === "validator" && !(await shardData.awaitShards(allShards, signal, setNotReady))) return;
    setNotReady(undefined);
    joined.value = true;
    log.info(`joined run ${cfg.run.name} at round ${replica.round} (weights ${replica.digest.slice(0, 12)})`);
    const miner = opts.role === "miner" ? new Miner(replica, pair, shardData) : undefined;
    const val = opts.role === "validator" ? new Validator(replica, pair) : undefined;
    val?.start();
    chain = opts.chain
      ? new ChainDuties({
          endpoint: cfg.chain.endpoint,
          netuid: cfg.chain.netuid,
          hotkey: pair,
          register: cfg.chain.register ?? false,
          payloadLocation: bus.names.payloadBucket(pair.address),
          setWeightsEveryRounds: val ? cfg.validator.setWeightsEveryRounds : undefined,
          log,
          calls: metrics.chainCalls,
        })
      : undefined;
    chain?.start();
    // On chain, peers earn by the same floor as selection (free-riders and lazy peers earn nothing).
    const ratings = () => val?.rewards() ?? new Map<string, number>();
    // One heartbeat at a time, each built when its turn comes: a periodic beat that started
    // before a round was applied must not land after the beat that reports the round (the
    // stream's last heartbeat of a peer is what the operator and the tests read).
    let beating: Promise<void> = Promise.resolve();
    let inFlight = 0;
    const heartbeat = (extra: Record<string, unknown> = {}): Promise<void> => {
      inFlight++;
      return (beating = beating.then(() => sendHeartbeat(extra)).finally(() => inFlight--));
    };
    const sendHeartbeat = async (extra: Record<string, unknown>) => {
      const body = {
        hotkey: pair.address,
        role: opts.role,
        round: replica.round,
        weights: replica.digest,
        config: replica.epoch.digest,
        configEpoch: replica.epoch.epoch,
        at: Date.now(),
        ...extra,
      };
      await bus
        .publish(
          bus.names.heartbeat(pair.address),
          new TextEncoder().encode(JSON.stringify(body)),
          `${replica.round}-${body.at}`,
        )
        .catch((err: unknown) => log.warn(`heartbeat failed: ${String(err)}`));
    };
    await heartbeat();
    // Also while training: the operator counts a peer whose heartbeats stop as gone.
    // (skipped while a beat is still on its way: a slow bus must not queue them up)
    beat = setInterval(() => void (inFlight === 0 && heartbeat()), HEARTBEAT_MS);
    adopt();
    // The round this miner last tried to submit to: never twice, since a second payload would
    // replace the bytes the first announcement's digest names.
    let attempted = -1;
    while (!signal.aborted && replica.round <= lastRound()) {
      const round = replica.round;
      try {
        adopt();
        const rc = replica.cfg;
        if (miner) {
          const trained = (rep: RoundReport) =>
            log.info(
              `round ${round}: trained ${rc.innerSteps} steps, loss ${rep.loss.toFixed(4)}, ${rep.tokens} tokens, sent ${rep.payloadBytes} bytes`,
            );
          const again = attempted === round;
          attempted = round;
          let rep = again ? sitOut(round) : await miner.submit();
          if (rep.submitted) trained(rep);
          else if (again)
            log.info(`round ${round}: not contributing (the attempt failed); waiting for the selection`);
          else
            (rep.compressProblem ? log.warn : log.info)(
              `round ${round}: not contributing (epoch ${rep.epoch}, ${rep.shards} shards)` +
                (rep.dataProblem ? `: waiting for data: ${rep.dataProblem}` : "") +
                (rep.compressProblem ? `: compression failed: ${rep.compressProblem}` : ""),
            );
          const sel = await replica.awaitSelection(round, signal, async () => {
            if (inFlight === 0) void heartbeat({ waiting: true });
            // Admitted while this round is still open: contribute to it rather than idle to
            // the next boundary (a payload that turns out late is ignored, not penalised).
            if (!rep.member && !signal.aborted) {
              const now = await miner.submit();
              if (now.submitted) trained((rep = now));
            }
          });
          if (!sel || !(await replica.awaitConfig(sel, signal))) break;
          await replica.apply(sel);
          log.info(
            `round ${round}: applied ${sel.selected.length} payloads from ${sel.selected.length} peers, weights ${replica.digest.slice(0, 12)}`,
          );
          await heartbeat({ loss: rep.loss, appliedRound: round });
        } else if (val) {
          const rep = await val.closeRound(signal);
          const refused = Object.entries(rep.rejected).map(([h, why]) => `${h.slice(0, 8)}:${why}`);
          log.info(
            `round ${round}: ${rep.submissions} submissions, selected ${rep.selected}, loss ${rep.lossBefore.toFixed(4)}` +
              (refused.length ? `, refused ${refused.join(" ")}` : "") +
              `, weights ${replica.digest.slice(0, 12)}`,
          );
          await heartbeat({ loss: rep.lossBefore, appliedRound: round });
        }
        metrics.round.set(round);
        chain?.afterRound(round, val ? ratings : undefined, rc.validator.setWeightsEveryRounds);
      } catch (err) {
        // Out of step, or the bus did not answer in time (a crashed server's streams elect new
        // leaders within seconds): catch up and go on rather than end the worker. A stop or
        // the loss of the bus (the signal) ends the loop.
        const outOfSync = err instanceof OutOfSync;
        if (!outOfSync && !busDidNotAnswer(err)) throw err;
        if (signal.aborted) break;
        log.warn(
          outOfSync
            ? `${err.message}; catching up`
            : `round ${round}: the bus did not answer (${String(err)}); catching up`,
        );
        if (outOfSync) miner?.resetErrorFeedback();
        await pause(1000, signal);
        await catchUp();
        continue;
      }
    }
    setNotReady("stopping");
    await val?.stop();
    log.info(`stopped at round ${replica.round}`);
  } finally {
    clearInterval(beat);
    await chain?.stop();
    closeKernels();
    await shardData.close();
    health.data = () => undefined;
  }
}

/** A miner's report of a round it does not contribute to. */
function sitOut(round: number): RoundReport {
  return {
    round,
    loss: NaN,
    tokens: 0,
    payloadBytes: 0,
    submitted: false,
    member: true,
    epoch: -1,
    shards: 0,
  };
}

async function main(): Promise<void> {
  const parsed = parseArgs(process.argv.slice(2), process.env);
  if (parsed.ok === "help") {
    process.stdout.write(USAGE);
    return;
  }
  if (!parsed.ok) fail(parsed.error);
  const ac = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      process.stderr.write(`covenant-worker: ${sig}, finishing the current step\n`);
      ac.abort();
    });
  }
  await runWorker(parsed.options, ac.signal);
  // A connection attempt still under way when the signal came (a bus that never answers)
  // keeps nats.js dialling; it must not keep a stopped worker alive.
  if (ac.signal.aborted) process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`covenant-worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
