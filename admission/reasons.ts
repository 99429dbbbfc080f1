// Why a login was refused: a closed set, so the metric's `reason` label stays bounded and
// operators can alert on each one.
export const REFUSAL_REASONS = [
  /** The request or the login in it is not what a server or a peer sends. */
  "malformed",
  /** The server forwarded no nonce (the client sent no `sig`, or the server is misconfigured). */
  "no_nonce",
  /** The login names another run than the one this service admits to. */
  "wrong_run",
  /** The sr25519 signature does not verify for the hotkey over this nonce, run and role. */
  "bad_signature",
  /** The hotkey holds no uid on the run's subnet. */
  "unregistered",
  /** The login asks for the validator role without a validator permit or a listing in config. */
  "not_validator",
  /** The chain could not be asked in time (not connected, or the query failed or timed out). */
  "chain_unreachable",
  /** A bug or an unexpected failure inside the service; the request is refused, never dropped. */
  "internal",
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];
