// Acceptance: 1 validator and 3 miners train llama3-tiny on the CPU backend over a
// real nats-server. Checked: loss falls; after every round all peers hold
// bit-identical weights; forged, malformed, oversized, replayed, copied and late
// submissions are refused or penalised with the counted reason while training goes
// on; a miner killed mid-round catches up and contributes again; nats-server
// restarted mid-run loses no accepted payload.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { u8aToHex } from "@polkadot/util";
import type { BusClient, StreamMessage } from "../../protocol/bus/client.ts";
import {
  canonicalBytes,
  encodeAnnouncement,
  ENVELOPE_VERSION,
  payloadDigest,
  signEnvelope,
} from "../../protocol/envelope.ts";
import type { SignedEnvelope } from "../../protocol/envelope.ts";
import { verifySelection } from "../../protocol/selection.ts";
import type { SignedSelection } from "../../protocol/selection.ts";
import { identities } from "../bus/fixture.ts";
import { metricValue, startLocalRun } from "./harness.ts";
import type { LocalRun, Worker } from "./harness.ts";

const RUN = "accept";
const ROUNDS = 22;
const MINERS = ["Alice", "Bob", "Carol"];

interface Heartbeat {
  hotkey: string;
  role: string;
  weights: string;
  appliedRound?: number;
  loss?: number;
}

