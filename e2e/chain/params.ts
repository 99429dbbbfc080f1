/** Checks of JSON-RPC parameters; every failure is a -32602 "Invalid params" with the reason. */
import { isHex } from "@polkadot/util";
import { RpcError } from "./extrinsics.ts";
import { accountHex } from "./storage.ts";

export const invalidParams = (why: string) => new RpcError(-32602, "Invalid params", why);

export function hexParam(v: unknown, name: string): string {
  if (typeof v !== "string" || !isHex(v)) throw invalidParams(`${name} must be 0x-prefixed hex`);
  return v.toLowerCase();
}

/** Bytes as a node's serde accepts them: hex with or without the 0x prefix; returns 0x-prefixed lowercase. */
export function bytesParam(v: unknown, name: string): string {
  const s = typeof v === "string" && !v.startsWith("0x") ? `0x${v}` : v;
  if (typeof s !== "string" || !isHex(s)) throw invalidParams(`${name} must be hex bytes`);
  return s.toLowerCase();
}

/** An optional block hash (H256): 32 bytes of hex, with or without 0x, as a node's serde takes it. */
export function optHash(v: unknown, name = "hash"): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === "string" && !v.startsWith("0x") ? `0x${v}` : v;
  if (typeof s !== "string" || !isHex(s, 256)) throw invalidParams(`${name} must be a 32-byte hex hash`);
  return s.toLowerCase();
}

/** An integer given as a JSON number only (a node's u8/u16/u32 parameters). */
export function numParam(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalidParams(`${name} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

/** An integer given as a JSON number or 0x-hex (a node's NumberOrHex, and the test controls). */
export function intParam(v: unknown, name: string, min: number, max: number): number {
  const n = typeof v === "string" && /^0x[0-9a-f]+$/i.test(v) ? Number.parseInt(v, 16) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw invalidParams(`${name} must be an integer in [${min}, ${max}]`);
  }
  return n;
}

export function bigParam(v: unknown, name: string): bigint {
  try {
    if ((typeof v === "string" && v !== "") || (typeof v === "number" && Number.isInteger(v))) {
      const b = BigInt(v);
      if (b >= 0n && b < 1n << 64n) return b;
    }
  } catch {
    // fall through to the error below
  }
  throw invalidParams(`${name} must be a non-negative integer below 2^64 (a decimal string or number)`);
}

/** An AccountId32 as a node's serde takes it: an SS58 address only; answers the 0x hex of its key. */
export function ss58Param(v: unknown, name: string): string {
  if (typeof v !== "string" || v.startsWith("0x")) throw invalidParams(`${name} must be an SS58 address`);
  return accountParam(v, name);
}

/** An account for the test controls: SS58 or 32-byte hex. */
export function accountParam(v: unknown, name: string): string {
  if (typeof v !== "string") throw invalidParams(`${name} must be an SS58 address or 32-byte hex`);
  try {
    const h = accountHex(v);
    if (h.length !== 66) throw new Error("not 32 bytes");
    return h;
  } catch {
    throw invalidParams(`${name} must be an SS58 address or 32-byte hex`);
  }
}

export function objParam(v: unknown, name: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw invalidParams(`${name} must be an object`);
  return v as Record<string, unknown>;
}
