// test-limit: 600 s
// Adversarial suite: honest miners and attackers train llama3-tiny on a real nats-server
// with the real worker processes and validator (e2e/worker/harness.ts's local run). For
// each attacker it MEASURES whether its payload was aggregated after the first rounds, its
// rating against the honest ones (the validator's per-round ratings line), and the held-out
// loss (the validator's evaluation on random data) against a run of the honest miners alone,
// and prints the table. Asserted are only the acceptance bounds: no harmful attacker
// aggregated after the first rounds, final loss within 2% of the run without attackers,
// honest miners never refused, every peer holding the same weights after every round.
// `make test` runs the reduced matrix; COVENANT_ADVERSARIAL_FULL=1 runs the full one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import type { BusClient, StreamMessage } from "../../protocol/bus/client.ts";
import { verifySelection } from "../../protocol/selection.ts";
import type { SignedSelection } from "../../protocol/selection.ts";
import { openKernels } from "../../worker/native.ts";
import { startLocalRun } from "../worker/harness.ts";
import type { LocalRun } from "../worker/harness.ts";
import type { ManagedProcess } from "../stack/process.ts";
import { runCopier, startFaulty } from "./actors.ts";
import type { CopyKind } from "./actors.ts";

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const FULL = process.env.COVENANT_ADVERSARIAL_FULL === "1";
const ROUNDS = FULL ? 10 : 7;
const HONEST = ["Alice", "Bob", "Carol"];
/** Rounds after which an attacker must no longer be aggregated (its rating needs evidence). */
const FIRST_ROUNDS = 2;

interface Attacker {
  name: string;
  what: string;
  /** A fault for a faulty miner, or a copier kind. */
  fault?: string;
  copy?: CopyKind;
  /** Harmful: must not be aggregated after the first rounds (from `from` for a turncoat). */
  harmful: boolean;
  from?: number;
  /** What its own log must say each round it sits out (a miner that cannot submit). */
  sitsOut?: RegExp;
}

interface Scenario {
  name: string;
  gatherPeers: number;
  attackers: Attacker[];
}

const flip: Attacker = { name: "Flip", what: "sign-flip", fault: "sign-flip", harmful: true };
const noise: Attacker = { name: "Noise", what: "noise of honest norm", fault: "noise", harmful: true };
const zeros: Attacker = { name: "Zeros", what: "free-rider (zeros)", fault: "zeros", harmful: true };
const turn: Attacker = {
  name: "Turn",
  what: "honest, sign-flip from round 4",
  fault: "turn:4:sign-flip",
  harmful: true,
  from: 4,
};
const moved: Attacker = { name: "Mover", what: "copy, 80% of indices moved", copy: "moved", harmful: true };
const stitched: Attacker = {
  name: "Stitch",
  what: "stitched from 3 honest",
  copy: "stitched",
  harmful: true,
};
const scale: Attacker = { name: "Scale", what: "own update x100", fault: "scale:100", harmful: false };
const huge: Attacker = {
  name: "Huge",
  what: "update x1e30, beyond the codec's bound",
  fault: "scale:1e30",
  harmful: true,
  sitsOut: /round \d+: not contributing .*: compression failed: (quant|nonfinite): /,
};
const lazy: Attacker = { name: "Lazy", what: "1 inner step of H", fault: "lazy:1", harmful: false };
const collude: Attacker = {
  name: "Col1",
  what: "colluders: one negated mean, two hotkeys",
  copy: "collude",
  harmful: true,
};

const SCENARIOS: Scenario[] = FULL
  ? [
      { name: "G=20 (defaults)", gatherPeers: 20, attackers: [flip, noise, zeros, turn, moved, stitched] },
      { name: "G=20 (defaults)", gatherPeers: 20, attackers: [scale, lazy, collude, huge] },
      { name: "G=2", gatherPeers: 2, attackers: [flip, noise, zeros, turn, moved, stitched] },
    ]
  : // Not Huge: a member that never submits holds every round to its deadline (30 s here).
    [{ name: "G=20 (defaults)", gatherPeers: 20, attackers: [flip, zeros, turn, moved, stitched] }];

interface Measured {
  selections: Map<number, SignedSelection>;
  /** The validator's held-out loss at the start of each round. */
  loss: Map<number, number>;
  /** Weights digests reported per applied round. */
  weights: Map<number, Set<string>>;
  /** Last rating line: hotkey prefix -> rating. */
  ratings: Map<string, number>;
  /** Largest copy share over the rounds: hotkey prefix -> share. */
  shares: Map<string, number>;
  hotkeys: Map<string, string>;
  /** Each faulty worker's log and how it exited (undefined: still running when the run ended). */
  faulty: Map<string, { log: string; exit?: { code: number | null; signal: string | null } }>;
}

/**
 * One run of a scenario. The control run has the same members (so rendezvous gives the
 * honest miners the same shards and they train exactly as in the attacked run), but every
 * attacker is a free-rider that is never aggregated: the run "without the attackers".
 */
