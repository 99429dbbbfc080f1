import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateApplyObject } from "./apply.ts";
import { ownerOf } from "./controller.ts";
import { CORE } from "./keys.ts";
import { LeaderElector, type Lease } from "./leader.ts";
import { parseAddress } from "./manager.ts";
import { ApiError, KubeClient, type RequestOptions } from "./client.ts";
import { KubeConfig } from "@kubernetes/client-node";

describe("ownerOf", () => {
  const ref = (kind: string, name: string, controller?: boolean, apiVersion = "covenant.io/v1alpha1") => ({
    apiVersion,
    kind,
    name,
    uid: name,
    controller,
  });
  test("prefers the controller reference of the kind, else the first of the kind", () => {
    assert.equal(
      ownerOf(
        [ref("CovenantPeer", "a"), ref("CovenantPeer", "b", true)],
        "CovenantPeer",
        "covenant.io/v1alpha1",
      )?.name,
      "b",
    );
    assert.equal(ownerOf([ref("CovenantPeer", "a")], "CovenantPeer", "covenant.io/v1alpha1")?.name, "a");
    assert.equal(
      ownerOf([ref("ReplicaSet", "r", true, "apps/v1")], "CovenantPeer", "covenant.io/v1alpha1"),
      undefined,
    );
    assert.equal(
      ownerOf([ref("CovenantPeer", "a", true, "other.io/v1")], "CovenantPeer", "covenant.io/v1alpha1"),
      undefined,
    );
  });
});

describe("validateApplyObject", () => {
  test("requires apiVersion, kind, name and namespace, naming what is wrong", () => {
    const ok = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "n" } };
    assert.doesNotThrow(() => validateApplyObject(CORE.pods, ok, "m"));
    assert.throws(() => validateApplyObject(CORE.pods, ok, ""), /fieldManager/);
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, apiVersion: "apps/v1" }, "m"),
      /expected "v1"/,
    );
    assert.throws(() => validateApplyObject(CORE.pods, { ...ok, kind: "Node" }, "m"), /expected "Pod"/);
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, metadata: { namespace: "n" } }, "m"),
      /metadata.name/,
    );
    assert.throws(
      () => validateApplyObject(CORE.pods, { ...ok, metadata: { name: "p" } }, "m"),
      /metadata.namespace/,
    );
    assert.doesNotThrow(() =>
      validateApplyObject(CORE.nodes, { apiVersion: "v1", kind: "Node", metadata: { name: "n" } }, "m"),
    );
  });
});

describe("parseAddress", () => {
  test("accepts host:port, :port and [v6]:port", () => {
    assert.deepEqual(parseAddress("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080 });
    assert.deepEqual(parseAddress(":9000"), { host: "0.0.0.0", port: 9000 });
    assert.deepEqual(parseAddress("[::1]:0"), { host: "::1", port: 0 });
  });
  test("rejects malformed addresses with the expected form", () => {
    assert.throws(() => parseAddress("8080"), /expected host:port/);
    assert.throws(() => parseAddress("a:70000"), /out of range/);
  });
});

describe("LeaderElector", () => {
  test("refuses timings that cannot work", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const client = KubeClient.fromKubeConfig(kc);
    const base = { leaseName: "l", leaseNamespace: "n", identity: "me" };
    assert.throws(
      () => new LeaderElector(client, { ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
      /leaseDuration > renewDeadline > retryPeriod/,
    );
    assert.throws(() => new LeaderElector(client, { ...base, identity: "" }), /identity/);
    assert.doesNotThrow(() => new LeaderElector(client, base));
  });

  // Short timings: lease 900 ms, renew deadline 600 ms, retry 100 ms.
  const timings = { leaseDurationMs: 900, renewDeadlineMs: 600, retryPeriodMs: 100 };
  const options = { leaseName: "l", leaseNamespace: "n", identity: "me", ...timings };

  test("steps down at its renew deadline while a renewal hangs, without waiting for it", async () => {
    const api = new FakeLeaseApi();
    let stoppedAt: number | undefined;
    const elector = new LeaderElector(api.client(), {
      ...options,
      onStoppedLeading: () => (stoppedAt = performance.now()),
    });
    const done = elector.start();
    await until(() => elector.isLeader());
    await sleep(300); // a few renewals
    const hungAt = performance.now();
    api.hang = true; // requests from now on never answer, and ignore their abort signal
    await done;
    const endedAt = performance.now();
    assert.ok(stoppedAt !== undefined, "onStoppedLeading fired");
    assert.equal(elector.isLeader(), false);
    // The last successful attempt started within about a retry period before the hang, so the
    // deadline falls between (hang + renew deadline - retry period) and (hang + renew deadline);
    // the bounds leave room for late timers on a busy machine.
    const ms = stoppedAt - hungAt;
    assert.ok(ms >= 300 && ms <= 600 + 150, `stepped down ${ms} ms after the hang`);
    assert.ok(endedAt - stoppedAt < 100, "the loop ended at once, not when the hung request returns");
    assert.equal(api.abortedHung, 1, "the hung attempt was aborted");
  });

  test("does not lead on a lease it took in an attempt that answered after the renew deadline", async () => {
    const api = new FakeLeaseApi();
    api.slowWrites = 1; // the first write commits at once but answers after 800 ms
    let startedAt: number | undefined;
    const elector = new LeaderElector(api.client(), {
      ...options,
      onStartedLeading: () => (startedAt = performance.now()),
    });
    const done = elector.start();
    await until(() => elector.isLeader());
    assert.ok(startedAt !== undefined && api.firstWriteAt !== undefined);
    assert.ok(startedAt - api.firstWriteAt >= 600, "led only after a later attempt renewed in time");
    await elector.release();
    await done;
    assert.equal(api.lease?.spec?.holderIdentity, "", "released");
  });
});

/**
 * The Lease API behind KubeClient.request, in memory, with optimistic concurrency. `hang`
 * makes requests never answer (ignoring their abort signal, as a client that does not honour
 * one would); `slowWrites` delays the answers to that many writes after committing them.
 */
class FakeLeaseApi {
  lease: Lease | undefined;
  hang = false;
  slowWrites = 0;
  firstWriteAt: number | undefined;
  abortedHung = 0;
  private version = 0;

  client(): KubeClient {
    return { request: (req: RequestOptions) => this.request(req) } as unknown as KubeClient;
  }

  private async request(req: RequestOptions): Promise<unknown> {
    if (this.hang) {
      req.signal?.addEventListener("abort", () => this.abortedHung++);
      return new Promise(() => {});
    }
    if (req.method === "GET") {
      if (!this.lease) throw new ApiError(404, "NotFound", "lease not found");
      return structuredClone(this.lease);
    }
    this.firstWriteAt ??= performance.now();
    const written = this.write(req);
    if (this.slowWrites > 0) {
      this.slowWrites--;
      await sleep(800);
    }
    return written;
  }

  private write(req: RequestOptions): Lease {
    const body = structuredClone(req.body) as Lease;
    if (req.method === "POST" && this.lease) throw new ApiError(409, "AlreadyExists", "exists");
    if (req.method === "PUT" && body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
      throw new ApiError(409, "Conflict", "resourceVersion changed");
    }
    body.metadata.resourceVersion = String(++this.version);
    this.lease = body;
    return structuredClone(body);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}
