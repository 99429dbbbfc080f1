/**
 * Transaction fees as the production runtime computes them (pallet-transaction-payment with
 * subtensor's configuration), pure: no I/O, no state. One formula serves the pool's check,
 * the charge when a block is made and the fee estimate of TransactionPaymentApi and
 * payment_queryInfo, so an estimate and the charge cannot disagree.
 *
 *   fee = base_fee + len_fee + weight_fee (+ tip)         when the call pays (Pays::Yes)
 *   fee = tip                                            when it does not (Pays::No)
 *   base_fee   = WeightToFee(BlockWeights.per_class.normal.base_extrinsic)
 *   len_fee    = encoded length in bytes (LengthToFee = IdentityFee)
 *   weight_fee = WeightToFee(call weight + transaction-extension weight), fee multiplier 1
 *   WeightToFee(w) = ref_time * 500_000 / 10^9 rounded to nearest, ties down (Perbill multiply)
 *
 * Where each number comes from (public sources):
 * - base_extrinsic, DbWeight (read/write) and max_block: the served metadata (System constants).
 * - WeightToFee coefficient (Perbill 500_000) and LengthToFee (IdentityFee), fee multiplier
 *   ConstFeeMultiplier(1): opentensor/subtensor pallets/transaction-fee/src/lib.rs and
 *   runtime/src/lib.rs (impl pallet_transaction_payment::Config).
 * - Call weights and Pays: the `#[pallet::weight]` of each call in opentensor/subtensor
 *   pallets/subtensor/src/macros/dispatches.rs and pallets/commitments/src/lib.rs;
 *   transfer_keep_alive from paritytech/polkadot-sdk substrate/frame/balances/src/weights.rs.
 * - Extension weights: paritytech/polkadot-sdk substrate/frame/system/src/extensions/weights.rs
 *   and substrate/frame/transaction-payment/src/weights.rs; subtensor's own extensions
 *   (runtime/src/check_nonce.rs: zero; runtime/src/transaction_payment_wrapper.rs: + 3 reads;
 *   pallets/shield/src/extension.rs: 1_000_000 + 1 read; the others zero).
 */
import type { Runtime } from "./runtime.ts";

export interface Weight {
  refTime: bigint;
  proofSize: bigint;
}

/** Runtime constants the fee depends on, read from the metadata the chain serves. */
export interface FeeConstants {
  baseExtrinsic: Weight;
  maxBlock: Weight;
  dbRead: bigint;
  dbWrite: bigint;
  existentialDeposit: bigint;
}

/** LinearWeightToFee: Perbill::from_parts(500_000) per unit of ref_time. */
export const WEIGHT_FEE_PERBILL = 500_000n;
const PERBILL = 1_000_000_000n;
/** LengthToFee = IdentityFee: one RAO per encoded byte. */
export const LENGTH_FEE_PER_BYTE = 1n;

/** A call's declared weight: ref_time + reads/writes at the runtime's DbWeight, and whether it pays. */
export interface CallWeight {
  refTime: bigint;
  proofSize: bigint;
  reads: bigint;
  writes: bigint;
  paysFee: boolean;
}

const w = (refTime: bigint, reads: bigint, writes: bigint, paysFee: boolean, proofSize = 0n): CallWeight => ({
  refTime,
  proofSize,
  reads,
  writes,
  paysFee,
});

/** Weights of the calls this chain executes, keyed like SUPPORTED_CALLS (section.method). */
export const CALL_WEIGHTS = {
  "subtensorModule.burnedRegister": w(354_200_000n, 47n, 39n, true),
  "subtensorModule.setWeights": w(15_540_000_000n, 4111n, 2n, false),
  "subtensorModule.setMechanismWeights": w(15_540_000_000n, 4111n, 2n, false),
  "subtensorModule.commitWeights": w(67_770_000n, 10n, 2n, false),
  "subtensorModule.commitMechanismWeights": w(55_130_000n, 7n, 2n, false),
  "subtensorModule.revealWeights": w(122_000_000n, 17n, 2n, false),
  "subtensorModule.revealMechanismWeights": w(122_000_000n, 16n, 2n, false),
  "subtensorModule.serveAxon": w(33_010_000n, 4n, 1n, false),
  "commitments.setCommitment": w(33_480_000n, 5n, 4n, false),
  "balances.transferKeepAlive": w(38_159_000n, 1n, 1n, true, 3593n),
} as const satisfies Record<string, CallWeight>;

export type WeighedCall = keyof typeof CALL_WEIGHTS;

/**
 * Weight of the signed extensions, in the order the runtime lists them: ref_time, reads,
 * writes, proof size. CheckNonce and the custom Sudo, Subtensor and Drand extensions and
 * CheckMetadataHash weigh nothing.
 */
const EXTENSION_WEIGHTS: [name: string, refTime: bigint, reads: bigint, writes: bigint, proof: bigint][] = [
  ["CheckNonZeroSender", 527_000n, 0n, 0n, 0n],
  ["CheckSpecVersion", 461_000n, 0n, 0n, 0n],
  ["CheckTxVersion", 439_000n, 0n, 0n, 0n],
  ["CheckGenesis", 4_160_000n, 1n, 0n, 3509n],
  ["CheckMortality", 6_523_000n, 1n, 0n, 3509n],
  ["CheckWeight", 4_747_000n, 1n, 1n, 1489n],
  // ChargeTransactionPayment (4 reads, 1 write) plus the wrapper's 3 reads for the fee payer.
  ["ChargeTransactionPayment", 51_786_000n, 7n, 1n, 3593n],
  ["CheckShieldedTxValidity", 1_000_000n, 1n, 0n, 0n],
];

