/** Stable hashing of JSON values: the same value gives the same hash whatever its key order. */
import { createHash } from "node:crypto";
import { canonicalJson } from "../../protocol/canonical.ts";

export { canonicalJson };

/** First 16 hex digits of the SHA-256 of the canonical JSON. */
export function hashOf(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}
