/**
 * Transaction-pool checks of a submitted extrinsic: decodes it with the runtime's types,
 * verifies the sr25519 signature over the real signing payload, the mortality window, the
 * nonce, that the signer can pay the fee, and the pool checks subtensor's own transaction
 * extension makes; accepts only the calls the local chain executes. Rejections carry the
 * JSON-RPC error a substrate node gives (1001 bad format, 1010 invalid, 1011 unknown validity).
 */
import type { GenericExtrinsic, GenericExtrinsicSignatureV4 } from "@polkadot/types";
import type { Call } from "@polkadot/types/interfaces";
import { compactFromU8a, hexToU8a, u8aToHex, isHex } from "@polkadot/util";
import { blake2AsU8a, signatureVerify } from "@polkadot/util-crypto";
import { decodeCall, isSupported, type DecodedCall, type SupportedCall } from "./calls.ts";
import { revealPoolCheck } from "./dispatch.ts";
import {
  canPayFee,
  computeFee,
  dispatchInfo,
  type DispatchInfo,
  type Fee,
  type FeeConstants,
} from "./fees.ts";
import type { Runtime } from "./runtime.ts";
import type { ChainState } from "./state.ts";
import { accountHex } from "./storage.ts";

export { SUPPORTED_CALLS, type SupportedCall } from "./calls.ts";

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: string,
  ) {
    super(message);
  }
}

export const invalidTx = (data: string) => new RpcError(1010, "Invalid Transaction", data);

/** InvalidTransaction::Payment as the pool words it. */
export const PAYMENT_ERROR = "Inability to pay some fees (e.g. account balance too low)";

export interface ChainView {
  bestNumber: number;
  /** State at the best block: the pool validates against it, as a node does. */
  bestState: ChainState;
  genesisHash: string;
  blockHash(n: number): string | undefined;
  /** Nonce the account will have once everything already pooled is included. */
  nextNonce(who: string): number;
  /** Nonce stored for the account at the best block. */
  accountNonce(who: string): number;
}

export interface CheckedExtrinsic {
  /** 0x-prefixed lowercase hex, length prefix included. */
  hex: string;
  hash: string;
  signer: string;
  nonce: number;
  call: SupportedCall;
  method: Call;
  args: DecodedCall;
  info: DispatchInfo;
  /** What the signer is charged when the extrinsic is applied. */
  fee: Fee;
}

/** Sizes of the MultiSignature variants (Ed25519, Sr25519, Ecdsa). */
const SIGNATURE_LENGTH = [64, 64, 65];

/**
 * @polkadot/types takes a signed extrinsic whose signature is all zero bytes for an unsigned
 * one and then decodes the call from the wrong offset. Wallets estimate fees with exactly such
 * a dummy signature (the Python SDK does), and a node decodes it as any other. So a zero
 * signature is decoded with its bytes set to 0x01: same length, same call, and still a
 * signature that does not verify.
 */
export function decodableSignature(rt: Runtime, bytes: Uint8Array): Uint8Array {
  try {
    const [offset] = compactFromU8a(bytes);
    if (!((bytes[offset] ?? 0) & 0x80)) return bytes;
    const address = rt.registry.createType("Address", bytes.subarray(offset + 1));
    const at = offset + 1 + address.encodedLength;
    const len = SIGNATURE_LENGTH[bytes[at] ?? 255];
    if (len === undefined || at + 1 + len > bytes.length) return bytes;
    const sig = bytes.subarray(at + 1, at + 1 + len);
    if (sig.some((b) => b !== 0)) return bytes;
    const copy = new Uint8Array(bytes);
    copy.fill(1, at + 1, at + 1 + len);
    return copy;
  } catch {
    return bytes;
  }
}

/** Decodes extrinsic bytes given as hex with or without 0x (a node's Bytes parameter). */
export function decodeExtrinsic(rt: Runtime, raw: unknown): GenericExtrinsic {
  const hex = typeof raw === "string" && !raw.startsWith("0x") ? `0x${raw}` : raw;
  if (typeof hex !== "string" || !isHex(hex))
    throw new RpcError(-32602, "Invalid params", "extrinsic must be hex bytes");
  try {
    const ext = rt.registry.createType(
      "Extrinsic",
      decodableSignature(rt, hexToU8a(hex)),
    ) as GenericExtrinsic;
    if (ext.encodedLength !== (hex.length - 2) / 2) throw new Error("trailing bytes after the extrinsic");
    return ext;
  } catch (e) {
    throw new RpcError(1001, "Extrinsic has invalid format", (e as Error).message);
  }
}

