// The shipped Grafana dashboards match their models, read only metrics the code
// defines, and every query is valid PromQL for a real Prometheus.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createChainMetrics } from "../../operator/chain/metrics.ts";
import { createOperatorMetrics } from "../../operator/metrics/registry.ts";
import { createRunMetrics } from "../../operator/metrics/runs.ts";
import { workerMetrics } from "../../worker/metrics.ts";
import { dashboardDir, dashboards } from "../../deploy/dashboards/index.ts";
import { expressions, metricNames, toGrafana } from "../../deploy/dashboards/model.ts";
import { startPrometheus, type PrometheusServer } from "../stack/prometheus.ts";

/** Series names a registry exposes (histograms as _bucket, _sum and _count). */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const operator = createOperatorMetrics({ processMetrics: false }).registry;
  createRunMetrics(operator, { runs: () => [], peers: () => [] });
  createChainMetrics(operator);
  const registries = [operator, workerMetrics({ run: "ns/run", role: "miner" }).registry];
  for (const r of registries) {
    for (const m of await r.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === "histogram")
        for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m.name}${s}`);
    }
  }
  return names;
}

describe("Grafana dashboards", { timeout: 120_000 }, () => {
  let prom: PrometheusServer;
  before(async () => {
    prom = await startPrometheus();
  });
  after(async () => {
    await prom?.stop();
  });

  test("the chart's JSON files are generated from the models (run `make generate` when this fails)", () => {
    for (const d of dashboards) {
      const file = readFileSync(join(dashboardDir, `${d.uid}.json`), "utf8");
      assert.equal(file, `${JSON.stringify(toGrafana(d), null, 2)}\n`, d.uid);
    }
  });

  test("every metric a panel reads is defined by the code", async () => {
    const known = await exposedNames();
    for (const d of dashboards) {
      for (const expr of expressions(d)) {
        for (const name of metricNames(expr)) assert.ok(known.has(name), `${d.uid}: ${name} is not defined`);
      }
    }
  });

  test("every query is valid PromQL", async () => {
    for (const d of dashboards) {
      for (const expr of expressions(d)) {
        // Template variables are filled with a match-all value, as Grafana does for "All".
        await prom.query(expr.replaceAll(/\$[a-z_]+/g, ".*"));
      }
    }
    await assert.rejects(prom.query("sum(rate(covenant_reconcile_errors_total[5m])"), /query/);
  });
});
