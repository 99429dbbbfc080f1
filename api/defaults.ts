/**
 * Structural defaulting as the API server does it, driven by the same schemas that go into
 * the CRDs: a missing field with a default gets a copy of it, then defaulting continues
 * inside. Used by test builders and by anything that reads objects not yet stored.
 */
import type { JSONSchema } from "./schema.ts";

export function applyDefaults<T>(schema: JSONSchema, value: T): T {
  return walk(schema, structuredClone(value)) as T;
}

function walk(schema: JSONSchema, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (schema.type === "array" && Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => walk(items, v));
  }
  if (schema.type !== "object" || typeof value !== "object" || Array.isArray(value)) return value;
  const obj = value as Record<string, unknown>;
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (obj[name] === undefined && prop.default !== undefined) obj[name] = structuredClone(prop.default);
    if (obj[name] !== undefined) obj[name] = walk(prop, obj[name]);
  }
  if (schema.additionalProperties) {
    const values = schema.additionalProperties;
    for (const [k, v] of Object.entries(obj)) obj[k] = walk(values, v);
  }
  return obj;
}
