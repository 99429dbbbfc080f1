/**
 * Commit-reveal of weights on the local chain through ApiPromise, on a subnet with
 * CommitRevealWeightsEnabled: commit_weights stores the hash (WeightCommits), the pool refuses
 * a reveal_weights that matches no commit or comes outside the reveal epoch with subtensor's
 * custom errors, reveal_mechanism_weights (what the SDK sends) fails in the block with the
 * runtime's errors, and a matching reveal in the reveal epoch sets the weights. Blocks are
 * made on request so the epochs are exact: netuid 3, tempo 10, epoch(b) = (b + 4) / 11.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ApiPromise, WsProvider } from "@polkadot/api";
import { commitHash } from "./dispatch.ts";
import { devKeyring, seededKeys } from "./genesis.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";
import { accountHex, materializeState } from "./storage.ts";
import { advanceTo, sendInNextBlock } from "./test-tx.ts";

const NETUID = 3;

describe("commit-reveal of weights on the local chain", () => {
  let lc: LocalChain;
  let api: ApiPromise;
  let raw: RawRpc;
  const validator = seededKeys(devKeyring(), 0).hot;
  const tx = (call: string) => api.tx.subtensorModule![call]!;
  const UIDS = [1, 2];
  const VALUES = [65535, 32767];
  const SALT = [7, 8, 9];
  const hash = commitHash(accountHex(validator.address), NETUID, UIDS, VALUES, SALT, 0n);

  before(async () => {
    lc = await startLocalChain({
      netuid: NETUID,
      neurons: 4,
      validators: 1,
      blockTimeMs: 0,
      subnet: { commitRevealWeightsEnabled: true, tempo: 10 },
    });
    api = await ApiPromise.create({
      provider: new WsProvider(lc.url),
      noInitWarn: true,
      throwOnConnect: true,
    });
    raw = await RawRpc.connect(lc.url);
  });
  after(async () => {
    raw?.close();
    await api?.disconnect();
    await lc?.stop();
  });

  /** Submits a signed reveal_weights and answers the pool's error, if any. */
  async function poolReveal(salt: number[]) {
    const nonce = Number(await raw.result("system_accountNextIndex", [validator.address]));
    const signed = await tx("revealWeights")(NETUID, UIDS, VALUES, salt, 0).signAsync(validator, { nonce });
    return (await raw.call("author_submitExtrinsic", [signed.toHex()])).error;
  }

  it("refuses set_weights and stores a commit, fee-free", async () => {
    advanceTo(lc, 19);
    const refused = await sendInNextBlock(api, lc, tx("setWeights")(NETUID, UIDS, VALUES, 0), validator);
    assert.equal(refused.dispatchError, "subtensorModule.CommitRevealEnabled");
    const r = await sendInNextBlock(api, lc, tx("commitWeights")(NETUID, hash), validator);
    assert.equal(lc.chain.best.number, 21);
    assert.equal(r.dispatchError, undefined);
    assert.ok(r.names.includes("subtensorModule.WeightsCommitted"), r.names.join());
    assert.ok(!r.names.includes("balances.Withdraw"), "commit_weights pays no fee");
    // Committed in block 21 (epoch 2): revealed in epoch 3, blocks 29..39.
    const stored = (await api.query.subtensorModule!.weightCommits!(NETUID, validator.address)).toJSON();
    assert.deepEqual(stored, [[hash, 21, 29, 39]]);
  });

  it("refuses at the pool a reveal_weights before its epoch or matching no commit", async () => {
    lc.chain.stop();
    const before = [...materializeState(lc.chain.rt, lc.chain.best.state!)].sort();
    const early = await poolReveal(SALT);
    assert.deepEqual([early?.code, early?.data], [1010, "Custom error: 17"]);
    const wrong = await poolReveal([1]);
    assert.deepEqual([wrong?.code, wrong?.data], [1010, "Custom error: 16"]);
    assert.equal(lc.chain.pending().length, 0);
    lc.chain.produce();
    assert.deepEqual([...materializeState(lc.chain.rt, lc.chain.best.state!)].sort(), before);
  });

  it("fails reveal_mechanism_weights in the block with the runtime's errors", async () => {
    const early = await sendInNextBlock(
      api,
      lc,
      tx("revealMechanismWeights")(NETUID, 0, UIDS, VALUES, SALT, 0),
      validator,
    );
    assert.equal(early.dispatchError, "subtensorModule.RevealTooEarly");
    advanceTo(lc, 28);
    const wrong = await sendInNextBlock(
      api,
      lc,
      tx("revealMechanismWeights")(NETUID, 0, UIDS, [1, 1], SALT, 0),
      validator,
    );
    assert.equal(wrong.dispatchError, "subtensorModule.InvalidRevealCommitHashNotMatch");
    assert.deepEqual((await api.query.subtensorModule!.weights!(NETUID, 0)).toJSON(), []);
  });

  it("reveals in the reveal epoch and sets the weights", async () => {
    assert.equal(await poolReveal([1]).then((e) => e?.data), "Custom error: 16");
    const r = await sendInNextBlock(api, lc, tx("revealWeights")(NETUID, UIDS, VALUES, SALT, 0), validator);
    assert.equal(lc.chain.best.number, 30);
    assert.equal(r.dispatchError, undefined);
    assert.deepEqual(
      r.names.filter((n) => n.startsWith("subtensorModule")),
      ["subtensorModule.WeightsSet", "subtensorModule.WeightsRevealed"],
    );
    assert.deepEqual((await api.query.subtensorModule!.weights!(NETUID, 0)).toJSON(), [
      [1, 65535],
      [2, 32767],
    ]);
    assert.equal((await api.query.subtensorModule!.weightCommits!(NETUID, validator.address)).toJSON(), null);
  });

  it("refuses a reveal after the reveal epoch as expired", async () => {
    await raw.result("covenantTest_setSubnetParams", [NETUID, { weightsSetRateLimit: "0" }]);
    const values = [1, 65535];
    const later = commitHash(accountHex(validator.address), NETUID, UIDS, values, SALT, 0n);
    const c = await sendInNextBlock(api, lc, tx("commitWeights")(NETUID, later), validator);
    assert.equal(c.dispatchError, undefined);
    // Committed in block 31 (epoch 3): the reveal epoch is 4 (blocks 40..50); 51 is too late.
    advanceTo(lc, 50);
    const late = await sendInNextBlock(
      api,
      lc,
      tx("revealMechanismWeights")(NETUID, 0, UIDS, values, SALT, 0),
      validator,
    );
    assert.equal(late.dispatchError, "subtensorModule.ExpiredWeightCommit");
    assert.deepEqual((await api.query.subtensorModule!.weights!(NETUID, 0)).toJSON(), [
      [1, 65535],
      [2, 32767],
    ]);
  });
});
