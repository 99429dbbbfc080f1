import assert from "node:assert/strict";
import http from "node:http";
import { describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { createOperatorMetrics } from "../metrics/registry.ts";
import { ApiError, KubeClient, type KubeClientOptions } from "./client.ts";
import { CORE } from "./keys.ts";
import { FakeClock } from "./testing.ts";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

/** A local API server stand-in for the length of `fn`; `hits` counts requests. */
async function withServer(
  handler: Handler,
  fn: (url: string, hits: () => number) => Promise<void>,
): Promise<void> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    // Drain the body so that keep-alive connections stay usable.
    req.resume();
    req.on("end", () => handler(req, res, hits));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  try {
    const { port } = server.address() as { port: number };
    await fn(`http://127.0.0.1:${port}`, () => hits);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function clientFor(url: string, options: KubeClientOptions = {}): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: url, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return KubeClient.fromKubeConfig(kc, options);
}

const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "ns" } };
const json = (res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(code, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
const tooMany = (res: http.ServerResponse, retryAfter?: string) =>
  json(
    res,
    429,
    { kind: "Status", code: 429, reason: "TooManyRequests", message: "slow down" },
    retryAfter ? { "Retry-After": retryAfter } : {},
  );
const unavailable = (res: http.ServerResponse, retryAfter: string) =>
  json(res, 503, { kind: "Status", code: 503, reason: "ServiceUnavailable" }, { "Retry-After": retryAfter });

async function counterValue(
  c: { get(): Promise<{ values: { labels: object; value: number }[] }> },
  labels: object,
): Promise<number> {
  const { values } = await c.get();
  return values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels))?.value ?? 0;
}

describe("KubeClient under pushback", () => {
  test("a 429 with Retry-After is repeated after the wait, succeeds, and is counted", async () => {
    const metrics = createOperatorMetrics({ processMetrics: false });
    await withServer(
      (_req, res, hit) => (hit === 1 ? tooMany(res, "1") : json(res, 200, configMap)),
      async (url, hits) => {
        const client = clientFor(url, { metrics, caller: "test" });
        const t0 = performance.now();
        const cm = await client.get(CORE.configMaps, "ns", "cm");
        const waited = performance.now() - t0;
        assert.equal(cm.metadata?.name, "cm");
        assert.equal(hits(), 2);
        // Only a lower bound: an upper one could flake on a loaded machine.
        assert.ok(waited >= 900, `waited ${waited} ms for Retry-After: 1`);
        const retries = metrics.apiRetries;
        assert.equal(await counterValue(retries, { verb: "get", resource: "configmaps", code: "429" }), 1);
        const requests = metrics.apiRequests;
        const by = (code: string) => ({ verb: "get", resource: "configmaps", code, controller: "test" });
        assert.equal(await counterValue(requests, by("429")), 1);
        assert.equal(await counterValue(requests, by("200")), 1);
      },
    );
  });

  test("writes are repeated after 429 (not processed) but not after 503 (maybe processed)", async () => {
    const clock = new FakeClock();
    await withServer(
      (req, res, hit) => {
        if (req.method === "POST") return hit === 1 ? tooMany(res, "2") : json(res, 201, configMap);
        unavailable(res, "1");
      },
      async (url, hits) => {
        const client = clientFor(url, { clock });
        await client.create(CORE.configMaps, configMap);
        assert.equal(hits(), 2);
        assert.deepEqual(clock.slept, [2000]);
        await assert.rejects(
          client.patch(CORE.configMaps, "ns", "cm", { data: {} }, "merge"),
          (e: unknown) => e instanceof ApiError && e.statusCode === 503,
        );
        assert.equal(hits(), 3, "the PATCH went out once");
        await assert.rejects(
          client.delete(CORE.configMaps, "ns", "cm"),
          (e: unknown) => e instanceof ApiError && e.statusCode === 503,
        );
        assert.equal(hits(), 4, "the DELETE went out once");
        assert.deepEqual(clock.slept, [2000]);
      },
    );
  });

  test("a GET answered 503 with Retry-After is repeated a bounded number of times, each wait capped", async () => {
    const clock = new FakeClock();
    await withServer(
      (_req, res) => unavailable(res, "3600"),
      async (url, hits) => {
        const client = clientFor(url, { clock });
        await assert.rejects(
          client.list(CORE.configMaps, { namespace: "ns" }),
          (e: unknown) => e instanceof ApiError && e.statusCode === 503,
        );
        assert.equal(hits(), 4, "the first attempt and 3 repeats");
        assert.deepEqual(clock.slept, [10_000, 10_000, 10_000]);
      },
    );
  });

  test("a 429 without Retry-After waits 1 s; retries can be turned off", async () => {
    const clock = new FakeClock();
    await withServer(
      (_req, res) => tooMany(res),
      async (url, hits) => {
        await assert.rejects(
          clientFor(url, { clock, retry: { maxRetries: 1, maxDelayMs: 10_000 } }).get(
            CORE.configMaps,
            "ns",
            "cm",
          ),
          (e: unknown) => e instanceof ApiError && e.statusCode === 429,
        );
        assert.deepEqual(clock.slept, [1000]);
        assert.equal(hits(), 2);
        await assert.rejects(
          clientFor(url, { clock, retry: { maxRetries: 0, maxDelayMs: 0 } }).get(CORE.configMaps, "ns", "cm"),
        );
        assert.equal(hits(), 3);
      },
    );
  });

  test("an abort while waiting for Retry-After ends the request at once", async () => {
    await withServer(
      (_req, res) => tooMany(res, "8"),
      async (url, hits) => {
        const ac = new AbortController();
        const client = clientFor(url).withSignal(ac.signal);
        const t0 = performance.now();
        const pending = client.get(CORE.configMaps, "ns", "cm");
        setTimeout(() => ac.abort(), 100);
        await assert.rejects(pending, { name: "AbortError" });
        assert.ok(performance.now() - t0 < 7000, "did not sit out the 8 s Retry-After");
        assert.equal(hits(), 1);
      },
    );
  });

  test("withSignal aborts a request in flight", async () => {
    let closed: () => void = () => undefined;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    await withServer(
      (req) => req.socket.once("close", () => closed()), // never answers
      async (url) => {
        const ac = new AbortController();
        const pending = clientFor(url).withSignal(ac.signal).get(CORE.configMaps, "ns", "cm");
        setTimeout(() => ac.abort(), 50);
        await assert.rejects(pending, { name: "AbortError" });
        await serverSawClose;
      },
    );
  });
});

