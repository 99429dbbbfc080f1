/**
 * Transaction-pool checks of a submitted extrinsic: decodes it with the runtime's types,
 * verifies the sr25519 signature over the real signing payload, the mortality window and the
 * nonce, and accepts only the calls the local chain executes. Rejections carry the JSON-RPC
 * error a substrate node gives (1001 bad format, 1010 invalid, 1011 unknown validity).
 */
import type { GenericExtrinsic, GenericExtrinsicSignatureV4 } from "@polkadot/types";
import type { Call } from "@polkadot/types/interfaces";
import { u8aToHex, isHex } from "@polkadot/util";
import { blake2AsU8a, signatureVerify } from "@polkadot/util-crypto";
import type { Runtime } from "./runtime.ts";
import { accountHex } from "./storage.ts";

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

/** The calls this chain executes, as section.method of the decorated metadata. */
export const SUPPORTED_CALLS = [
  "subtensorModule.burnedRegister",
  "subtensorModule.setWeights",
  // What the SDK (10.x) sends for set_weights; only mechanism 0 exists here.
  "subtensorModule.setMechanismWeights",
  "subtensorModule.serveAxon",
  "commitments.setCommitment",
] as const;
export type SupportedCall = (typeof SUPPORTED_CALLS)[number];

export interface ChainView {
  bestNumber: number;
  genesisHash: string;
  blockHash(n: number): string | undefined;
  /** Nonce the account will have once everything already pooled is included. */
  nextNonce(who: string): number;
  /** Nonce stored for the account at the best block. */
  accountNonce(who: string): number;
}

export interface CheckedExtrinsic {
  hex: string;
  hash: string;
  signer: string;
  nonce: number;
  call: SupportedCall;
  method: Call;
}

export function decodeExtrinsic(rt: Runtime, hex: unknown): GenericExtrinsic {
  if (typeof hex !== "string" || !isHex(hex))
    throw new RpcError(-32602, "Invalid params", "extrinsic must be 0x-prefixed hex");
  try {
    const ext = rt.registry.createType("Extrinsic", hex) as GenericExtrinsic;
    if (ext.encodedLength !== (hex.length - 2) / 2) throw new Error("trailing bytes after the extrinsic");
    return ext;
  } catch (e) {
    throw new RpcError(1001, "Extrinsic has invalid format", (e as Error).message);
  }
}

export function checkExtrinsic(rt: Runtime, view: ChainView, hex: unknown): CheckedExtrinsic {
  const ext = decodeExtrinsic(rt, hex);
  if (!ext.isSigned) {
    throw new RpcError(
      1011,
      "Unknown Transaction Validity",
      "Could not find an unsigned validator for the unsigned transaction",
    );
  }
  const call = `${ext.method.section}.${ext.method.method}`;
  if (!(SUPPORTED_CALLS as readonly string[]).includes(call))
    throw invalidTx("Transaction call is not expected");
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
  return {
    hex: hex as string,
    hash: u8aToHex(ext.hash),
    signer,
    nonce,
    call: call as SupportedCall,
    method: ext.method as Call,
  };
}
