/**
 * Domain metrics of TrainingRuns and CovenantPeers, read from the operator's caches when
 * Prometheus scrapes (nothing to keep in step). Label `run` is `<namespace>/<name>`; `peer`
 * likewise; both are bounded by the objects on the cluster.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { CovenantPeer, TrainingRun } from "../../api/index.ts";
import { RUN_PHASES } from "../../api/index.ts";

export interface RunMetricsSource {
  runs(): readonly TrainingRun[];
  peers(): readonly CovenantPeer[];
}

export interface RunMetrics {
  /** Membership changes published by this operator, by run and direction. */
  membershipChanges: Counter<"run" | "change">;
}

const key = (o: { metadata: { namespace?: string; name: string } }) =>
  `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;

export function createRunMetrics(registry: Registry, src: RunMetricsSource): RunMetrics {
  const gauge = (name: string, help: string, value: (r: TrainingRun) => number | undefined): Gauge<"run"> =>
    new Gauge({
      name,
      help,
      labelNames: ["run"],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of src.runs()) {
          const v = value(r);
          if (v !== undefined) this.set({ run: key(r) }, v);
        }
      },
    });
  gauge("covenant_run_round", "Outer round the run is training (rounds completed).", (r) => r.status?.round);
  gauge("covenant_run_rounds", "Outer rounds the run trains in all.", (r) => r.spec?.rounds);
  gauge(
    "covenant_run_last_round_seconds",
    "Duration of the run's last completed round.",
    (r) => r.status?.lastRoundSeconds,
  );
  gauge("covenant_run_peers", "CovenantPeers that reference the run.", (r) => r.status?.peers);
  gauge("covenant_run_ready_peers", "Peers whose worker pod is Ready.", (r) => r.status?.readyPeers);
  gauge(
    "covenant_run_active_peers",
    "Members of the run's current membership epoch.",
    (r) => r.status?.activePeers?.length,
  );
  gauge("covenant_run_membership_epoch", "The run's membership epoch.", (r) => r.status?.membershipEpoch);
  new Gauge({
    name: "covenant_run_phase",
    help: "1 for the phase the run is in, 0 for the others.",
    labelNames: ["run", "phase"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of src.runs())
        for (const phase of RUN_PHASES) this.set({ run: key(r), phase }, r.status?.phase === phase ? 1 : 0);
    },
  });
  new Gauge({
    name: "covenant_peer_missed_rounds",
    help: "Consecutive closed rounds without a submission, by peer and run.",
    labelNames: ["run", "peer"],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of src.peers()) {
        const missed = p.status?.missedRounds;
        if (missed === undefined) continue;
        this.set({ run: `${p.metadata.namespace ?? "default"}/${p.spec.runRef.name}`, peer: key(p) }, missed);
      }
    },
  });
  return {
    membershipChanges: new Counter({
      name: "covenant_membership_changes_total",
      help: "Peers that joined or left a run's membership, as published by this operator.",
      labelNames: ["run", "change"],
      registers: [registry],
    }),
  };
}