describe("KubeClient client-side rate limit", () => {
  test("requests beyond the burst wait 1/qps each; the wait is recorded", async () => {
    const clock = new FakeClock();
    const metrics = createOperatorMetrics({ processMetrics: false });
    await withServer(
      (_req, res) => json(res, 200, configMap),
      async (url, hits) => {
        const client = clientFor(url, { clock, metrics, caller: "c1", rateLimit: { qps: 2, burst: 2 } });
        for (let i = 0; i < 4; i++) await client.get(CORE.configMaps, "ns", "cm");
        assert.equal(hits(), 4);
        assert.deepEqual(clock.slept.map(Math.round), [500, 500]);
        const { values } = await metrics.apiRateLimiterWait.get();
        const count = values.find((v) => v.metricName?.endsWith("_count") && v.labels.controller === "c1");
        const sum = values.find((v) => v.metricName?.endsWith("_sum") && v.labels.controller === "c1");
        assert.equal(count?.value, 4);
        assert.equal(Math.round((sum?.value ?? 0) * 1000), 1000);
      },
    );
  });

  test("clients derived with withCaller share the bucket, unless given their own", async () => {
    const clock = new FakeClock();
    await withServer(
      (_req, res) => json(res, 200, configMap),
      async (url) => {
        const client = clientFor(url, { clock, rateLimit: { qps: 1, burst: 1 } });
        await client.get(CORE.configMaps, "ns", "cm"); // takes the only token
        await client.withCaller("other").get(CORE.configMaps, "ns", "cm");
        assert.deepEqual(clock.slept.map(Math.round), [1000], "shared bucket");
        await client.withCaller("leader-election", { ownRateLimit: true }).get(CORE.configMaps, "ns", "cm");
        assert.deepEqual(clock.slept.map(Math.round), [1000], "own bucket: no wait");
      },
    );
  });

  test("watches are not rate limited", async () => {
    const clock = new FakeClock();
    await withServer(
      (req, res) => {
        if (req.url?.includes("watch=1")) {
          res.writeHead(200, { "Content-Type": "application/json" });
          res.end(JSON.stringify({ type: "ADDED", object: configMap }) + "\n");
          return;
        }
        json(res, 200, configMap);
      },
      async (url) => {
        const client = clientFor(url, { clock, rateLimit: { qps: 2, burst: 1 } });
        await client.get(CORE.configMaps, "ns", "cm"); // the only token
        const events: string[] = [];
        await client.watch(CORE.configMaps, {}, (e) => events.push(e.type), new AbortController().signal);
        assert.deepEqual(events, ["ADDED"]);
        assert.deepEqual(clock.slept, [], "the watch did not wait");
        await client.get(CORE.configMaps, "ns", "cm");
        // 500 ms: one token owed (the first GET's), none taken by the watch.
        assert.deepEqual(clock.slept.map(Math.round), [500]);
      },
    );
  });
});
