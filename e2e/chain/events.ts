/**
 * Encodes runtime events as the real chain does: pallet index, variant index, then each
 * field with the type the metadata gives it.
 */
import { u8aConcat, stringCamelCase } from "@polkadot/util";
import type { Runtime } from "./runtime.ts";

/** `data` lists the fields in declaration order (tuple and named variants alike). */
export function encodeEvent(rt: Runtime, pallet: string, name: string, data: unknown[]): Uint8Array {
  const p = rt.metadata.asLatest.pallets.find((x) => x.name.eq(pallet));
  if (!p || p.events.isNone) throw new Error(`pallet ${pallet} has no events in the metadata`);
  const variants = rt.registry.lookup.getSiType(p.events.unwrap().type).def.asVariant.variants;
  const v = variants.find((x) => x.name.eq(name));
  if (!v) throw new Error(`event ${pallet}.${name} is not in the metadata`);
  if (v.fields.length !== data.length) {
    const names = v.fields.map((f) => (f.name.isSome ? stringCamelCase(f.name.unwrap()) : "_")).join(", ");
    throw new Error(`event ${pallet}.${name} takes ${v.fields.length} fields (${names}), got ${data.length}`);
  }
  const fields = v.fields.map((f, i) =>
    rt.registry.createTypeUnsafe(rt.registry.createLookupType(f.type), [data[i]]).toU8a(),
  );
  return u8aConcat(new Uint8Array([p.index.toNumber(), v.index.toNumber()]), ...fields);
}
