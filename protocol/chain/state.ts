// Where a chain client stands with its endpoint (connection phase, last heads, failures) and
// the kinds of RPC error it reports: shared by the operator's chain bridge, the admission
// service and anything else that follows a chain with ChainConnection.

export type SyncPhase = "Connecting" | "Connected" | "Unreachable";

export interface HeadInfo {
  number: number;
  hash: string;
  /** Wall-clock ms when the client saw this head. */
  seenAt: number;
}

export interface SyncSnapshot {
  phase: SyncPhase;
  /** Redacted endpoint. */
  endpoint: string;
  best?: HeadInfo;
  finalized?: number;
  /** Failed attempts since the last successful connection. */
  failures: number;
  lastError?: string;
  /** Wall-clock ms of the next reconnect attempt while Unreachable. */
  retryAt?: number;
}

export const RPC_ERROR_KINDS = ["connect", "disconnect", "timeout", "query", "decode"] as const;
export type RpcErrorKind = (typeof RPC_ERROR_KINDS)[number];
