// The miner's round: adopt membership and assignment at the boundary, train H inner
// steps, form the pseudo-gradient, compress it with error feedback (or, with
// spec.compression.mode none, send it dense without error feedback), sign, put, announce;
// then wait for the validator's selection and apply it like every peer.
import type { KeyringPair } from "@polkadot/keyring/types";
import { encodeAnnouncement, signEnvelope } from "../protocol/envelope.ts";
import { assignShards } from "../protocol/rendezvous.ts";
import { parseMembership, type Membership } from "../protocol/membership.ts";
import { stateKeys } from "../protocol/names.ts";
import { CodecError } from "../kernels/binding/codec.ts";
import type { Tensors } from "./kernels.ts";
import { tensorSize } from "./kernels.ts";
import type { Replica } from "./replica.ts";
import { isDense, payloadFormat } from "./dense.ts";
import { corrupt, FAULT_ENV, faultAt, parseFault, stepsUnder } from "./test-fault-injection.ts";

/** TEST FAULT INJECTION ONLY (the adversarial suite); undefined in every real run. */
const TEST_FAULT = parseFault(process.env[FAULT_ENV]);

export interface RoundReport {
  round: number;
  loss: number;
  tokens: number;
  payloadBytes: number;
  submitted: boolean;
  /** Whether this peer was a member of the membership it read. */
  member: boolean;
  epoch: number;
  shards: number;
  /** Why this member sat the round out: its shards were not fetched and checked in time. */
  dataProblem?: string;
  /** Why this member sat the round out: its pseudo-gradient could not be compressed. */
  compressProblem?: string;
}

/** The shard cache as the miner uses it (worker/data/worker-data.ts). */
export interface ShardGate {
  want(name: string, shards: readonly number[]): void;
  /** Undefined once the shards are checked and in place, else why not (after at most timeoutMs). */
  ready(shards: readonly number[], timeoutMs: number): Promise<string | undefined>;
}

/** The run's membership as published by the operator; undefined before there is one. */
export async function readMembership(replica: Replica): Promise<Membership | undefined> {
  const kv = await replica.bus.state();
  const e = await kv.get(stateKeys.membership);
  if (!e || e.value.length === 0) return undefined;
  return parseMembership(e.string());
}

export class Miner {
  readonly #errors: Tensors;
  #epoch = -1;
  #shards: number[] = [];

  constructor(
    readonly replica: Replica,
    readonly pair: KeyringPair,
    readonly data?: ShardGate,
  ) {
    // Dense payloads carry the whole pseudo-gradient: no error feedback, no buffers.
    this.#errors = isDense(replica.cfg)
      ? []
      : replica.engine.tensors.map((t) => new Float32Array(tensorSize(t)));
  }

  /** Zeroes the error-feedback buffers (null rounds, after a catch-up). */
  resetErrorFeedback(): void {
    for (const e of this.#errors) e.fill(0);
  }

  /** Trains and submits the replica's current round (when this peer is a member). */
  async submit(): Promise<RoundReport> {
    const r = this.replica;
    const cfg = r.cfg;
    const round = r.round;
    const membership = await readMembership(r);
    const members = membership?.members ?? [];
    const report: RoundReport = {
      round,
      loss: NaN,
      tokens: 0,
      payloadBytes: 0,
      submitted: false,
      member: false,
      epoch: membership?.epoch ?? 0,
      shards: 0,
    };
    if (!members.includes(this.pair.address)) return report;
    report.member = true;
    if (membership!.epoch !== this.#epoch) {
      const shards = assignShards(r.bus.names.run, cfg.data.shards, members).get(this.pair.address) ?? [];
      // Train only on shards checked against the manifest. Until they are, sit rounds out
      // (still applying every selection) and adopt the epoch at a later boundary.
      const why = await this.data?.ready(shards, cfg.roundDeadlineSeconds * 500);
      if (why) {
        report.dataProblem = why;
        return report;
      }
      this.#epoch = membership!.epoch;
      this.#shards = shards;
      r.engine.setShards(this.#shards);
      // Kept on disk while attached: the engine re-reads them when a config epoch rebuilds it.
      this.data?.want("attached", this.#shards);
      r.log.info(
        `adopted membership epoch ${this.#epoch}: ${members.length} members, shards [${this.#shards.join(",")}]`,
      );
    }
    report.shards = this.#shards.length;
    if (this.#shards.length === 0) return report;

    const start = r.theta;
    r.engine.setParameters(start);
    const t0 = performance.now();
    // TEST FAULT INJECTION (off unless COVENANT_TEST_FAULT_INJECTION is set): test-fault-injection.ts.
    const fault = faultAt(TEST_FAULT, round);
    const trained = await r.engine.train(stepsUnder(fault, cfg.innerSteps));
    const elapsed = (performance.now() - t0) / 1000;
    for (let i = 0; i < cfg.innerSteps; i++) r.metrics.innerStepSeconds.observe(elapsed / cfg.innerSteps);
    r.metrics.tokens.inc(trained.tokens);
    r.metrics.loss.set(trained.loss);
    report.loss = trained.loss;
    report.tokens = trained.tokens;

    // Pseudo-gradient: delta = theta_start - theta_end; the weights go back to theta_start.
    const end = r.engine.getParameters();
    const deltas = start.map((s, i) => {
      const d = new Float32Array(s.length);
      const e = end[i]!;
      for (let j = 0; j < s.length; j++) d[j] = s[j]! - e[j]!;
      return d;
    });
    r.engine.setParameters(start);
    corrupt(fault, deltas, round);

    const c0 = performance.now();
    let payload: Uint8Array;
    try {
      payload = r.codec.compress(deltas, this.#errors).slice();
    } catch (err) {
      this.resetErrorFeedback();
      // A payload no receiver would accept (a value beyond the quantization bound) or a
      // non-finite error buffer (a non-finite or out-of-bound dense value): the codec changed
      // nothing; the buffers start again from zero and this member sits the round out rather
      // than exit (the next round trains on).
      if (!(err instanceof CodecError) || (err.code !== "quant" && err.code !== "nonfinite")) throw err;
      r.metrics.compressFailures.inc({ reason: err.code });
      report.compressProblem = `${err.code}: ${err.message}; error feedback reset`;
      return report;
    }
    r.metrics.compressSeconds.observe((performance.now() - c0) / 1000);
    const dense = start.reduce((a, t) => a + t.length * 4, 0);
    r.metrics.compressionRatio.set(dense / payload.length);

    const envelope = signEnvelope(
      { run: r.bus.names.run, round, format: payloadFormat(cfg) },
      payload,
      this.pair,
    );
    await r.bus.putPayload(this.pair.address, round, payload);
    await r.bus.publish(
      r.bus.names.submit(round, this.pair.address),
      encodeAnnouncement(envelope),
      // The stream deduplicates by this id across every subject: it names the hotkey, or a
      // second peer's identical payload (two free-riders' zeros) would be dropped unseen.
      `${round}-${this.pair.address}-${envelope.digest}`,
    );
    r.metrics.payloadBytes.inc({ direction: "sent" }, payload.length);
    report.payloadBytes = payload.length;
    report.submitted = true;
    return report;
  }
}