const cached = new WeakMap<Runtime, FeeConstants>();

/** The fee constants of a runtime (computed once per runtime). */
export function feeConstants(rt: Runtime): FeeConstants {
  let c = cached.get(rt);
  if (!c) {
    c = readFeeConstants(rt);
    cached.set(rt, c);
  }
  return c;
}

function readFeeConstants(rt: Runtime): FeeConstants {
  const consts = rt.decorated.consts;
  const bw = consts.system!.blockWeights!.toJSON() as {
    maxBlock: { refTime: number | string; proofSize: number | string };
    perClass: { normal: { baseExtrinsic: { refTime: number | string; proofSize: number | string } } };
  };
  const db = consts.system!.dbWeight!.toJSON() as { read: number | string; write: number | string };
  const weight = (x: { refTime: number | string; proofSize: number | string }): Weight => ({
    refTime: BigInt(x.refTime),
    proofSize: BigInt(x.proofSize),
  });
  return {
    baseExtrinsic: weight(bw.perClass.normal.baseExtrinsic),
    maxBlock: weight(bw.maxBlock),
    dbRead: BigInt(db.read),
    dbWrite: BigInt(db.write),
    existentialDeposit: BigInt(consts.balances!.existentialDeposit!.toString()),
  };
}

/** Perbill * n as sp-arithmetic does it: rounded to the nearest integer, a tie rounds down. */
export function perbillMul(parts: bigint, n: bigint): bigint {
  const num = parts * n;
  const q = num / PERBILL;
  const r = num % PERBILL;
  return r * 2n > PERBILL ? q + 1n : q;
}

/** WeightToFee of subtensor (LinearWeightToFee), with the weight capped at max_block as the pallet does. */
export function weightToFee(c: FeeConstants, refTime: bigint): bigint {
  const capped = refTime < c.maxBlock.refTime ? refTime : c.maxBlock.refTime;
  return perbillMul(WEIGHT_FEE_PERBILL, capped);
}

export function extensionWeight(c: FeeConstants): Weight {
  let refTime = 0n;
  let proofSize = 0n;
  for (const [, rt, reads, writes, proof] of EXTENSION_WEIGHTS) {
    refTime += rt + reads * c.dbRead + writes * c.dbWrite;
    proofSize += proof;
  }
  return { refTime, proofSize };
}

export interface DispatchInfo {
  /** The call's own weight. */
  callWeight: Weight;
  /** Call plus transaction extensions: what the fee and the fee estimate are based on. */
  totalWeight: Weight;
  paysFee: boolean;
  class: "Normal";
}

/** Dispatch info of a call; `signed` is false for a bare extrinsic, which runs no extensions. */
export function dispatchInfo(c: FeeConstants, call: WeighedCall, signed = true): DispatchInfo {
  const cw = CALL_WEIGHTS[call];
  const callWeight = {
    refTime: cw.refTime + cw.reads * c.dbRead + cw.writes * c.dbWrite,
    proofSize: cw.proofSize,
  };
  const ext = signed ? extensionWeight(c) : { refTime: 0n, proofSize: 0n };
  return {
    callWeight,
    totalWeight: {
      refTime: callWeight.refTime + ext.refTime,
      proofSize: callWeight.proofSize + ext.proofSize,
    },
    paysFee: cw.paysFee,
    class: "Normal",
  };
}

export interface InclusionFee {
  baseFee: bigint;
  lenFee: bigint;
  adjustedWeightFee: bigint;
}

export interface Fee {
  /** Undefined for a call that does not pay (Pays::No). */
  inclusionFee: InclusionFee | undefined;
  tip: bigint;
  /** The inclusion fee alone: what query_info reports as partial_fee. */
  partialFee: bigint;
  /** What is withdrawn from the signer: inclusion fee plus tip. */
  total: bigint;
}

/** The fee of an extrinsic of `len` encoded bytes (length prefix included). */
export function computeFee(c: FeeConstants, len: number, info: DispatchInfo, tip = 0n): Fee {
  if (!info.paysFee) return { inclusionFee: undefined, tip, partialFee: 0n, total: tip };
  const inclusionFee = {
    baseFee: weightToFee(c, c.baseExtrinsic.refTime),
    lenFee: LENGTH_FEE_PER_BYTE * BigInt(len),
    adjustedWeightFee: weightToFee(c, info.totalWeight.refTime),
  };
  const partialFee = inclusionFee.baseFee + inclusionFee.lenFee + inclusionFee.adjustedWeightFee;
  return { inclusionFee, tip, partialFee, total: partialFee + tip };
}

/**
 * Whether an account with `free` RAO can pay `fee`: the withdrawal keeps the account alive
 * (free - fee >= existential deposit), as the fungible withdraw with Preservation::Preserve
 * requires. A zero fee is always payable.
 */
export function canPayFee(c: FeeConstants, free: bigint, fee: bigint): boolean {
  if (fee === 0n) return true;
  return free >= fee && free - fee >= c.existentialDeposit;
}
