import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOperatorMetrics } from "./registry.ts";

describe("operator metrics", () => {
  test("follow the naming conventions: prefix, _total on counters, base units", async () => {
    // prom-client's process metrics keep their upstream names (some gauges end in _total).
    const m = createOperatorMetrics({ processMetrics: false });
    const all = await m.registry.getMetricsAsJSON();
    assert.ok(all.length > 10);
    for (const metric of all) {
      assert.match(metric.name, /^covenant_[a-z0-9_]+$/, metric.name);
      const type = String(metric.type);
      if (type === "counter") assert.match(metric.name, /_total$/, `${metric.name} is a counter`);
      else assert.doesNotMatch(metric.name, /_total$/, `${metric.name} is a ${type}`);
      if (type === "histogram")
        assert.match(metric.name, /_(seconds|bytes)$/, `${metric.name} needs a base unit`);
      assert.ok(metric.help.length > 10, `${metric.name} needs help text`);
    }
  });

  test("registries are independent, so several managers can live in one process", async () => {
    const a = createOperatorMetrics({ processMetrics: false });
    const b = createOperatorMetrics({ processMetrics: false });
    a.reconcileErrors.inc({ controller: "x" });
    const inB = await b.reconcileErrors.get();
    assert.equal(inB.values.length, 0);
    assert.match(await a.registry.metrics(), /^covenant_reconcile_errors_total\{controller="x"\} 1$/m);
  });

  test("process metrics, when on, are under the operator prefix", async () => {
    const text = await createOperatorMetrics().registry.metrics();
    assert.match(text, /^covenant_operator_process_resident_memory_bytes \d+/m);
  });

  test("build info carries the version", async () => {
    const m = createOperatorMetrics({ processMetrics: false, version: "1.2.3" });
    assert.match(await m.registry.metrics(), /^covenant_operator_build_info\{version="1\.2\.3"\} 1$/m);
  });
});
