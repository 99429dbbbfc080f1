/**
 * Conditions in the Kubernetes convention: `lastTransitionTime` moves only when the status
 * flips, so a reconcile that changes nothing produces an identical list.
 */
import type { Condition } from "../../api/index.ts";

export type ConditionStatus = Condition["status"];

export interface DesiredCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/**
 * The conditions this controller owns, computed from `desired`, keeping the transition time
 * of an existing condition whose status did not change.
 */
export function mergeConditions(
  existing: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  return desired.map((d) => {
    const old = findCondition(existing, d.type);
    const lastTransitionTime = old && old.status === d.status ? old.lastTransitionTime : now.toISOString();
    const c: Condition = {
      type: d.type,
      status: d.status,
      reason: d.reason,
      message: d.message,
      lastTransitionTime,
    };
    if (generation !== undefined) c.observedGeneration = generation;
    return c;
  });
}

export const isTrue = (list: readonly Condition[] | undefined, type: string): boolean =>
  findCondition(list, type)?.status === "True";