/** The fee of a decoded extrinsic of `len` bytes, and its dispatch info; undefined for a call this chain does not run. */
export function extrinsicFee(
  fees: FeeConstants,
  ext: GenericExtrinsic,
  len: number,
): { call: SupportedCall; info: DispatchInfo; fee: Fee } | undefined {
  const call = `${ext.method.section}.${ext.method.method}`;
  if (!isSupported(call)) return undefined;
  const info = dispatchInfo(fees, call, ext.isSigned);
  if (!ext.isSigned)
    return { call, info, fee: { inclusionFee: undefined, tip: 0n, partialFee: 0n, total: 0n } };
  return { call, info, fee: computeFee(fees, len, info, ext.tip.toBigInt()) };
}

export function checkExtrinsic(
  rt: Runtime,
  fees: FeeConstants,
  view: ChainView,
  raw: unknown,
): CheckedExtrinsic {
  const ext = decodeExtrinsic(rt, raw);
  const hex = u8aToHex(ext.toU8a());
  if (!ext.isSigned) {
    throw new RpcError(
      1011,
      "Unknown Transaction Validity",
      "Could not find an unsigned validator for the unsigned transaction",
    );
  }
  const priced = extrinsicFee(fees, ext, ext.encodedLength);
  if (!priced) throw invalidTx("Transaction call is not expected");
  const { call, info, fee } = priced;
  const signer = accountHex(ext.signer.toString());
  const era = ext.era;
  let eraHash = view.genesisHash;
  if (era.isMortalEra) {
    const mortal = era.asMortalEra;
    const birth = Number(mortal.birth(view.bestNumber));
    const death = Number(mortal.death(view.bestNumber));
    const h = view.blockHash(birth);
    if (birth > view.bestNumber || view.bestNumber >= death || !h) {
      throw invalidTx("Transaction has an ancient birth block");
    }
    eraHash = h;
  }
  const signature = ext.inner.signature as unknown as GenericExtrinsicSignatureV4;
  const payload = signature.createPayload(
    ext.method as Call,
    {
      blockHash: eraHash,
      era,
      genesisHash: view.genesisHash,
      nonce: ext.nonce,
      tip: ext.tip,
      mode: ext.mode,
      metadataHash: ext.metadataHash,
      runtimeVersion: {
        specVersion: rt.registry.createType("u32", rt.version.specVersion),
        transactionVersion: rt.registry.createType("u32", rt.version.transactionVersion),
      },
    } as never,
  );
  let message = payload.toU8a({ method: true });
  if (message.length > 256) message = blake2AsU8a(message);
  const sig = ext.signature.toU8a();
  if (!signatureVerify(message, sig, signer).isValid) throw invalidTx("Transaction has a bad signature");
  const nonce = ext.nonce.toNumber();
  if (nonce < view.accountNonce(signer)) throw invalidTx("Transaction is outdated");
  const expected = view.nextNonce(signer);
  if (nonce < expected) {
    throw new RpcError(
      1014,
      "Priority is too low: (0 vs 0)",
      "The transaction has too low priority to replace another transaction already in the pool.",
    );
  }
  if (nonce > expected) throw invalidTx("Transaction will be valid in the future");
  // ChargeTransactionPayment: the fee must be payable from the balance at the best block.
  const free = view.bestState.accounts.get(signer)?.free ?? 0n;
  if (!canPayFee(fees, free, fee.total)) throw invalidTx(PAYMENT_ERROR);
  const args = decodeCall(call, ext.method as Call);
  const custom = subtensorPoolCheck(view, signer, args);
  if (custom !== undefined) throw invalidTx(`Custom error: ${custom}`);
  return {
    hex,
    hash: u8aToHex(ext.hash),
    signer,
    nonce,
    call,
    method: ext.method as Call,
    args,
    info,
    fee,
  };
}

/**
 * What SubtensorTransactionExtension refuses at the pool for the calls this chain runs:
 * a reveal_weights whose hash matches no commit, or outside the commit's reveal epoch (the
 * block being built is the one after the best). The minimum stake it checks for weights
 * calls is the production default, 0, here.
 */
function subtensorPoolCheck(view: ChainView, signer: string, c: DecodedCall): number | undefined {
  if (c.call !== "subtensorModule.revealWeights") return undefined;
  const next = BigInt(view.bestNumber + 1);
  return revealPoolCheck(view.bestState, next, signer, c.netuid, c.uids, c.values, c.salt, c.versionKey);
}
