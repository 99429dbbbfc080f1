/**
 * The runtime the local chain pretends to be: the production subtensor metadata (V16,
 * spec_version 393, read from finney) with the four custom transaction extensions that
 * @polkadot/api does not know removed, so the client and this chain agree on the signing
 * payload without warnings. Every storage key, value, event and call is encoded through the
 * type registry built from this metadata, so encodings are the real chain's by construction.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Metadata, TypeRegistry } from "@polkadot/types";
import { expandMetadata } from "@polkadot/types/metadata/decorate";
import type { DecoratedMeta } from "@polkadot/types/metadata/decorate/types";
import type { StorageEntry } from "@polkadot/types/primitive/types";
import type { Codec } from "@polkadot/types-codec/types";
import { blake2AsHex } from "@polkadot/util-crypto";
import { u8aConcat, u8aToHex } from "@polkadot/util";

/** Transaction extensions of the production runtime that carry no bytes and that the client does not know. */
export const CUSTOM_EXTENSIONS = [
  "SudoTransactionExtension",
  "CheckShieldedTxValidity",
  "SubtensorTransactionExtension",
  "DrandPriority",
] as const;

export const METADATA_FILE = fileURLToPath(new URL("./metadata/finney.scale", import.meta.url));

export interface RuntimeVersionJson {
  specName: string;
  implName: string;
  authoringVersion: number;
  specVersion: number;
  implVersion: number;
  apis: [string, number][];
  transactionVersion: number;
  stateVersion: number;
}

export interface Runtime {
  readonly registry: TypeRegistry;
  readonly metadata: Metadata;
  /** The metadata as served to clients (magic, version byte, V16 body). */
  readonly metadataBytes: Uint8Array;
  readonly decorated: DecoratedMeta;
  readonly version: RuntimeVersionJson;
  readonly ss58Format: number;
}

/** Rebuilds the V16 metadata without the extensions in `drop` (all of them carry no bytes). */
export function stripExtensions(raw: Uint8Array, drop: readonly string[]): Uint8Array {
  const registry = new TypeRegistry();
  const md = new Metadata(registry, raw);
  if (md.version !== 16) throw new Error(`expected V16 metadata, found V${md.version}`);
  const v16 = md.asV16;
  const ext = v16.extrinsic;
  const kept = ext.transactionExtensions.filter((e) => !drop.includes(e.identifier.toString()));
  for (const e of ext.transactionExtensions) {
    if (!drop.includes(e.identifier.toString())) continue;
    const explicit = v16.lookup.getTypeDef(e.type).type;
    const implicit = v16.lookup.getTypeDef(e.implicit).type;
    if (explicit !== "Null" || implicit !== "Null") {
      throw new Error(`extension ${e.identifier.toString()} carries data; it cannot be dropped`);
    }
  }
  const extrinsic = registry.createType("ExtrinsicMetadataV16", {
    versions: ext.versions,
    addressType: ext.addressType,
    callType: ext.callType,
    signatureType: ext.signatureType,
    transactionExtensionsByVersion: new Map([[0, kept.map((_, i) => i)]]),
    transactionExtensions: kept,
  });
  const body = registry.createType("MetadataV16", {
    lookup: v16.lookup,
    pallets: v16.pallets,
    extrinsic,
    apis: v16.apis,
    outerEnums: v16.outerEnums,
    custom: v16.custom,
  });
  return u8aConcat(raw.subarray(0, 5), body.toU8a());
}

let cachedBytes: Uint8Array | undefined;

/** Loads the runtime (a fresh registry each call; the metadata bytes are read once). */
export function loadRuntime(): Runtime {
  cachedBytes ??= stripExtensions(new Uint8Array(readFileSync(METADATA_FILE)), CUSTOM_EXTENSIONS);
  const registry = new TypeRegistry();
  const metadata = new Metadata(registry, cachedBytes);
  registry.setMetadata(metadata);
  registry.setChainProperties(
    registry.createType("ChainProperties", { ss58Format: 42, tokenDecimals: 9, tokenSymbol: "TAO" }) as never,
  );
  const decorated = expandMetadata(registry, metadata);
  const v = decorated.consts.system!.version!.toJSON() as unknown as RuntimeVersionJson & {
    systemVersion?: number;
  };
  const version: RuntimeVersionJson = {
    specName: v.specName,
    implName: v.implName,
    authoringVersion: Number(v.authoringVersion),
    specVersion: Number(v.specVersion),
    implVersion: Number(v.implVersion),
    apis: v.apis.map(([h, n]) => [h, Number(n)] as [string, number]),
    transactionVersion: Number(v.transactionVersion),
    stateVersion: Number(v.systemVersion ?? 1),
  };
  return { registry, metadata, metadataBytes: cachedBytes, decorated, version, ss58Format: 42 };
}

/** Storage entry by pallet and item in the camelCase the decorator uses. */
export function entry(rt: Runtime, pallet: string, item: string): StorageEntry {
  const e = rt.decorated.query[pallet]?.[item];
  if (!e) throw new Error(`storage ${pallet}.${item} is not in the metadata`);
  return e;
}

/** The full storage key (hex) of an entry and its arguments. */
export function storageKey(rt: Runtime, e: StorageEntry, ...args: unknown[]): string {
  const key = rt.registry.createType("StorageKey", args.length ? [e, args] : e);
  return key.toHex();
}

/** The lookup type name of an entry's value. */
export function valueType(rt: Runtime, e: StorageEntry): string {
  const t = e.meta.type;
  const id = t.isPlain ? t.asPlain : t.asMap.value;
  return rt.registry.createLookupType(id);
}

export function encodeAs(rt: Runtime, type: string, value: unknown): Codec {
  return rt.registry.createTypeUnsafe(type, [value]);
}

/** The 8-byte hash a runtime API is listed under in the runtime version. */
export function apiId(name: string): string {
  return blake2AsHex(name, 64);
}

export function hex(u8a: Uint8Array): string {
  return u8aToHex(u8a);
}
