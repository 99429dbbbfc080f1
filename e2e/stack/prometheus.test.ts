// Prometheus scrapes a target this test serves, and the value comes back through
// its HTTP API.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { Counter, Registry } from "prom-client";
import { freePort } from "./ports.ts";
import { startPrometheus, type PrometheusServer } from "./prometheus.ts";
import { waitFor } from "./wait.ts";

describe("local Prometheus", { timeout: 120_000 }, () => {
  let prom: PrometheusServer;
  let target: Server;
  const registry = new Registry();
  const rounds = new Counter({
    name: "covenant_test_rounds_total",
    help: "rounds seen by the test",
    labelNames: ["run"],
    registers: [registry],
  });

  before(async () => {
    const port = await freePort();
    target = createServer(async (_req, res) => {
      res.setHeader("content-type", registry.contentType);
      res.end(await registry.metrics());
    });
    await new Promise<void>((r) => target.listen(port, "127.0.0.1", r));
    prom = await startPrometheus({ targets: [`127.0.0.1:${port}`] });
  });
  after(async () => {
    await prom?.stop();
    target?.close();
  });

  test("scrapes a target and answers queries about it", async () => {
    rounds.inc({ run: "demo" }, 7);
    const up = await waitFor("target up", async () => {
      const r = await prom.query('up{job="test"}');
      return r.length === 1 && r[0]?.value === 1 ? r : undefined;
    });
    assert.equal(up.length, 1);
    const samples = await waitFor("counter scraped", async () => {
      const r = await prom.query('covenant_test_rounds_total{run="demo"}');
      return r.length === 1 && r[0]?.value === 7 ? r : undefined;
    });
    assert.equal(samples[0]?.metric.run, "demo");

    rounds.inc({ run: "demo" }, 5);
    await waitFor("new value scraped", async () => {
      const r = await prom.query('covenant_test_rounds_total{run="demo"}');
      return r[0]?.value === 12;
    });
  });

  test("reports a bad query as an error", async () => {
    await assert.rejects(prom.query("sum(("), /query sum\(\(/);
  });
});
