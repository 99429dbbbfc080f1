/**
 * Where the bridge stands with the chain, and the TrainingRun ChainSynced condition that
 * follows from it. Pure.
 */
import type { SyncSnapshot } from "../../protocol/chain/state.ts";
import { ChainReason } from "./reasons.ts";

export type { HeadInfo, SyncPhase, SyncSnapshot } from "../../protocol/chain/state.ts";

export interface ConditionSpec {
  type: "ChainSynced";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/** A head older than this (ms) means the chain stalled. Production blocks come every 12 s. */
export const DEFAULT_STALE_AFTER_MS = 60_000;

export function chainSyncedCondition(
  s: SyncSnapshot,
  now: number,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
): ConditionSpec {
  const c = (status: ConditionSpec["status"], reason: string, message: string): ConditionSpec => ({
    type: "ChainSynced",
    status,
    reason,
    message,
  });
  if (s.phase === "Unreachable") {
    const retry =
      s.retryAt === undefined
        ? ""
        : `; retry ${s.failures} in ${Math.max(0, Math.ceil((s.retryAt - now) / 1000))}s`;
    return c(
      "False",
      ChainReason.ChainUnreachable,
      `cannot reach ${s.endpoint}: ${s.lastError ?? "connection failed"}${retry}`,
    );
  }
  if (s.phase === "Connecting" || !s.best) {
    return c("Unknown", ChainReason.Connecting, `connecting to ${s.endpoint}`);
  }
  const age = now - s.best.seenAt;
  if (age > staleAfterMs) {
    return c(
      "False",
      ChainReason.ChainStalled,
      `no new block from ${s.endpoint} for ${Math.round(age / 1000)}s (last #${s.best.number})`,
    );
  }
  return c("True", ChainReason.Synced, `following ${s.endpoint} at block #${s.best.number}`);
}

/** The window (round clock) a block belongs to: block // blocksPerWindow. */
export function windowOf(block: number, blocksPerWindow: number): number {
  if (!Number.isInteger(blocksPerWindow) || blocksPerWindow < 1) {
    throw new Error(`blocksPerWindow must be a positive integer, got ${blocksPerWindow}`);
  }
  return Math.floor(block / blocksPerWindow);
}
