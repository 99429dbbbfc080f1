/**
 * Transaction fees: the formula with the runtime's constants, and the local chain charging
 * exactly what TransactionPaymentApi / payment_queryInfo estimate (plus the burn of a
 * registration), nothing for the fee-free subtensor calls, and refusing an account that
 * cannot pay with the pool's error and no change of state.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ApiPromise, WsProvider } from "@polkadot/api";
import { compactFromU8a, hexToU8a, u8aToHex } from "@polkadot/util";
import { devKeyring, seededKeys } from "./genesis.ts";
import {
  canPayFee,
  computeFee,
  dispatchInfo,
  extensionWeight,
  feeConstants,
  perbillMul,
  weightToFee,
} from "./fees.ts";
import { startLocalChain, type LocalChain } from "./local.ts";
import { RawRpc } from "./rpc-client.ts";
import { loadRuntime } from "./runtime.ts";
import { materializeState } from "./storage.ts";
import { sendInNextBlock } from "./test-tx.ts";

const NETUID = 3;
const BURN = 1_000_000_000n;

describe("fee formula", () => {
  const c = feeConstants(loadRuntime());

  it("reads the runtime's constants from the metadata", () => {
    assert.deepEqual(c.baseExtrinsic, { refTime: 108_157_000n, proofSize: 0n });
    assert.equal(c.dbRead, 25_000_000n);
    assert.equal(c.dbWrite, 100_000_000n);
    assert.equal(c.existentialDeposit, 500n);
  });

  it("multiplies by a Perbill rounding to nearest, ties down", () => {
    assert.equal(perbillMul(500_000n, 1_000n), 0n);
    assert.equal(perbillMul(500_000n, 3_000n), 1n);
    assert.equal(perbillMul(500_000n, 3_001n), 2n);
    assert.equal(weightToFee(c, 108_157_000n), 54_078n);
    assert.equal(weightToFee(c, 10n ** 15n), weightToFee(c, c.maxBlock.refTime), "capped at max_block");
  });

  it("charges base + length + weight for burned_register and nothing for set_weights", () => {
    assert.equal(extensionWeight(c).refTime, 544_643_000n);
    const reg = dispatchInfo(c, "subtensorModule.burnedRegister");
    assert.equal(reg.callWeight.refTime, 354_200_000n + 47n * 25_000_000n + 39n * 100_000_000n);
    assert.equal(reg.totalWeight.refTime, 5_429_200_000n + 544_643_000n);
    const fee = computeFee(c, 150, reg);
    assert.deepEqual(fee.inclusionFee, { baseFee: 54_078n, lenFee: 150n, adjustedWeightFee: 2_986_921n });
    assert.equal(fee.partialFee, 54_078n + 150n + 2_986_921n);
    assert.equal(computeFee(c, 150, reg, 7n).total, fee.partialFee + 7n);
    for (const call of [
      "subtensorModule.setWeights",
      "subtensorModule.setMechanismWeights",
      "subtensorModule.commitWeights",
      "subtensorModule.revealWeights",
      "subtensorModule.serveAxon",
      "commitments.setCommitment",
    ] as const) {
      const free = computeFee(c, 150, dispatchInfo(c, call), 3n);
      assert.deepEqual([free.partialFee, free.total, free.inclusionFee], [0n, 3n, undefined], call);
    }
  });

  it("keeps the existential deposit when a fee is paid", () => {
    assert.equal(canPayFee(c, 0n, 0n), true);
    assert.equal(canPayFee(c, 1_500n, 1_000n), true);
    assert.equal(canPayFee(c, 1_499n, 1_000n), false);
    assert.equal(canPayFee(c, 999n, 1_000n), false);
  });
});

describe("fees on the local chain", () => {
  let lc: LocalChain;
  let api: ApiPromise;
  let raw: RawRpc;
  const keyring = devKeyring();
  const alice = keyring.addFromUri("//Alice");
  const tx = (pallet: string, call: string) => api.tx[pallet]![call]!;
  const free = async (who: string) =>
    BigInt(
      ((await api.query.system!.account!(who)).toJSON() as { data: { free: number | string } }).data.free,
    );

  before(async () => {
    // Blocks only on request, so each extrinsic lands in the block the test makes.
    lc = await startLocalChain({ netuid: NETUID, neurons: 4, validators: 1, blockTimeMs: 0 });
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

  it("charges burned_register exactly its estimated fee plus the burn", async () => {
    const hot = keyring.addFromUri("//fees/miner/hot");
    const call = tx("subtensorModule", "burnedRegister")(NETUID, hot.address);
    const info = await call.paymentInfo(alice);
    const fee = info.partialFee.toBigInt();
    assert.ok(fee > 3_000_000n, `fee ${fee}`);
    // The same extrinsic signed now (same nonce and era, so the same length) for the fee's parts.
    const probe = await tx("subtensorModule", "burnedRegister")(NETUID, hot.address).signAsync(alice);
    // As paymentInfo passes it: the encoded extrinsic (its length prefix included) as bytes.
    const details = (await api.call.transactionPaymentApi!.queryFeeDetails!(
      probe.toU8a(),
      probe.encodedLength,
    )) as unknown as { inclusionFee: { toJSON(): Record<string, number> } };
    const parts = details.inclusionFee.toJSON();
    const before = await free(alice.address);
    const r = await sendInNextBlock(api, lc, call, alice);
    assert.equal(r.dispatchError, undefined);
    assert.deepEqual(r.names, [
      "balances.Withdraw",
      "subtensorModule.NeuronRegistered",
      "transactionPayment.TransactionFeePaid",
      "system.ExtrinsicSuccess",
    ]);
    const paid = r.events.find((e) => e.name === "transactionPayment.TransactionFeePaid")!.data;
    assert.equal(BigInt(paid[1] as number), fee, "TransactionFeePaid.actual_fee is the estimate");
    assert.equal(before - (await free(alice.address)), BURN + fee);
    // The signed extrinsic is as long as the estimated one, so the parts add up to the charge.
    assert.equal(BigInt(parts.baseFee! + parts.lenFee! + parts.adjustedWeightFee!), fee);
  });

  it("charges nothing for a fee-free call, even to an account without balance", async () => {
    const validator = seededKeys(keyring, 0).hot;
    assert.equal(await free(validator.address), 0n);
    const call = tx("subtensorModule", "setWeights")(NETUID, [1, 2], [1, 1], 0);
    assert.equal((await call.paymentInfo(validator)).partialFee.toBigInt(), 0n);
    const r = await sendInNextBlock(api, lc, call, validator);
    assert.equal(r.dispatchError, undefined);
    assert.ok(!r.names.includes("balances.Withdraw"));
    const paid = r.events.find((e) => e.name === "transactionPayment.TransactionFeePaid")!.data;
    assert.deepEqual(paid.slice(1), [0, 0]);
    const success = r.events.find((e) => e.name === "system.ExtrinsicSuccess")!.data[0] as {
      paysFee: string;
    };
    assert.equal(success.paysFee, "No");
    assert.equal(await free(validator.address), 0n);
  });

  it("keeps the fee of a call that fails", async () => {
    const poor = keyring.addFromUri("//fees/poor-but-not-broke");
    const call = tx("subtensorModule", "burnedRegister")(NETUID, keyring.addFromUri("//fees/x").address);
    const fee = (await call.paymentInfo(poor)).partialFee.toBigInt();
    await raw.result("covenantTest_setBalance", [poor.address, String(fee + 10_000n)]);
    lc.chain.produce();
    const r = await sendInNextBlock(api, lc, call, poor);
    assert.equal(r.dispatchError, "subtensorModule.NotEnoughBalanceToStake");
    assert.equal(await free(poor.address), 10_000n);
  });

  it("transfers with the estimated fee", async () => {
    const dest = keyring.addFromUri("//fees/dest").address;
    const call = tx("balances", "transferKeepAlive")(dest, 5_000_000_000n);
    const fee = (await call.paymentInfo(alice)).partialFee.toBigInt();
    const before = await free(alice.address);
    const r = await sendInNextBlock(api, lc, call, alice);
    assert.equal(r.dispatchError, undefined);
    assert.deepEqual(r.names, [
      "balances.Withdraw",
      "system.NewAccount",
      "balances.Endowed",
      "balances.Transfer",
      "transactionPayment.TransactionFeePaid",
      "system.ExtrinsicSuccess",
    ]);
    assert.equal(before - (await free(alice.address)), 5_000_000_000n + fee);
    assert.equal(await free(dest), 5_000_000_000n);
    const tooMuch = await sendInNextBlock(api, lc, tx("balances", "transferKeepAlive")(dest, before), alice);
    assert.equal(tooMuch.dispatchError, '{"token":"FundsUnavailable"}');
  });

  it("answers payment_queryInfo and payment_queryFeeDetails with the same fee", async () => {
    const call = tx("subtensorModule", "burnedRegister")(NETUID, keyring.addFromUri("//fees/rpc").address);
    const signed = await call.signAsync(alice);
    const hex = signed.toHex();
    const viaApi = (
      await api.call.transactionPaymentApi!.queryInfo!(signed.toU8a(), signed.encodedLength)
    ).toJSON() as {
      partialFee: number;
    };
    const info = await raw.result<{
      weight: { ref_time: number; proof_size: number };
      class: string;
      partialFee: string;
    }>("payment_queryInfo", [hex]);
    assert.equal(info.class, "normal");
    assert.equal(info.partialFee, String(viaApi.partialFee));
    assert.equal(info.weight.ref_time, 5_973_843_000);
    // Bytes without 0x, and an explicit block hash.
    const best = await raw.result<string>("chain_getBlockHash");
    assert.deepEqual(await raw.result("payment_queryInfo", [hex.slice(2), best.slice(2)]), info);
    const details = await raw.result<{ inclusionFee: Record<string, number> }>("payment_queryFeeDetails", [
      hex,
    ]);
    const f = details.inclusionFee;
    assert.equal(String(f.baseFee! + f.lenFee! + f.adjustedWeightFee!), info.partialFee);
    // Wallets estimate with an all-zero signature: the same fee; submitted, it is a bad signature.
    const bytes = hexToU8a(hex);
    const [prefix] = compactFromU8a(bytes);
    bytes.fill(0, prefix + 1 + 33 + 1, prefix + 1 + 33 + 1 + 64);
    assert.deepEqual(await raw.result("payment_queryInfo", [u8aToHex(bytes)]), info);
    const dummy = await raw.call("author_submitExtrinsic", [u8aToHex(bytes)]);
    assert.deepEqual([dummy.error?.code, dummy.error?.data], [1010, "Transaction has a bad signature"]);
    const bad = await raw.call("payment_queryInfo", ["0x0102"]);
    assert.equal(bad.error?.code, 2);
    const freeCall = await tx("commitments", "setCommitment")(NETUID, { fields: [] }).signAsync(alice);
    const none = await raw.result<{ inclusionFee: unknown }>("payment_queryFeeDetails", [freeCall.toHex()]);
    assert.equal(none.inclusionFee, null);
    // A call this chain does not run has no weight here: the query fails instead of guessing.
    const other = await tx("balances", "transferAll")(alice.address, false).signAsync(alice);
    assert.equal((await raw.call("payment_queryInfo", [other.toHex()])).error?.code, 1);
  });

  it("refuses an account that cannot pay with the pool's error and changes nothing", async () => {
    const broke = keyring.addFromUri("//fees/broke");
    const state = () => [...materializeState(lc.chain.rt, lc.chain.best.state!)].sort();
    const call = tx("subtensorModule", "burnedRegister")(NETUID, keyring.addFromUri("//fees/y").address);
    const fee = (await call.paymentInfo(broke)).partialFee.toBigInt();
    // Exactly the fee is not enough: the existential deposit must stay.
    await raw.result("covenantTest_setBalance", [broke.address, String(fee + 499n)]);
    lc.chain.produce();
    const before = state();
    const signed = await call.signAsync(broke, { nonce: 0 });
    const r = await raw.call("author_submitExtrinsic", [signed.toHex()]);
    assert.equal(r.error?.code, 1010);
    assert.equal(r.error?.data, "Inability to pay some fees (e.g. account balance too low)");
    assert.equal(lc.chain.pending().length, 0);
    lc.chain.produce();
    assert.deepEqual(state(), before);
  });

  it("drops a pooled transaction whose fee can no longer be paid when the block is made", async () => {
    const payer = keyring.addFromUri("//fees/spender");
    await raw.result("covenantTest_setBalance", [payer.address, "10000000000"]);
    lc.chain.produce();
    const signed = await tx("balances", "transferKeepAlive")(alice.address, 1_000_000n).signAsync(payer, {
      nonce: 0,
    });
    const hash = await raw.result<string>("author_submitExtrinsic", [signed.toHex()]);
    assert.equal(hash, u8aToHex(signed.hash));
    const dropped = new Promise<string>((resolve) => lc.chain.once("dropped", (_h, why) => resolve(why)));
    await raw.result("covenantTest_setBalance", [payer.address, "1000"]);
    const block = lc.chain.produce();
    assert.equal(await dropped, "Inability to pay some fees (e.g. account balance too low)");
    assert.equal(block.extrinsics.length, 1, "only the timestamp inherent");
    assert.equal(await free(payer.address), 1000n);
    assert.equal(Number(await raw.result("system_accountNextIndex", [payer.address])), 0);
  });
});
