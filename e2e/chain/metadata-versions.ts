/**
 * Older metadata versions derived from the served V16, because a real node answers
 * `state_getMetadata` with V14 and offers V14, V15 and V16 through `Metadata_metadata_at_version`,
 * and clients such as the Python SDK (async-substrate-interface) cannot read V16 at all: they
 * read V14 for storage and calls and V15 for runtime APIs.
 *
 * The portable type registry is the same in all three versions, so the conversion only drops
 * what V16 added (deprecation info, associated types, view functions, API versions, the
 * per-version extension table) and fills in what V14/V15 name explicitly but V16 does not: the
 * UncheckedExtrinsic type, the runtime type and the tuple of transaction extensions, all of
 * which the production registry still contains (looked up by path below).
 */
import { Metadata, TypeRegistry } from "@polkadot/types";
import type { MetadataV16 } from "@polkadot/types/interfaces";
import { u8aConcat } from "@polkadot/util";

/** The versions a node running this runtime offers, oldest first. */
export const METADATA_VERSIONS = [14, 15, 16] as const;

/** The extrinsic format version V14/V15 describe (V16 lists [4, 5]; signed extrinsics are 4). */
const EXTRINSIC_VERSION = 4;

function typeIdByPath(v16: MetadataV16, path: string): number {
  const t = v16.lookup.types.find((x) => x.type.path.map((p) => p.toString()).join("::") === path);
  if (!t) throw new Error(`type ${path} is not in the metadata's registry`);
  return t.id.toNumber();
}

function parts(v16: MetadataV16) {
  const unchecked = typeIdByPath(v16, "sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic");
  const runtime = typeIdByPath(v16, "node_subtensor_runtime::Runtime");
  const params = v16.lookup.getSiType(unchecked).params;
  const extra = params.find((p) => ["Extra", "Extension"].includes(p.name.toString()))?.type;
  if (!extra || extra.isNone) throw new Error("UncheckedExtrinsic has no extension parameter");
  const signedExtensions = v16.extrinsic.transactionExtensions.map((e) => ({
    identifier: e.identifier,
    type: e.type,
    additionalSigned: e.implicit,
  }));
  const pallets = v16.pallets.map((p) => ({
    name: p.name,
    storage: p.storage.isSome
      ? {
          prefix: p.storage.unwrap().prefix,
          items: p.storage.unwrap().items.map((i) => ({
            name: i.name,
            modifier: i.modifier,
            type: i.type,
            fallback: i.fallback,
            docs: i.docs,
          })),
        }
      : null,
    calls: p.calls.isSome ? { type: p.calls.unwrap().type } : null,
    events: p.events.isSome ? { type: p.events.unwrap().type } : null,
    constants: p.constants.map((c) => ({ name: c.name, type: c.type, value: c.value, docs: c.docs })),
    errors: p.errors.isSome ? { type: p.errors.unwrap().type } : null,
    index: p.index,
    docs: p.docs,
  }));
  return { unchecked, runtime, extra: extra.unwrap().toNumber(), signedExtensions, pallets };
}

/**
 * The metadata of `version` as a node returns it: magic, version byte, body. `served` is the
 * V16 metadata the chain serves (magic + 16 + body).
 */
export function metadataAt(served: Uint8Array, version: number): Uint8Array | undefined {
  if (version === 16) return served;
  if (version !== 14 && version !== 15) return undefined;
  const registry = new TypeRegistry();
  const v16 = new Metadata(registry, served).asV16;
  const p = parts(v16);
  const body =
    version === 14
      ? registry.createType("MetadataV14", {
          lookup: v16.lookup,
          pallets: p.pallets,
          extrinsic: { type: p.unchecked, version: EXTRINSIC_VERSION, signedExtensions: p.signedExtensions },
          type: p.runtime,
        })
      : registry.createType("MetadataV15", {
          lookup: v16.lookup,
          pallets: p.pallets,
          extrinsic: {
            version: EXTRINSIC_VERSION,
            addressType: v16.extrinsic.addressType,
            callType: v16.extrinsic.callType,
            signatureType: v16.extrinsic.signatureType,
            extraType: p.extra,
            signedExtensions: p.signedExtensions,
          },
          type: p.runtime,
          apis: v16.apis.map((a) => ({
            name: a.name,
            docs: a.docs,
            methods: a.methods.map((m) => ({
              name: m.name,
              inputs: m.inputs,
              output: m.output,
              docs: m.docs,
            })),
          })),
          outerEnums: v16.outerEnums,
          custom: v16.custom,
        });
  return u8aConcat(served.subarray(0, 4), new Uint8Array([version]), body.toU8a());
}

const cache = new Map<string, Uint8Array | undefined>();

/** metadataAt, computed once per process and version (the conversion takes about a second). */
export function cachedMetadataAt(served: Uint8Array, version: number): Uint8Array | undefined {
  const key = `${served.length}:${version}`;
  if (!cache.has(key)) cache.set(key, metadataAt(served, version));
  return cache.get(key);
}
