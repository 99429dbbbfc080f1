/**
 * The calls the local chain executes, decoded once from the runtime's Call into plain
 * arguments: the pool's checks, the fee and the dispatch all read the same values.
 */
import type { Call } from "@polkadot/types/interfaces";
import { u8aToHex } from "@polkadot/util";
import type { ServeAxonArgs } from "./dispatch.ts";
import type { WeighedCall } from "./fees.ts";

/** The calls this chain executes, as section.method of the decorated metadata. */
export const SUPPORTED_CALLS = [
  "subtensorModule.burnedRegister",
  "subtensorModule.setWeights",
  // What the SDK (10.x) sends for set_weights; only mechanism 0 exists here.
  "subtensorModule.setMechanismWeights",
  "subtensorModule.commitWeights",
  "subtensorModule.commitMechanismWeights",
  "subtensorModule.revealWeights",
  "subtensorModule.revealMechanismWeights",
  "subtensorModule.serveAxon",
  "commitments.setCommitment",
  "balances.transferKeepAlive",
] as const satisfies readonly WeighedCall[];
export type SupportedCall = (typeof SUPPORTED_CALLS)[number];

export function isSupported(call: string): call is SupportedCall {
  return (SUPPORTED_CALLS as readonly string[]).includes(call);
}

export type DecodedCall =
  | { call: "subtensorModule.burnedRegister"; netuid: number; hotkey: string }
  | {
      call: "subtensorModule.setWeights" | "subtensorModule.setMechanismWeights";
      netuid: number;
      mecid: number;
      dests: number[];
      weights: number[];
      versionKey: bigint;
    }
  | {
      call: "subtensorModule.commitWeights" | "subtensorModule.commitMechanismWeights";
      netuid: number;
      mecid: number;
      hash: string;
    }
  | {
      call: "subtensorModule.revealWeights" | "subtensorModule.revealMechanismWeights";
      netuid: number;
      mecid: number;
      uids: number[];
      values: number[];
      salt: number[];
      versionKey: bigint;
    }
  | ({ call: "subtensorModule.serveAxon" } & ServeAxonArgs)
  | { call: "commitments.setCommitment"; netuid: number; fieldCount: number; info: Uint8Array }
  /** `dest` is the account hex, or undefined when the MultiAddress is not an account id. */
  | { call: "balances.transferKeepAlive"; dest: string | undefined; value: bigint };

/** Plain arguments of a supported call (the Call was decoded with the runtime's types). */
export function decodeCall(call: SupportedCall, method: Call): DecodedCall {
  const a = method.args;
  const num = (i: number) => Number(a[i]!.toString());
  const big = (i: number) => BigInt(a[i]!.toString());
  const list = (i: number) => (a[i]!.toJSON() as number[]).map(Number);
  switch (call) {
    case "subtensorModule.burnedRegister":
      return { call, netuid: num(0), hotkey: u8aToHex(a[1]!.toU8a()) };
    case "subtensorModule.setWeights":
      return { call, netuid: num(0), mecid: 0, dests: list(1), weights: list(2), versionKey: big(3) };
    case "subtensorModule.setMechanismWeights":
      return { call, netuid: num(0), mecid: num(1), dests: list(2), weights: list(3), versionKey: big(4) };
    case "subtensorModule.commitWeights":
      return { call, netuid: num(0), mecid: 0, hash: a[1]!.toHex() };
    case "subtensorModule.commitMechanismWeights":
      return { call, netuid: num(0), mecid: num(1), hash: a[2]!.toHex() };
    case "subtensorModule.revealWeights":
      return {
        call,
        netuid: num(0),
        mecid: 0,
        uids: list(1),
        values: list(2),
        salt: list(3),
        versionKey: big(4),
      };
    case "subtensorModule.revealMechanismWeights":
      return {
        call,
        netuid: num(0),
        mecid: num(1),
        uids: list(2),
        values: list(3),
        salt: list(4),
        versionKey: big(5),
      };
    case "subtensorModule.serveAxon":
      return {
        call,
        netuid: num(0),
        version: num(1),
        ip: big(2),
        port: num(3),
        ipType: num(4),
        protocol: num(5),
        placeholder1: num(6),
        placeholder2: num(7),
      };
    case "commitments.setCommitment": {
      const info = a[1]! as unknown as { fields: { length: number } } & { toU8a(): Uint8Array };
      return { call, netuid: num(0), fieldCount: info.fields.length, info: info.toU8a() };
    }
    case "balances.transferKeepAlive": {
      // A MultiAddress enum: only the Id variant names an account the runtime can look up.
      const dest = a[0]! as unknown as { type: string; value: { toU8a(): Uint8Array } };
      return { call, dest: dest.type === "Id" ? u8aToHex(dest.value.toU8a()) : undefined, value: big(1) };
    }
  }
}
