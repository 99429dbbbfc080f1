import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { CORE } from "./keys.ts";
import { Manager } from "./manager.ts";

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function unreachableConfig(): Promise<KubeConfig> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `https://127.0.0.1:${await closedPort()}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "not-a-real-token" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

describe("Manager without a reachable API server", () => {
  test("is alive but not ready, says why, and still stops promptly", async () => {
    const mgr = new Manager({ kubeConfig: await unreachableConfig(), httpAddress: "127.0.0.1:0" });
    mgr.informer(CORE.configMaps);
    const done = mgr.run();
    const url = await new Promise<string>((resolve) => {
      const t = setInterval(() => {
        if (mgr.httpUrl) {
          clearInterval(t);
          resolve(mgr.httpUrl);
        }
      }, 10);
    });
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /caches not synced \(configmaps\)/);
    assert.equal((await fetch(`${url}/metrics`, { method: "POST" })).status, 405);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      /^covenant_kube_api_requests_total\{verb="list",resource="configmaps",code="error",controller="informer"\} [1-9]/m,
    );

    const t0 = performance.now();
    await mgr.stop();
    assert.equal(await done, "stopped");
    assert.ok(performance.now() - t0 < 3000, "stop does not wait for caches that never sync");
    assert.equal(mgr.isReady(), false);
  });

  test("refuses a malformed HTTP address with the expected form", async () => {
    const mgr = new Manager({ kubeConfig: await unreachableConfig(), httpAddress: "localhost" });
    const reason = await mgr.run();
    assert.equal(reason, "error");
  });

  test("refuses duplicate controller names and invalid ones", async () => {
    const mgr = new Manager({ kubeConfig: await unreachableConfig() });
    const inf = mgr.informer(CORE.configMaps);
    const spec = { name: "dup", for: inf, reconcile: async () => undefined };
    mgr.addController(spec);
    assert.throws(() => mgr.addController(spec), /already added/);
    assert.throws(() => mgr.addController({ ...spec, name: "Bad_Name" }), /lower-case/);
    await mgr.stop();
  });
});
