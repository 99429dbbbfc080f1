/**
 * Deciding whether a status write is needed: compare only the fields (and condition types)
 * this controller owns, so that fields other controllers own never trigger a write.
 */
import type { Condition } from "../../api/index.ts";
import { canonicalJson } from "./hash.ts";

interface WithConditions {
  conditions?: Condition[];
}

export function statusChanged<S extends WithConditions>(
  current: S | undefined,
  desired: S,
  ownedFields: readonly (keyof S & string)[],
): boolean {
  const cur = (current ?? {}) as Record<string, unknown>;
  const want = desired as Record<string, unknown>;
  for (const f of ownedFields) {
    if (f === "conditions") continue;
    if (canonicalJson(cur[f]) !== canonicalJson(want[f])) return true;
  }
  const mine = new Set((desired.conditions ?? []).map((c) => c.type));
  const curMine = (current?.conditions ?? []).filter((c) => mine.has(c.type));
  const key = (l: Condition[]) => canonicalJson([...l].sort((a, b) => a.type.localeCompare(b.type)));
  return key(curMine) !== key(desired.conditions ?? []);
}
