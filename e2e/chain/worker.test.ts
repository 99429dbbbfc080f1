/**
 * The worker's chain calls against the local chain: register by burning, commit the payload
 * location (once), set weights as validator, and a runtime error surfacing as ChainCallError;
 * then ChainDuties, the background schedule of those calls that the worker runs.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Keyring } from "@polkadot/keyring";
import { Counter } from "prom-client";
import type { Log } from "../../worker/log.ts";
import { ChainCallError, WorkerChain } from "../../worker/chain/client.ts";
import { ChainDuties } from "../../worker/chain/duties.ts";
import { loadHotkey } from "../../worker/chain/keys.ts";
import { weightsDue, weightsFromScores } from "../../worker/chain/plan.ts";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";

const NETUID = 3;

describe("worker chain calls against the local chain", () => {
  let lc: LocalChain;
  let control: RawRpc;
  const dir = mkdtempSync(join(tmpdir(), "covenant-worker-chain-"));
  const clients: WorkerChain[] = [];

  before(async () => {
    lc = await startLocalChain({ netuid: NETUID, neurons: 4, validators: 1, blockTimeMs: 100 });
    control = await RawRpc.connect(lc.url);
  });
  after(async () => {
    for (const c of clients) await c.disconnect();
    control?.close();
    await lc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function worker(secret: string): Promise<WorkerChain> {
    const file = join(dir, `key-${clients.length}`);
    writeFileSync(file, secret, { mode: 0o600 });
    const c = await WorkerChain.connect({
      endpoint: lc.url,
      netuid: NETUID,
      hotkey: await loadHotkey(file),
      timeoutMs: 20_000,
    });
    clients.push(c);
    return c;
  }

  it("registers a funded hotkey once and commits its payload location once", async () => {
    const w = await worker("//covenant/worker/miner");
    await control.result("covenantTest_setBalance", [w.hotkeyAddress, "5000000000"]);
    // The pool checks the fee against the best block: let the balance land in one first.
    await control.result("covenantTest_advanceBlocks", [1]);
    assert.equal(await w.uid(), undefined);
    const uid = await w.ensureRegistered();
    assert.equal(uid, 4);
    assert.equal(await w.ensureRegistered(), 4, "already registered: no second burn");
    const location = "nats://covenant/runs/demo/peers/miner-0";
    assert.equal(await w.commitPayloadLocation(location), true);
    assert.equal(await w.committedLocation(), location);
    assert.equal(await w.commitPayloadLocation(location), false, "unchanged location is not re-committed");
    await assert.rejects(w.commitPayloadLocation("x".repeat(200)), /at most 128/);
  });

  it("fails registration without funds with the pool's and the runtime's errors", async () => {
    // Nothing to pay the fee with: the pool refuses the transaction, and the error says so.
    const broke = await worker("//covenant/worker/broke");
    await assert.rejects(
      broke.ensureRegistered(),
      (e: unknown) =>
        e instanceof ChainCallError &&
        e.reason === "cannot_pay_fee" &&
        e.stage === "pool" &&
        e.message.includes(`the payer ${broke.hotkeyAddress} cannot pay the transaction fee`) &&
        /Inability to pay some fees/.test(e.message),
    );
    assert.equal(await broke.uid(), undefined);
    // Enough for the fee but not the burn: the call fails in the block, the fee is kept.
    const poor = await worker("//covenant/worker/poor");
    await control.result("covenantTest_setBalance", [poor.hotkeyAddress, "100000000"]);
    await control.result("covenantTest_advanceBlocks", [1]);
    await assert.rejects(
      poor.ensureRegistered(),
      (e: unknown) => e instanceof ChainCallError && e.error === "subtensorModule.NotEnoughBalanceToStake",
    );
    assert.equal(await poor.uid(), undefined);
  });

  it("sets weights as validator every N rounds", async () => {
    const keyring = devKeyring();
    const v = await worker("//covenant/0/hot");
    assert.equal(v.hotkeyAddress, seededKeys(keyring, 0).hot.address);
    await control.result("covenantTest_setSubnetParams", [NETUID, { weightsSetRateLimit: "0" }]);
    const scores = new Map([
      [1, 0.2],
      [2, 0.8],
      [3, 0.4],
    ]);
    let set = 0;
    for (let round = 1; round <= 4; round++) {
      if (!weightsDue(round, 2)) continue;
      const { dests, weights } = weightsFromScores(scores);
      const r = await v.setWeights(dests, weights);
      assert.ok(r.events.some((e) => e.method === "WeightsSet" && e.data[1] === "0"));
      set++;
    }
    assert.equal(set, 2);
    const stored = (await v.api.query.subtensorModule!.weights!(NETUID, 0)).toJSON();
    assert.deepEqual(stored, [
      [1, 16384],
      [2, 65535],
      [3, 32768],
    ]);
    await control.result("covenantTest_setSubnetParams", [NETUID, { weightsSetRateLimit: "1000" }]);
    await assert.rejects(
      v.setWeights([1], [1]),
      (e: unknown) => e instanceof ChainCallError && e.error === "subtensorModule.SettingWeightsTooFast",
    );
  });

  describe("ChainDuties", () => {
    const recordingLog = (): Log & { lines: string[] } => {
      const lines: string[] = [];
      return {
        lines,
        info: (m) => lines.push(`INFO ${m}`),
        warn: (m) => lines.push(`WARN ${m}`),
        error: (m) => lines.push(`ERROR ${m}`),
      };
    };
    const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });

    it("retries a setup that could not connect after the next round, then registers and commits", async () => {
      const pair = keyring.addFromUri("//covenant/duties/miner");
      await control.result("covenantTest_setBalance", [pair.address, "5000000000"]);
      await control.result("covenantTest_advanceBlocks", [1]);
      const log = recordingLog();
      let endpoint = "ws://127.0.0.1:1"; // nothing listens here: the first setup fails
      const d = new ChainDuties({
        endpoint: lc.url,
        netuid: NETUID,
        hotkey: pair,
        register: true,
        payloadLocation: "covenant-demo-p-duties",
        log,
        timeoutMs: 20_000,
        connect: (o) => WorkerChain.connect({ ...o, endpoint }),
      });
      d.start();
      await d.idle();
      assert.ok(
        log.lines.some((l) => l.startsWith("WARN chain: cannot connect")),
        log.lines.join("\n"),
      );
      endpoint = lc.url;
      d.afterRound(0);
      await d.idle();
      assert.equal(typeof d.uid, "number", log.lines.join("\n"));
      const check = await worker("//covenant/duties/miner");
      assert.equal(await check.uid(), d.uid);
      assert.equal(await check.committedLocation(), "covenant-demo-p-duties");
      await d.stop();
    });

    it("counts and logs a registration whose payer cannot pay the fee as cannot_pay_fee", async () => {
      const pair = keyring.addFromUri("//covenant/duties/broke");
      const log = recordingLog();
      const calls = new Counter({
        name: "test_worker_chain_calls",
        help: "chain calls",
        labelNames: ["call", "result"] as const,
        registers: [],
      });
      const d = new ChainDuties({
        endpoint: lc.url,
        netuid: NETUID,
        hotkey: pair,
        register: true,
        payloadLocation: "bucket",
        log,
        calls,
        timeoutMs: 20_000,
      });
      d.start();
      await d.idle();
      await d.stop();
      const counted = (await calls.get()).values.map((v) => `${v.labels.call}/${v.labels.result}=${v.value}`);
      assert.deepEqual(counted, ["burned_register/cannot_pay_fee=1"]);
      assert.ok(
        log.lines.some((l) =>
          l.startsWith(
            `WARN chain: burned_register refused (cannot_pay_fee): the payer ${pair.address} cannot pay`,
          ),
        ),
        log.lines.join("\n"),
      );
    });

    it("does not register unless the run says so, and says so once", async () => {
      const pair = keyring.addFromUri("//covenant/duties/unregistered");
      const log = recordingLog();
      const d = new ChainDuties({
        endpoint: lc.url,
        netuid: NETUID,
        hotkey: pair,
        register: false,
        payloadLocation: "bucket",
        log,
      });
      d.start();
      await d.idle();
      d.afterRound(0);
      await d.idle();
      assert.equal(d.uid, undefined);
      assert.equal(log.lines.filter((l) => l.includes("is not registered")).length, 1, log.lines.join("\n"));
      await d.stop();
    });

    it("a validator sets weights when due, from the ratings of registered hotkeys", async () => {
      await control.result("covenantTest_setSubnetParams", [NETUID, { weightsSetRateLimit: "0" }]);
      const v = seededKeys(devKeyring(), 0).hot;
      const log = recordingLog();
      const d = new ChainDuties({
        endpoint: lc.url,
        netuid: NETUID,
        hotkey: v,
        register: false,
        payloadLocation: "validator-bucket",
        setWeightsEveryRounds: 2,
        log,
        stateDir: join(dir, "validator-state"),
      });
      const hot = (i: number) => seededKeys(devKeyring(), i).hot.address;
      const scores = () =>
        new Map([
          [hot(1), 0.5],
          [hot(2), 0.25],
          [keyring.addFromUri("//covenant/duties/nobody").address, 1],
        ]);
      d.start();
      d.afterRound(1, scores); // not due
      d.afterRound(2, scores); // due while the setup is in flight: set after it
      await d.idle();
      await d.stop();
      assert.ok(
        log.lines.some((l) => l.includes("round 2: set weights for uids [1,2]")),
        log.lines.join("\n"),
      );
      const reader = await worker("//covenant/duties/reader");
      const stored = (await reader.api.query.subtensorModule!.weights!(NETUID, 0)).toJSON();
      assert.deepEqual(stored, [
        [1, 65535],
        [2, 32768],
      ]);
    });
  });
});
