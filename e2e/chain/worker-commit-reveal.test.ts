/**
 * The validator's weight duty against the local chain on both kinds of subnet: set_weights on
 * a plain subnet; on one with CommitRevealWeightsEnabled, commit_weights now and reveal_weights
 * in the reveal epoch, from the commit kept in the state directory, by the same duty or by a
 * new one (a restarted worker). A commit whose stored values do not match what the chain holds,
 * or whose window has passed, is given up without sending a reveal. Blocks are made only on
 * request (and for each transaction the duty submits), so the epochs are exact: the
 * commit-reveal subnet is netuid 5 with tempo 10, epoch(b) = (b + 6) / 11.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter } from "prom-client";
import type { Log } from "../../worker/log.ts";
import { WorkerChain, type ChainWeightCommit } from "../../worker/chain/client.ts";
import { ChainDuties } from "../../worker/chain/duties.ts";
import { FileCommitStore } from "../../worker/chain/pending.ts";
import { commitHash } from "./dispatch.ts";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";
import { accountHex } from "./storage.ts";
import { advanceTo } from "./test-tx.ts";

const PLAIN = 3;
const CR = 5;

describe("the validator's weights on plain and commit-reveal subnets", () => {
  let lc: LocalChain;
  let control: RawRpc;
  let reader: WorkerChain;
  const root = mkdtempSync(join(tmpdir(), "covenant-worker-cr-"));
  const validator = seededKeys(devKeyring(), 0).hot;
  const hot = (i: number) => seededKeys(devKeyring(), i).hot.address;
  const scores = (a: number, b: number) => () =>
    new Map([
      [hot(1), a],
      [hot(2), b],
    ]);
  const running: ChainDuties[] = [];
  let counters = 0;

  before(async () => {
    lc = await startLocalChain({
      netuid: PLAIN,
      neurons: 4,
      validators: 1,
      blockTimeMs: 0,
      subnet: { weightsSetRateLimit: 0n },
      extraSubnets: [{ netuid: CR, subnet: { commitRevealWeightsEnabled: true, tempo: 10 } }],
    });
    control = await RawRpc.connect(lc.url);
    reader = await WorkerChain.connect({
      endpoint: lc.url,
      netuid: CR,
      hotkey: validator,
      timeoutMs: 20_000,
    });
  });
  after(async () => {
    for (const d of running) await d.stop();
    await reader?.disconnect();
    control?.close();
    await lc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const recordingLog = (): Log & { lines: string[] } => {
    const lines: string[] = [];
    return {
      lines,
      info: (m) => lines.push(`INFO ${m}`),
      warn: (m) => lines.push(`WARN ${m}`),
      error: (m) => lines.push(`ERROR ${m}`),
    };
  };

  /** A validator's duty on `netuid`, its pending commits in `stateDir`; reveals it sends are recorded. */
  function duty(netuid: number, stateDir: string) {
    const log = recordingLog();
    const calls = new Counter({
      name: `test_chain_calls_${counters++}`,
      help: "chain calls",
      labelNames: ["call", "result"] as const,
      registers: [],
    });
    const reveals: unknown[][] = [];
    const d = new ChainDuties({
      endpoint: lc.url,
      netuid,
      hotkey: validator,
      register: false,
      payloadLocation: "validator-bucket",
      setWeightsEveryRounds: 1,
      log,
      calls,
      stateDir,
      revealPollMs: 0,
      timeoutMs: 20_000,
      connect: async (o) => {
        const c = await WorkerChain.connect(o);
        const reveal = c.revealWeights.bind(c);
        c.revealWeights = (...a: Parameters<WorkerChain["revealWeights"]>) => {
          reveals.push(a);
          return reveal(...a);
        };
        return c;
      },
    });
    running.push(d);
    const count = async (call: string, result: string) =>
      (await calls.get()).values.find((v) => v.labels.call === call && v.labels.result === result)?.value ??
      0;
    return { d, log, count, reveals };
  }

  /** Waits for the duty, making a block whenever the pool holds a transaction. */
  async function settle(d: ChainDuties): Promise<void> {
    let done = false;
    const idle = d.idle().finally(() => (done = true));
    while (!done) {
      if (lc.chain.pending().length > 0) lc.chain.produce();
      await new Promise((r) => setTimeout(r, 5));
    }
    await idle;
  }

  const weightsOn = async (netuid: number) =>
    (await reader.api.query.subtensorModule!.weights!(netuid, 0)).toJSON() as [number, number][];
  const onChain = (): Promise<ChainWeightCommit[]> => reader.weightCommits();
  const stored = async (dir: string) =>
    (await new FileCommitStore(dir, CR, validator.address).load()).commits;

  it("on a commit-reveal subnet commits, then reveals in the reveal epoch", async () => {
    const dir = join(root, "a");
    const { d, log, count, reveals } = duty(CR, dir);
    d.start();
    d.afterRound(1, scores(0.5, 0.25));
    await settle(d);
    assert.equal(await count("commit_weights", "ok"), 1, log.lines.join("\n"));
    assert.equal(await count("set_weights", "ok"), 0);
    const [c, ...more] = await onChain();
    assert.ok(c && more.length === 0);
    // The commit kept in the state directory is the one the chain holds.
    const [mine] = await stored(dir);
    assert.ok(mine);
    assert.equal(mine.hash, c.hash);
    assert.equal(mine.commitBlock, c.commitBlock);
    assert.deepEqual(
      [mine.uids, mine.values],
      [
        [1, 2],
        [65535, 32768],
      ],
    );
    assert.equal(
      commitHash(accountHex(validator.address), CR, mine.uids, mine.values, mine.salt, mine.versionKey),
      c.hash,
    );
    assert.equal(mine.salt.length, 8);
    // Neither the salt nor the hash nor the values reach a log line before the reveal.
    const secret = [c.hash.slice(2, 18), mine.salt.join(","), "[1,2]"];
    for (const l of log.lines) for (const s of secret) assert.ok(!l.includes(s), l);
    assert.ok(
      log.lines.some((l) => l.includes(`reveal in blocks ${c.firstRevealBlock}..${c.lastRevealBlock}`)),
      log.lines.join("\n"),
    );
    assert.deepEqual(await weightsOn(CR), []);

    // Not yet: the next block is still in the commit's epoch.
    advanceTo(lc, c.firstRevealBlock - 2);
    d.afterRound(2);
    await settle(d);
    assert.equal(reveals.length, 0);
    assert.equal(d.pendingCommits, 1);
    // The next block is the first of the reveal epoch.
    advanceTo(lc, c.firstRevealBlock - 1);
    d.afterRound(3);
    await settle(d);
    assert.equal(reveals.length, 1, log.lines.join("\n"));
    assert.equal(lc.chain.best.number, c.firstRevealBlock);
    assert.equal(await count("reveal_weights", "ok"), 1);
    assert.deepEqual(await weightsOn(CR), [
      [1, 65535],
      [2, 32768],
    ]);
    assert.deepEqual(await onChain(), []);
    assert.deepEqual(await stored(dir), []);
    assert.equal(d.pendingCommits, 0);
    assert.ok(log.lines.some((l) => l.includes("revealed the weights committed after round 1")));
    await d.stop();
  });

  it("on a plain subnet sets weights directly", async () => {
    const { d, log, count } = duty(PLAIN, join(root, "b"));
    d.start();
    d.afterRound(1, scores(0.25, 1));
    await settle(d);
    assert.equal(await count("set_weights", "ok"), 1, log.lines.join("\n"));
    assert.equal(await count("commit_weights", "ok"), 0);
    assert.ok(log.lines.some((l) => l.includes("round 1: set weights for uids [1,2]")));
    assert.deepEqual(await weightsOn(PLAIN), [
      [1, 16384],
      [2, 65535],
    ]);
    assert.equal(
      (await reader.api.query.subtensorModule!.weightCommits!(PLAIN, validator.address)).toJSON(),
      null,
    );
    await d.stop();
  });

  it("a restarted duty reveals the commit its predecessor made", async () => {
    const dir = join(root, "c");
    const first = duty(CR, dir);
    first.d.start();
    first.d.afterRound(7, scores(1, 0.5));
    await settle(first.d);
    await first.d.stop();
    const [c] = await onChain();
    assert.ok(c);
    assert.equal((await stored(dir)).length, 1);

    const next = duty(CR, dir);
    advanceTo(lc, c.firstRevealBlock + 3);
    next.d.start();
    await settle(next.d);
    assert.equal(next.reveals.length, 1, next.log.lines.join("\n"));
    assert.equal(await next.count("reveal_weights", "ok"), 1);
    assert.ok(next.log.lines.some((l) => l.includes("1 weight commit(s) waiting for their reveal")));
    assert.ok(!next.log.lines.some((l) => l.includes("cannot be revealed")), next.log.lines.join("\n"));
    assert.deepEqual(await weightsOn(CR), [
      [1, 65535],
      [2, 32768],
    ]);
    assert.deepEqual(await onChain(), []);
    assert.deepEqual(await stored(dir), []);
    await next.d.stop();
  });

  it("never sends a reveal with a wrong salt, and gives up a commit whose window has passed", async () => {
    const dir = join(root, "d");
    const first = duty(CR, dir);
    first.d.start();
    first.d.afterRound(9, scores(0.5, 1));
    await settle(first.d);
    await first.d.stop();
    const [c] = await onChain();
    assert.ok(c);
    const file = new FileCommitStore(dir, CR, validator.address).file;
    const good = readFileSync(file, "utf8");
    const weightsBefore = await weightsOn(CR);
    advanceTo(lc, c.firstRevealBlock);

    // A salt that no longer matches the stored hash: the record is inconsistent.
    const doc = JSON.parse(good) as {
      commits: { salt: number[]; hash: string; uids: number[]; values: number[] }[];
    };
    doc.commits[0]!.salt[0] = (doc.commits[0]!.salt[0]! + 1) % 65536;
    writeFileSync(file, JSON.stringify(doc));
    const tampered = duty(CR, dir);
    tampered.d.start();
    await settle(tampered.d);
    await tampered.d.stop();
    assert.equal(tampered.reveals.length, 0);
    assert.equal(await tampered.count("reveal_weights", "mismatch"), 1);

    // A consistent record whose hash the chain does not hold (the wrong salt, hashed again).
    const m = doc.commits[0]!;
    m.hash = commitHash(accountHex(validator.address), CR, m.uids, m.values, m.salt, 0n);
    writeFileSync(file, JSON.stringify(doc));
    const rehashed = duty(CR, dir);
    rehashed.d.start();
    await settle(rehashed.d);
    await rehashed.d.stop();
    assert.equal(rehashed.reveals.length, 0);
    assert.equal(await rehashed.count("reveal_weights", "not_on_chain"), 1);
    assert.ok(
      rehashed.log.lines.some((l) => l.includes("1 unrevealed weight commit(s) on chain are not in")),
      rehashed.log.lines.join("\n"),
    );
    // The chain still holds the commit; nothing was revealed.
    assert.deepEqual(await onChain(), [c]);
    assert.deepEqual(await weightsOn(CR), weightsBefore);
    assert.deepEqual(await stored(dir), []);

    // The right record again, after the reveal window: given up, not sent.
    writeFileSync(file, good);
    advanceTo(lc, c.lastRevealBlock);
    const late = duty(CR, dir);
    late.d.start();
    await settle(late.d);
    await late.d.stop();
    assert.equal(late.reveals.length, 0);
    assert.equal(await late.count("reveal_weights", "expired"), 1);
    assert.ok(
      late.log.lines.some((l) =>
        l.includes(
          `not revealed: its reveal window, blocks ${c.firstRevealBlock}..${c.lastRevealBlock}, has passed`,
        ),
      ),
      late.log.lines.join("\n"),
    );
    assert.deepEqual(await stored(dir), []);
    assert.deepEqual(await weightsOn(CR), weightsBefore);
  });

  it("re-reads the subnet's setting each time weights are due", async () => {
    const { d, log, count } = duty(CR, join(root, "e"));
    await control.result("covenantTest_setSubnetParams", [CR, { commitRevealWeightsEnabled: false }]);
    lc.chain.produce();
    d.start();
    d.afterRound(1, scores(1, 1));
    await settle(d);
    assert.equal(await count("set_weights", "ok"), 1, log.lines.join("\n"));
    assert.deepEqual(await weightsOn(CR), [
      [1, 65535],
      [2, 65535],
    ]);
    await control.result("covenantTest_setSubnetParams", [CR, { commitRevealWeightsEnabled: true }]);
    lc.chain.produce();
    d.afterRound(2, scores(1, 0.5));
    await settle(d);
    assert.equal(await count("commit_weights", "ok"), 1, log.lines.join("\n"));
    assert.equal(d.pendingCommits, 1);
    await d.stop();
  });
});
