// "Covenant / Training run": is the run training, who is in it, and what does a round cost?
import type { Dashboard } from "./model.ts";

const run = 'run=~"$run"';

export const runDashboard: Dashboard = {
  uid: "covenant-run",
  title: "Covenant / Training run",
  description:
    "One TrainingRun: rounds, membership and churn, loss, the cost of a round (train, compress, gather, aggregate), payloads refused, and the chain.",
  variables: { run: "label_values(covenant_run_round, run)" },
  rows: [
    {
      title: "Progress",
      panels: [
        {
          title: "Round",
          description: "Rounds completed (the round being trained) out of the run's rounds.",
          kind: "stat",
          unit: "none",
          targets: [
            { expr: `max by (run) (covenant_run_round{${run}})`, legend: "{{run}} round" },
            { expr: `max by (run) (covenant_run_rounds{${run}})`, legend: "{{run}} of" },
          ],
        },
        {
          title: "Round duration",
          description: "Seconds the last completed round took (from one selection to the next).",
          kind: "timeseries",
          unit: "s",
          targets: [{ expr: `max by (run) (covenant_run_last_round_seconds{${run}})`, legend: "{{run}}" }],
        },
        {
          title: "Phase",
          description: "WaitingForPeers, Warmup, Training, Completed or Failed.",
          kind: "stat",
          unit: "none",
          targets: [{ expr: `max by (run, phase) (covenant_run_phase{${run}}) == 1`, legend: "{{phase}}" }],
        },
      ],
    },
    {
      title: "Peers and churn",
      panels: [
        {
          title: "Peers",
          description: "CovenantPeers of the run, those whose worker pod is Ready, and the active members.",
          kind: "timeseries",
          unit: "none",
          targets: [
            { expr: `sum by (run) (covenant_run_peers{${run}})`, legend: "{{run}} peers" },
            { expr: `sum by (run) (covenant_run_ready_peers{${run}})`, legend: "{{run}} ready" },
            { expr: `sum by (run) (covenant_run_active_peers{${run}})`, legend: "{{run}} active" },
          ],
        },
        {
          title: "Membership changes",
          description: "Peers that joined or left the membership over 15m; each change moves data shards.",
          kind: "timeseries",
          unit: "none",
          targets: [
            {
              expr: `sum by (run, change) (increase(covenant_membership_changes_total{${run}}[15m]))`,
              legend: "{{run}} {{change}}",
            },
            { expr: `max by (run) (covenant_run_membership_epoch{${run}})`, legend: "{{run}} epoch" },
          ],
        },
        {
          title: "Missed rounds",
          description:
            "Consecutive closed rounds without a submission, by peer (a member leaves past the limit).",
          kind: "timeseries",
          unit: "none",
          targets: [{ expr: `max by (peer) (covenant_peer_missed_rounds{${run}})`, legend: "{{peer}}" }],
        },
      ],
    },
    {
      title: "Training",
      panels: [
        {
          title: "Loss",
          description:
            "Mean inner-step loss of each miner's last round, and the validator's loss of the global model.",
          kind: "timeseries",
          unit: "none",
          targets: [{ expr: `covenant_worker_loss{${run}}`, legend: "{{role}} {{instance}}" }],
        },
        {
          title: "Tokens per second",
          description: "Training throughput over all miners.",
          kind: "timeseries",
          unit: "none",
          targets: [
            { expr: `sum by (run) (rate(covenant_worker_tokens_total{${run}}[5m]))`, legend: "{{run}}" },
          ],
        },
        {
          title: "Inner step",
          description: "Mean seconds per inner optimizer step.",
          kind: "timeseries",
          unit: "s",
          targets: [
            {
              expr: `sum by (run) (rate(covenant_worker_inner_step_seconds_sum{${run}}[5m])) / sum by (run) (rate(covenant_worker_inner_step_seconds_count{${run}}[5m]))`,
              legend: "{{run}}",
            },
          ],
        },
      ],
    },
    {
      title: "Communication",
      panels: [
        {
          title: "Round overhead",
          description:
            "p90 seconds to compress a pseudo-gradient, gather the selected payloads, and aggregate them.",
          kind: "timeseries",
          unit: "s",
          targets: [
            {
              expr: `histogram_quantile(0.9, sum by (le) (rate(covenant_worker_compress_seconds_bucket{${run}}[5m])))`,
              legend: "compress",
            },
            {
              expr: `histogram_quantile(0.9, sum by (le) (rate(covenant_worker_gather_seconds_bucket{${run}}[5m])))`,
              legend: "gather",
            },
            {
              expr: `histogram_quantile(0.9, sum by (le) (rate(covenant_worker_aggregate_seconds_bucket{${run}}[5m])))`,
              legend: "aggregate",
            },
          ],
        },
        {
          title: "Payload traffic",
          description: "Payload bytes per second sent and received over the bus, and the compression ratio.",
          kind: "timeseries",
          unit: "Bps",
          targets: [
            {
              expr: `sum by (direction) (rate(covenant_worker_payload_bytes_total{${run}}[5m]))`,
              legend: "{{direction}}",
            },
            { expr: `avg(covenant_worker_compression_ratio{${run}})`, legend: "compression ratio" },
          ],
        },
        {
          title: "Payloads refused",
          description: "Submissions refused or penalised by the validator over 15m, by reason.",
          kind: "timeseries",
          unit: "none",
          targets: [
            {
              expr: `sum by (reason) (increase(covenant_worker_rejected_payloads_total{${run}}[15m])) > 0`,
              legend: "{{reason}}",
            },
          ],
        },
      ],
    },
    {
      title: "Chain",
      panels: [
        {
          title: "Chain head",
          description: "Best block the operator's chain bridge has seen, and seconds since the last new one.",
          kind: "timeseries",
          unit: "none",
          targets: [
            { expr: `max by (run) (covenant_chain_block_height{${run}})`, legend: "{{run}} height" },
            { expr: `max by (run) (covenant_chain_head_age_seconds{${run}})`, legend: "{{run}} head age s" },
          ],
        },
        {
          title: "Chain connection",
          description: "1 while connected; RPC errors by kind over 15m.",
          kind: "timeseries",
          unit: "none",
          targets: [
            { expr: `max by (run) (covenant_chain_connected{${run}})`, legend: "{{run}} connected" },
            {
              expr: `sum by (kind) (increase(covenant_chain_rpc_errors_total{${run}}[15m]))`,
              legend: "{{kind}} errors",
            },
          ],
        },
        {
          title: "Workers' chain calls",
          description: "burned_register, set_commitment and set_weights over 1h, by result.",
          kind: "timeseries",
          unit: "none",
          targets: [
            {
              expr: `sum by (call, result) (increase(covenant_worker_chain_calls_total{${run}}[1h]))`,
              legend: "{{call}} {{result}}",
            },
          ],
        },
      ],
    },
  ],
};
