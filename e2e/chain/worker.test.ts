/**
 * The worker's chain calls against the local chain: register by burning, commit the payload
 * location (once), set weights as validator, and a runtime error surfacing as ChainCallError.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChainCallError, WorkerChain } from "../../worker/chain/client.ts";
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

  it("fails registration without funds with the runtime's error", async () => {
    const w = await worker("//covenant/worker/poor");
    await assert.rejects(
      w.ensureRegistered(),
      (e: unknown) => e instanceof ChainCallError && e.error === "subtensorModule.NotEnoughBalanceToStake",
    );
    assert.equal(await w.uid(), undefined);
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
});
