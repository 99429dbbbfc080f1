// Metrics of the admission service. Labels are closed sets: `result` is admitted or refused;
// `reason` is the role granted for an admission and a RefusalReason for a refusal.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { REFUSAL_REASONS } from "./reasons.ts";

export interface AdmissionMetrics {
  decisions: Counter<"result" | "reason">;
  /** From the request's arrival to the answer's publication. */
  latency: Histogram<"result">;
  chainConnected: Gauge;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  const decisions = new Counter({
    name: "covenant_admission_decisions_total",
    help: "Bus logins decided by the admission service, by result and reason (the role granted, or why it was refused).",
    labelNames: ["result", "reason"],
    registers: [registry],
  });
  // Every series exists from the start, so a rate() or an alert on a reason works before its first event.
  for (const role of ["miner", "validator"]) decisions.inc({ result: "admitted", reason: role }, 0);
  for (const reason of REFUSAL_REASONS) decisions.inc({ result: "refused", reason }, 0);
  return {
    decisions,
    latency: new Histogram({
      name: "covenant_admission_decision_seconds",
      help: "Seconds from an authorization request's arrival to the answer, by result.",
      labelNames: ["result"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    chainConnected: new Gauge({
      name: "covenant_admission_chain_connected",
      help: "1 while the admission service is connected to the chain endpoint.",
      registers: [registry],
    }),
  };
}