describe(
  "covenant-worker acceptance: 1 validator + 3 miners, llama3-tiny on CPU",
  { timeout: 900_000 },
  () => {
    let run: LocalRun;
    let watch: BusClient;
    let mallory: BusClient;
    const selections = new Map<number, SignedSelection>();
    const beats: Heartbeat[] = [];
    const ac = new AbortController();
    let validator: Worker;
    const workers = new Map<string, Worker>();
    let reader: Promise<void>;
    const exits = new Map<unknown, { code: number | null; signal: string | null }>();
    const track = (w: Worker) => {
      void w.proc.exited.then((e) => exits.set(w.proc, e));
      return w;
    };

    before(async () => {
      run = await startLocalRun({
        run: RUN,
        miners: MINERS,
        validator: "Val",
        extraMembers: ["Mallory"],
        rounds: ROUNDS,
        innerSteps: 8,
        shards: 16,
        tokensPerShard: 10_000,
        sequenceLength: 32,
        roundDeadlineSeconds: 15,
        checkpointEvery: 5,
      });
      // Mallory is a member of the run (it may write under its own hotkey) but runs no worker.
      await run.bus.connect("operator").then(async (op) => {
        await (
          await op.state()
        ).put(
          "membership",
          JSON.stringify({ epoch: 1, members: MINERS.map((m) => run.identity(m).hotkey).sort() }),
        );
        await op.close();
      });
      watch = await run.bus.connect("operator", "test-watch");
      mallory = await run.bus.connect(run.identity("Mallory"));
      const validatorKey = run.identity("Val").hotkey;
      reader = (async () => {
        for await (const m of watch.messages(`covenant.${RUN}.>`, ac.signal)) record(m, validatorKey);
      })().catch(() => undefined);
      validator = track(await run.start("Val"));
      for (const m of MINERS) workers.set(m, track(await run.start(m)));
    });

    function record(m: StreamMessage, validatorKey: string) {
      const t = m.subject.split(".");
      if (t[2] === "round" && t[4] === "selection") {
        const v = verifySelection(m.data, { run: RUN, round: Number(t[3]), validator: validatorKey });
        if (v.ok) selections.set(v.value.round, v.value);
      } else if (t[2] === "heartbeat") {
        beats.push(JSON.parse(new TextDecoder().decode(m.data)) as Heartbeat);
      }
    }

    after(async () => {
      ac.abort();
      await reader;
      await watch?.close();
      await mallory?.close();
      await run?.stop();
    });

    async function selectionOf(round: number, timeoutMs = 180_000): Promise<SignedSelection> {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const s = selections.get(round);
        if (s) return s;
        for (const w of [validator, ...workers.values()]) {
          const exit = exits.get(w.proc);
          if (exit && exit.code !== 0 && exit.signal !== "SIGKILL")
            throw new Error(
              `${w.proc.name} failed (${exit.signal ?? exit.code}); its log:\n${w.proc.logTail(40)}`,
            );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no selection for round ${round}; validator log:\n${validator.proc.logTail(40)}`);
    }

    async function announcement(round: number, hotkey: string): Promise<SignedEnvelope> {
      for (let i = 0; i < 1200; i++) {
        const m = await watch.lastMessage(watch.names.submit(round, hotkey));
        if (m) return JSON.parse(new TextDecoder().decode(m.data)) as SignedEnvelope;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no announcement of round ${round}`);
    }

    const membership = async (epoch: number, names: string[]) => {
      const op = await run.bus.connect("operator");
      await (
        await op.state()
      ).put(
        "membership",
        JSON.stringify({ epoch, members: names.map((n) => run.identity(n).hotkey).sort() }),
      );
      await op.close();
    };

    test("trains 22 rounds through attacks, a crash and a bus restart", async () => {
      const mal = run.identity("Mallory");
      const [eve] = await identities([{ name: "Eve", role: "miner" }]);
      const fmt = run.cfg.compression.wireFormat;
      const announce = (round: number, env: SignedEnvelope, id: string) =>
        mallory.publish(mallory.names.submit(round, mal.hotkey), encodeAnnouncement(env), id);
      const killedAt = 10;
      const restartedAfter = 11;
      const natsRestartAt = 15;
      let validatorMetrics = "";
      await selectionOf(0);
      await membership(2, [...MINERS, "Mallory"]);
      await selectionOf(1);
      for (let round = 2; round < ROUNDS; round++) {
        if (round === 2) {
          // Forged: an envelope naming Mallory, signed by another key.
          const data = randomBytes(4096);
          await mallory.putPayload(mal.hotkey, round, data);
          const fields = {
            version: ENVELOPE_VERSION,
            run: RUN,
            round,
            hotkey: mal.hotkey,
            format: fmt,
            size: data.length,
            digest: payloadDigest(data),
          };
          await announce(
            round,
            { ...fields, signature: u8aToHex(eve!.pair.sign(canonicalBytes(fields))) },
            "forged",
          );
        } else if (round === 3) {
          // Malformed: correctly signed bytes that are not a codec payload.
          const data = randomBytes(2048);
          await mallory.putPayload(mal.hotkey, round, data);
          await announce(round, signEnvelope({ run: RUN, round, format: fmt }, data, mal.pair), "malformed");
        } else if (round === 4) {
          // Oversized: announced larger than any payload of the run may be.
          const data = randomBytes(run.cfg.model.parameters * 4 + 1);
          await mallory.putPayload(mal.hotkey, round, data);
          await announce(round, signEnvelope({ run: RUN, round, format: fmt }, data, mal.pair), "oversized");
        } else if (round === 5) {
          // Replayed: Mallory's signed envelope of round 3 sent again for round 5.
          const old = await announcement(3, mal.hotkey);
          await announce(round, old, "replayed");
        } else if (round === 6 || round === 7) {
          // Copied (round 6): Alice's payload re-signed as Mallory's. Late (round 7): the
          // same, sent after the round closed. Mallory leaves the membership afterwards.
          const alice = run.identity("Alice");
          const env = await announcement(round, alice.hotkey);
          const data = await watch.getPayload(alice.hotkey, round, { maxBytes: env.size });
          if (round === 7) await selectionOf(round);
          await mallory.putPayload(mal.hotkey, round, data!);
          await announce(
            round,
            signEnvelope({ run: RUN, round, format: fmt }, data!, mal.pair),
            `copy-${round}`,
          );
        } else if (round === killedAt) {
          // Killed as the round opens: while it applies the last round or trains this one.
          await workers.get("Bob")!.proc.kill();
        } else if (round === natsRestartAt) {
          await new Promise((r) => setTimeout(r, 300));
          await run.bus.nats.restart();
        }
        await selectionOf(round);
        // Mallory leaves once round 6 is closed (so it is still expected in round 6).
        if (round === 6) await membership(3, MINERS);
        // The validator's counters after the attacks (it exits after the last round).
        if (round === 9) validatorMetrics = await run.metrics(validator.metricsPort);
        if (round === restartedAfter) workers.set("Bob", track(await run.start("Bob")));
      }

      // Every peer reports its weights after the last round.
      for (
        let i = 0;
        i < 600 && new Set(beats.filter((b) => b.appliedRound === ROUNDS - 1).map((b) => b.hotkey)).size < 4;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }

      // Refusals with their counted reasons.
      const refused = (r: number) => selections.get(r)!.rejected[mal.hotkey];
      assert.equal(refused(2), "bad-signature");
      assert.equal(refused(3), "invalid-payload");
      assert.equal(refused(4), "oversized");
      assert.equal(refused(5), "stale-round");
      assert.equal(refused(6), "copied");
      assert.ok(
        [8, 9, 10].some((r) => refused(r) === "late"),
        "the late announcement of round 7 is reported with a following round",
      );
      for (let r = 2; r <= 7; r++)
        assert.ok(!selections.get(r)!.selected.some((p) => p.hotkey === mal.hotkey));
      for (const reason of [
        "bad-signature",
        "invalid-payload",
        "oversized",
        "stale-round",
        "copied",
        "late",
      ]) {
        assert.ok(
          metricValue(validatorMetrics, "covenant_worker_rejected_payloads_total", { reason }) >= 1,
          `validator counted ${reason}`,
        );
      }

      // Every round aggregated the honest miners (Bob missing only while down).
      // A round is judged by what reached the validator in time: under load a miner can miss
      // the deadline, and then there is less to aggregate. What arrived must be aggregated
      // (at least two payloads when two or more arrived).
      const vlog = readFileSync(validator.proc.logFile, "utf8");
      const arrivedIn = (r: number) =>
        Number(new RegExp(`round ${r}: (\\d+) submissions`).exec(vlog)?.[1] ?? NaN);
      for (let r = 0; r < ROUNDS; r++) {
        const chosen = selections.get(r)!.selected.map((p) => p.hotkey);
        assert.ok(
          chosen.length >= Math.min(2, arrivedIn(r)),
          `round ${r} aggregated ${chosen.length} payloads; refused ${JSON.stringify(selections.get(r)!.rejected)}; ` +
            `the validator on round ${r}:\n` +
            vlog
              .split("\n")
              .filter((l) => l.includes(`round ${r}:`))
              .join("\n"),
        );
      }
      const bob = run.identity("Bob").hotkey;
      const whileDown = selections.get(restartedAfter)!.selected.map((p) => p.hotkey);
      assert.equal(whileDown.length, 2, "the round completes with the two others while Bob is down");
      assert.ok(!whileDown.includes(bob));
      assert.ok(
        [...selections.values()].some(
          (s) => s.round > restartedAfter && s.selected.some((p) => p.hotkey === bob),
        ),
        "Bob contributes again after catching up",
      );

      // Bit-identical weights after every round, across miners and the validator.
      for (let r = 0; r < ROUNDS; r++) {
        const digests = beats.filter((b) => b.appliedRound === r);
        const peers = new Set(digests.map((b) => b.hotkey));
        assert.ok(
          peers.size >= 3,
          `round ${r}: ${peers.size} peers reported weights (${[...peers].map((h) => h.slice(0, 8)).join(",")})`,
        );
        assert.equal(
          new Set(digests.map((b) => b.weights)).size,
          1,
          `round ${r}: weights differ between peers`,
        );
      }
      const bobLate = beats.filter((b) => b.hotkey === bob && (b.appliedRound ?? -1) > restartedAfter);
      assert.ok(bobLate.length > 0, "Bob reports weights after catching up");

      // Loss falls: the validator's loss of the global model on random data.
      // Heartbeats are periodic, not one per round: a fast round may have none, so average
      // over the validator's reports of the first and the last few rounds.
      const vLoss = (from: number, to: number) => {
        const reports = beats.filter(
          (b) => b.role === "validator" && (b.appliedRound ?? -1) >= from && (b.appliedRound ?? -1) <= to,
        );
        for (const b of reports) {
          // JSON turns NaN and Infinity into null: a diverged model must fail here, not be skipped.
          assert.ok(
            typeof b.loss === "number" && Number.isFinite(b.loss),
            `round ${b.appliedRound}: validator loss ${b.loss}`,
          );
        }
        const xs = reports.map((b) => b.loss as number);
        assert.ok(xs.length > 0, `the validator reported a loss for a round in ${from}..${to}`);
        return xs.reduce((a, b) => a + b, 0) / xs.length;
      };
      const early = vLoss(0, 2);
      const late = vLoss(ROUNDS - 4, ROUNDS - 1);
      assert.ok(late < early * 0.8, `loss fell from ${early} to ${late}`);

      // Nothing accepted was lost across the nats-server restart.
      for (const [r, s] of selections) {
        for (const p of s.selected) {
          const bytes = await watch.getPayload(p.hotkey, r, { maxBytes: 64 << 20 });
          assert.ok(bytes, `payload of round ${r} from ${p.hotkey.slice(0, 8)} is still there`);
          assert.equal(payloadDigest(bytes), p.digest);
        }
      }
    });
  },
);
