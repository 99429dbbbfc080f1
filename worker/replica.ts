// The shared state every peer keeps in lock-step: the global weights after each
// round. Applying a round means fetching the payloads the validator selected,
// verifying each, and aggregating them in the selection's order, so every peer that
// applies the same selections holds bit-identical weights. Catch-up is the same
// operation replayed from the latest checkpoint. The run config of a round is that of the
// config epoch in force for it; a round's outer step is applied with the config whose
// digest the validator's selection names. With the nesterov outer optimizer the state also
// holds the outer momentum, updated only by applied rounds that aggregate something, and
// carried by the validator's checkpoints (worker/dense.ts, docs/worker.md).
import type { BusClient } from "../protocol/bus/client.ts";
import type { ConfigEpoch, ResolvedRunConfig } from "../api/runconfig.ts";
import { decodeCheckpoint, stateDigest } from "./checkpoint.ts";
import {
  aggregatedGradient,
  denseCodec,
  isDense,
  nesterovStep,
  outerMomentum,
  outerOptimizer,
  payloadFormat,
  zerosLike,
} from "./dense.ts";
import { fetchSubmission } from "./gather.ts";
import type { GatherContext } from "./gather.ts";
import type { Codec, Engine, Tensors } from "./kernels.ts";
import type { WorkerMetrics } from "./metrics.ts";
import type { SignedSelection } from "../protocol/selection.ts";
import { verifySelection } from "../protocol/selection.ts";
import type { Log } from "./log.ts";
import type { RunConfigEpochs } from "./config.ts";

export interface CheckpointPointer {
  round: number;
  object: string;
  digest: string;
}

export class OutOfSync extends Error {
  constructor(
    readonly round: number,
    detail: string,
  ) {
    super(`cannot apply round ${round}: ${detail}`);
    this.name = "OutOfSync";
  }
}

export class Replica {
  /** Weights at the start of `round` (after applying every round before it). */
  theta: Tensors;
  /**
   * The outer momentum at the start of `round`: present exactly when the last applied round's
   * config uses the nesterov outer optimizer (zeros from the first such round on).
   */
  momentum: Tensors | undefined;
  /** The run's payload codec: the native SparseLoCo one, or dense fp32 payloads (mode none). */
  readonly codec: Codec;
  /** The next round to work on. */
  round = 0;
  /** Re-reads the run config file (set by the worker); called when a selection names an unknown config. */
  reload: (() => void) | undefined;

  constructor(
    readonly epochs: RunConfigEpochs,
    readonly bus: BusClient,
    readonly engine: Engine,
    codec: Codec,
    readonly validator: string,
    readonly metrics: WorkerMetrics,
    readonly log: Log,
  ) {
    this.theta = engine.getParameters();
    // spec.compression is immutable: the first epoch's says how every payload of the run looks.
    this.codec = isDense(epochs.at(0).config) ? denseCodec(engine.tensors) : codec;
  }

  /** The run config of the round being worked on (its config epoch's). */
  get cfg(): ResolvedRunConfig {
    return this.epochs.at(this.round).config;
  }

  /** The config epoch in force for the round being worked on. */
  get epoch(): ConfigEpoch {
    return this.epochs.at(this.round).epoch;
  }

  get gather(): GatherContext {
    return {
      bus: this.bus,
      codec: this.codec,
      run: this.bus.names.run,
      maxPayloadBytes: this.codec.payloadSize(),
      fetchTimeoutMs: Math.max(5_000, this.cfg.roundDeadlineSeconds * 500),
    };
  }

  /** The config a selection's round is applied with: the one its digest names. */
  configOf(sel: SignedSelection): ResolvedRunConfig {
    if (sel.config === undefined) return this.epochs.at(sel.round).config;
    let cfg = this.epochs.byDigest(sel.config);
    if (!cfg) {
      this.reload?.();
      cfg = this.epochs.byDigest(sel.config);
    }
    if (!cfg)
      throw new OutOfSync(
        sel.round,
        `the validator closed it with config ${sel.config.slice(0, 12)}, which this worker's run configuration does not list (yet)`,
      );
    return cfg;
  }

  /** SHA-256 of the state: the weights, and the outer momentum when there is one. */
  get digest(): string {
    return stateDigest(this.theta, this.momentum);
  }

  /** The validator's selection of a round if it is published already. */
  async selection(round: number): Promise<SignedSelection | undefined> {
    const m = await this.bus.lastMessage(this.bus.names.selection(round, this.validator));
    if (!m) return undefined;
    const v = verifySelection(m.data, { run: this.bus.names.run, round, validator: this.validator });
    if (!v.ok) throw new Error(`selection of round ${round} does not verify: ${v.detail}`);
    return v.value;
  }