async function runScenario(s: Scenario, control: boolean): Promise<Measured> {
  const attackers: Attacker[] = s.attackers.flatMap((a) => {
    const all = a.copy === "collude" ? [a, { ...a, name: "Col2" }] : [a];
    return control ? all.map((x) => ({ ...x, fault: "zeros", copy: undefined })) : [a];
  });
  const copierNames = attackers.flatMap((a) =>
    a.copy === "collude" ? [a.name, "Col2"] : a.copy ? [a.name] : [],
  );
  const run: LocalRun = await startLocalRun({
    run: "adv",
    miners: HONEST,
    validator: "Val",
    extraMembers: [...attackers.filter((a) => a.fault).map((a) => a.name), ...copierNames],
    rounds: ROUNDS,
    innerSteps: 4,
    // Enough shards that rendezvous gives every member some (a member without any sits out).
    shards: 64,
    tokensPerShard: 4_000,
    sequenceLength: 32,
    roundDeadlineSeconds: 30,
    checkpointEvery: 100,
    spec: {
      aggregation: { gatherPeers: s.gatherPeers, reserves: 10, minPeers: 1 },
      validator: { sequences: 8 },
    },
  });
  const ac = new AbortController();
  const m: Measured = {
    selections: new Map(),
    loss: new Map(),
    weights: new Map(),
    ratings: new Map(),
    shares: new Map(),
    hotkeys: new Map(),
    faulty: new Map(),
  };
  const clients: BusClient[] = [];
  const procs: ManagedProcess[] = [];
  const tasks: Promise<void>[] = [];
  let closeKernels: (() => void) | undefined;
  try {
    for (const n of [...HONEST, ...attackers.map((a) => a.name), ...copierNames])
      m.hotkeys.set(n, run.identity(n).hotkey);
    const watch = await run.bus.connect("operator", "adv-watch");
    clients.push(watch);
    const validatorKey = run.identity("Val").hotkey;
    const record = (msg: StreamMessage) => {
      const t = msg.subject.split(".");
      if (t[2] === "round" && t[4] === "selection") {
        const v = verifySelection(msg.data, { run: "adv", round: Number(t[3]), validator: validatorKey });
        if (v.ok) m.selections.set(v.value.round, v.value);
      }
    };
    tasks.push(
      (async () => {
        for await (const msg of watch.messages("covenant.adv.>", ac.signal)) record(msg);
      })().catch(() => undefined),
    );
    procs.push((await run.start("Val")).proc);
    for (const h of HONEST) procs.push((await run.start(h)).proc);
    for (const a of attackers) if (a.fault) procs.push(await startFaulty(run, a.name, a.fault));
    if (copierNames.length > 0) {
      const k = await openKernels(run.cfg, join(run.dir, "data"), "copier");
      closeKernels = k.close;
      for (const a of attackers.filter((x) => x.copy)) {
        const names = a.copy === "collude" ? [a.name, "Col2"] : [a.name];
        const cs = [];
        for (const n of names) {
          const bus = await run.bus.connect(run.identity(n));
          clients.push(bus);
          cs.push({ bus, pair: run.identity(n).pair });
        }
        tasks.push(
          runCopier(
            { name: a.name, kind: a.copy!, clients: cs },
            {
              run: "adv",
              format: run.cfg.compression.wireFormat,
              rounds: ROUNDS,
              victims: HONEST.map((h) => run.identity(h).hotkey),
              codec: k.codec,
              watch,
            },
            ac.signal,
          ).catch(() => undefined),
        );
      }
    }
    // The run is over when the validator has closed the last round (it then stops). Losses
    // and weights come from the peers' logs: every peer logs the weights digest after each
    // round, the validator the held-out loss at each round's start.
    const logOf = (n: string) => readFileSync(join(run.dir, `${n}.log`), "utf8").split("\n");
    const closed = (l: string) => l.includes(`round ${ROUNDS - 1}: `) && l.includes(" submissions, ");
    const until = Date.now() + 480_000;
    while (!logOf("Val").some(closed) && Date.now() < until) {
      // A worker that failed, or a validator that stopped, ends the wait at once.
      for (const [i, p] of procs.entries())
        if (!p.running && (i === 0 || (await p.exited).code !== 0))
          throw new Error(`${p.name} exited before the run finished; its log:\n${p.logTail(30)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(logOf("Val").some(closed), `the run did not finish; validator log:\n${procs[0]!.logTail(30)}`);
    for (let i = 0; i < 100 && m.selections.size < ROUNDS; i++) await new Promise((r) => setTimeout(r, 100));
    await Promise.all(
      procs.map((p) => p.exited.then(() => undefined)).map((p) => Promise.race([p, pause(15_000)])),
    );
    for (const a of attackers.filter((x) => x.fault)) {
      const p = procs.find((x) => x.name === `faulty-${a.name}`)!;
      m.faulty.set(a.name, {
        log: logOf(a.name).join("\n"),
        exit: p.running ? undefined : await p.exited,
      });
    }
    const roundLine = /round (\d+): .*weights ([0-9a-f]{12})/;
    for (const n of ["Val", ...HONEST, ...attackers.filter((a) => a.fault).map((a) => a.name)])
      for (const l of logOf(n)) {
        const x = roundLine.exec(l);
        if (!x || !(l.includes(" submissions, ") || l.includes(": applied "))) continue;
        const set = m.weights.get(Number(x[1])) ?? new Set<string>();
        set.add(x[2]!);
        m.weights.set(Number(x[1]), set);
        const loss = / loss ([0-9.]+),/.exec(l);
        if (n === "Val" && loss) m.loss.set(Number(x[1]), Number(loss[1]));
      }
    // The validator's ratings lines: prefix=rating/round score/copy share/own-data score.
    for (const line of logOf("Val").filter((l) => l.includes(": ratings ")))
      for (const kv of line.split(": ratings ")[1]?.split(" ") ?? []) {
        const [h, v] = kv.split("=");
        if (!h || !v) continue;
        const [rating, , share] = v.split("/").map(Number);
        m.ratings.set(h, rating!);
        if (Number.isFinite(share)) m.shares.set(h, Math.max(m.shares.get(h) ?? 0, share!));
      }
    return m;
  } finally {
    ac.abort();
    await Promise.all(tasks);
    closeKernels?.();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(procs.map((p) => p.stop(5_000)));
    await run.stop();
  }
}

const rows: string[][] = [];
after(() => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log("\n" + rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n") + "\n");
});

/** The validator's held-out loss over the last rounds (each round samples its own data). */
const LAST = 3;
const finalLoss = (m: Measured) => {
  const xs = Array.from({ length: LAST }, (_, k) => m.loss.get(ROUNDS - 1 - k)!);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};

describe("adversarial: the validator excludes what its scores condemn", { timeout: 3_600_000 }, () => {
  rows.push([
    "scenario",
    "attacker",
    "behaviour",
    "aggregated after r1",
    "rating",
    "honest median",
    "copy share (honest max)",
    `loss (last ${LAST})`,
    "without attackers",
    "difference",
  ]);
  for (const s of SCENARIOS) {
    test(`${s.name}: ${s.attackers.map((a) => a.what).join(", ")}`, { timeout: 900_000 }, async () => {
      const control = await runScenario(s, true);
      const m = await runScenario(s, false);
      const final = finalLoss(m);
      const base = finalLoss(control);
      const rel = (final - base) / base;
      const rating = (n: string) => m.ratings.get(m.hotkeys.get(n)!.slice(0, 8));
      const honest = HONEST.map(rating)
        .filter((x): x is number => x !== undefined)
        .sort((a, b) => a - b);
      const honestMedian = honest[honest.length >> 1] ?? NaN;
      const share = (n: string) => m.shares.get(m.hotkeys.get(n)!.slice(0, 8));
      const honestShare = Math.max(...HONEST.map((h) => share(h) ?? 0));
      const aggregated = (n: string, from: number) =>
        [...m.selections.values()]
          .filter((x) => x.round >= from)
          .filter((x) => x.selected.some((p) => p.hotkey === m.hotkeys.get(n)))
          .map((x) => x.round);
      for (const a of s.attackers) {
        const from = a.from ?? FIRST_ROUNDS;
        rows.push([
          s.name,
          a.name,
          a.what,
          `${aggregated(a.name, from).length}/${ROUNDS - from}`,
          rating(a.name)?.toExponential(2) ?? "-",
          honestMedian.toExponential(2),
          `${share(a.name)?.toFixed(2) ?? "-"} (${honestShare.toFixed(2)})`,
          final.toFixed(4),
          base.toFixed(4),
          `${(rel * 100).toFixed(2)}%`,
        ]);
      }
      for (const a of s.attackers.filter((x) => x.harmful)) {
        const names = a.copy === "collude" ? [a.name, "Col2"] : [a.name];
        for (const n of names)
          assert.deepEqual(aggregated(n, a.from ?? FIRST_ROUNDS), [], `${n} (${a.what}) was aggregated`);
      }
      // A miner whose update the codec cannot encode sits each round out and keeps going.
      for (const a of s.attackers.filter((x) => x.sitsOut)) {
        const f = m.faulty.get(a.name)!;
        assert.equal(f.log.split("\n").filter((l) => a.sitsOut!.test(l)).length, ROUNDS, f.log);
        assert.deepEqual(f.exit, { code: 0, signal: null }, `${a.name} ends cleanly`);
      }
      assert.ok(rel <= 0.02, `held-out loss ${final} vs ${base} without attackers`);
      for (const [r, digests] of control.weights)
        assert.equal(digests.size, 1, `control round ${r}: weights differ`);
      for (const [r, sel] of m.selections)
        for (const h of HONEST)
          assert.equal(sel.rejected[m.hotkeys.get(h)!], undefined, `round ${r}: honest ${h} refused`);
      for (const [r, digests] of m.weights)
        assert.equal(digests.size, 1, `round ${r}: peers' weights differ`);
    });
  }
});
