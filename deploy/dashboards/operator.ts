// "Covenant operator": is the control plane healthy and keeping up?
import type { Dashboard } from "./model.ts";

const job = 'job=~"$job"';

export const operatorDashboard: Dashboard = {
  uid: "covenant-operator",
  title: "Covenant / Operator",
  description: "Health of the covenant operator: leadership, reconciles, work queues, API traffic, Events.",
  variables: { job: "label_values(covenant_operator_build_info, job)" },
  rows: [
    {
      title: "Leadership",
      panels: [
        {
          title: "Leader",
          description: "Replicas holding the Lease (exactly one is healthy).",
          kind: "stat",
          unit: "none",
          targets: [{ expr: `sum(covenant_leader_election_is_leader{${job}})`, legend: "leaders" }],
        },
        {
          title: "Leadership changes",
          description: "Lease transitions seen by each replica over 1h.",
          kind: "timeseries",
          unit: "none",
          targets: [
            {
              expr: `sum by (instance) (increase(covenant_leader_election_transitions_total{${job}}[1h]))`,
              legend: "{{instance}}",
            },
          ],
        },
        {
          title: "Version",
          description: "Operator builds running.",
          kind: "stat",
          unit: "none",
          targets: [
            { expr: `count by (version) (covenant_operator_build_info{${job}})`, legend: "{{version}}" },
          ],
        },
      ],
    },
    {
      title: "Reconciles",
      panels: [
        {
          title: "Reconciles per second",
          description: "By controller and result.",
          kind: "timeseries",
          unit: "ops",
          targets: [
            {
              expr: `sum by (controller, result) (rate(covenant_reconcile_duration_seconds_count{${job}}[5m]))`,
              legend: "{{controller}} {{result}}",
            },
          ],
        },
        {
          title: "Reconcile latency p50 / p99",
          description: "Time inside one reconcile.",
          kind: "timeseries",
          unit: "s",
          targets: [0.5, 0.99].map((q) => ({
            expr: `histogram_quantile(${q}, sum by (controller, le) (rate(covenant_reconcile_duration_seconds_bucket{${job}}[5m])))`,
            legend: `{{controller}} p${q * 100}`,
          })),
        },
        {
          title: "Reconcile errors",
          description: "Reconciles that failed and were retried with backoff.",
          kind: "timeseries",
          unit: "ops",
          targets: [
            {
              expr: `sum by (controller) (rate(covenant_reconcile_errors_total{${job}}[5m]))`,
              legend: "{{controller}}",
            },
          ],
        },
      ],
    },
    {
      title: "Work queues and API",
      panels: [
        {
          title: "Queue depth",
          description: "Keys waiting, ready or delayed.",
          kind: "timeseries",
          unit: "none",
          targets: [{ expr: `sum by (name) (covenant_workqueue_depth{${job}})`, legend: "{{name}}" }],
        },
        {
          title: "Queue wait p99",
          description: "Time from add to a worker taking the key.",
          kind: "timeseries",
          unit: "s",
          targets: [
            {
              expr: `histogram_quantile(0.99, sum by (name, le) (rate(covenant_workqueue_queue_duration_seconds_bucket{${job}}[5m])))`,
              legend: "{{name}}",
            },
          ],
        },
        {
          title: "API requests",
          description: "Requests to kube-apiserver by verb and code.",
          kind: "timeseries",
          unit: "reqps",
          targets: [
            {
              expr: `sum by (verb, code) (rate(covenant_kube_api_requests_total{${job}}[5m]))`,
              legend: "{{verb}} {{code}}",
            },
          ],
        },
        {
          title: "Watch re-lists",
          description: "Full re-lists by reason (410 Gone, errors, resync).",
          kind: "timeseries",
          unit: "none",
          targets: [
            {
              expr: `sum by (resource, reason) (increase(covenant_informer_relists_total{${job}}[1h]))`,
              legend: "{{resource}} {{reason}}",
            },
          ],
        },
        {
          title: "Events",
          description: "Kubernetes Events written and dropped.",
          kind: "timeseries",
          unit: "ops",
          targets: [
            { expr: `sum by (type) (rate(covenant_events_emitted_total{${job}}[5m]))`, legend: "{{type}}" },
            {
              expr: `sum by (reason) (rate(covenant_events_dropped_total{${job}}[5m]))`,
              legend: "dropped {{reason}}",
            },
          ],
        },
      ],
    },
  ],
};