  /** Waits for the selection of a round (the validator is the authority; no selection, no round). */
  async awaitSelection(
    round: number,
    signal: AbortSignal,
    onWait?: () => void | Promise<void>,
  ): Promise<SignedSelection | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      const m = await this.bus.firstMessage(this.bus.names.selection(round, this.validator), 2_000);
      if (m) {
        const v = verifySelection(m.data, { run: this.bus.names.run, round, validator: this.validator });
        if (v.ok) return v.value;
        this.log.warn(`ignoring a selection for round ${round}: ${v.detail}`);
      }
      await onWait?.();
    }
  }

  /**
   * Waits until this worker holds the config a selection names (its mounted run config may
   * reach it a little after the validator's); false when `signal` ends the wait.
   */
  async awaitConfig(sel: SignedSelection, signal: AbortSignal): Promise<boolean> {
    for (let waited = false; ; waited = true) {
      try {
        this.configOf(sel);
        return true;
      } catch (err) {
        if (!(err instanceof OutOfSync)) throw err;
        if (!waited) this.log.warn(`${err.message}; waiting for it`);
      }
      if (signal.aborted) return false;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Fetches, verifies and aggregates the selected payloads; theta moves to the next round. */
  async apply(sel: SignedSelection): Promise<void> {
    if (sel.round !== this.round) throw new OutOfSync(sel.round, `expected round ${this.round}`);
    const cfg = this.configOf(sel);
    const gather = this.gather;
    const started = performance.now();
    const fetched = await Promise.all(
      sel.selected.map((p) => fetchSubmission(gather, p.hotkey, sel.round, payloadFormat(cfg), p.digest)),
    );
    this.metrics.gatherSeconds.observe((performance.now() - started) / 1000);
    const payloads: Uint8Array[] = [];
    for (const [i, v] of fetched.entries()) {
      if (!v.ok) {
        this.metrics.rejected.inc({ reason: v.reason });
        throw new OutOfSync(
          sel.round,
          `selected payload of ${sel.selected[i]!.hotkey}: ${v.reason} (${v.detail})`,
        );
      }
      payloads.push(v.value);
      this.metrics.payloadBytes.inc({ direction: "received" }, v.value.length);
    }
    const nesterov = outerOptimizer(cfg) === "nesterov";
    if (payloads.length > 0) {
      const t0 = performance.now();
      if (nesterov) {
        // The aggregate g without the step, then v = mu v + g; theta -= lr (g + mu v).
        const { g, result } = aggregatedGradient(this.codec, payloads, this.theta);
        if (result.accepted !== payloads.length)
          throw new OutOfSync(sel.round, `the codec refused selected payloads: ${result.statuses.join(",")}`);
        this.momentum ??= zerosLike(this.theta);
        nesterovStep(this.theta, this.momentum, g, cfg.outer.learningRate, outerMomentum(cfg));
      } else {
        const res = this.codec.aggregate(payloads, cfg.outer.learningRate, this.theta);
        if (res.accepted !== payloads.length)
          throw new OutOfSync(sel.round, `the codec refused selected payloads: ${res.statuses.join(",")}`);
      }
      this.metrics.aggregateSeconds.observe((performance.now() - t0) / 1000);
    }
    // A round that aggregates nothing leaves the momentum as it is; a round applied with sgd
    // drops it (a later nesterov epoch starts again from zero).
    if (nesterov) this.momentum ??= zerosLike(this.theta);
    else this.momentum = undefined;
    this.metrics.selected.set(payloads.length);
    this.engine.setParameters(this.theta);
    this.round = sel.round + 1;
  }

  /**
   * Brings the weights to the latest published round: the validator's latest
   * checkpoint (when newer than what is held), then every selection since.
   */
  async catchUp(signal: AbortSignal): Promise<number> {
    const kv = await this.bus.state();
    const entry = await kv.get(`checkpoint.${this.validator}`);
    if (entry && entry.value.length > 0) {
      const ptr = JSON.parse(entry.string()) as CheckpointPointer;
      if (ptr.round + 1 > this.round) {
        const bytes = await this.bus.getObject(this.bus.names.checkpointBucket(this.validator), ptr.object, {
          maxBytes: 8 * 1024 ** 3,
        });
        if (bytes) {
          const { header, theta, momentum } = decodeCheckpoint(bytes, {
            run: this.bus.names.run,
            tensors: this.engine.tensors,
            // The state after a round holds a momentum exactly when that round used nesterov.
            momentum: (round) => outerOptimizer(this.epochs.at(round).config) === "nesterov",
          });
          if (stateDigest(theta, momentum) !== ptr.digest)
            throw new Error(`checkpoint of round ${ptr.round} is corrupt`);
          this.theta = theta;
          this.momentum = momentum;
          this.engine.setParameters(theta);
          this.round = header.round + 1;
          this.log.info(`loaded checkpoint of round ${header.round}`);
        }
      }
    }
    let replayed = 0;
    while (!signal.aborted) {
      const sel = await this.selection(this.round);
      if (!sel || !(await this.awaitConfig(sel, signal))) break;
      await this.apply(sel);
      replayed++;
    }
    if (replayed) this.log.info(`replayed ${replayed} rounds; now at round ${this.round}`);
    return replayed;
  }
}
