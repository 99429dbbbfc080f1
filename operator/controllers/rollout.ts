/**
 * The rollout bound: a change that needs new worker pods (a new image, a new bus URL...)
 * replaces a run's pods a few at a time, never all at once. Like a Deployment's
 * maxUnavailable: an outdated pod that is available (Ready) is replaced only while fewer
 * than `maxUnavailable` peers of the run are unavailable, whatever the reason; an outdated
 * pod that is not available is replaced at once (nothing is lost). Peers take their turn by
 * name, so reconciles of different peers running at the same time from the same cache agree
 * on who goes next and never exceed the bound together. Pure.
 */

export interface RolloutPeer {
  /** CovenantPeer name. */
  name: string;
  /** Has a live (not terminating) worker pod that is Ready. */
  available: boolean;
  /** Its live worker pod runs an outdated spec. */
  outdated: boolean;
}

export type RolloutDecision = { replace: true } | { replace: false; message: string };

/** Whether the outdated pod of peer `self` may be replaced now. */
export function rolloutDecision(
  self: string,
  peers: readonly RolloutPeer[],
  maxUnavailable: number,
): RolloutDecision {
  const me = peers.find((p) => p.name === self);
  if (!me || !me.available) return { replace: true };
  const unavailable = peers.filter((p) => !p.available).map((p) => p.name);
  const budget = Math.max(0, maxUnavailable - unavailable.length);
  const queue = peers
    .filter((p) => p.available && p.outdated)
    .map((p) => p.name)
    .sort();
  const place = queue.indexOf(self);
  if (place >= 0 && place < budget) return { replace: true };
  const down = unavailable.length
    ? `${unavailable.length} of at most ${maxUnavailable} peers unavailable (${unavailable.sort().slice(0, 5).join(", ")}${unavailable.length > 5 ? ", ..." : ""})`
    : `at most ${maxUnavailable} peers replaced at once`;
  return {
    replace: false,
    message: `outdated pod waits for its turn in the rollout: ${down}; ${Math.max(0, place)} outdated peers before it`,
  };
}
