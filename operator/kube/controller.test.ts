import assert from "node:assert/strict";
import http from "node:http";
import { describe, test } from "node:test";
import { KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { createOperatorMetrics } from "../metrics/registry.ts";
import { ExponentialBackoff } from "./backoff.ts";
import { KubeClient } from "./client.ts";
import {
  Controller,
  ReconcileTimeoutError,
  ownerOf,
  type ControllerSpec,
  type EventSource,
} from "./controller.ts";
import type { EventRecorder } from "./events.ts";
import type { EventHandlers, Informer } from "./informer.ts";
import { CORE, isGroupKind, type ResourceRef } from "./keys.ts";

const PEERS: ResourceRef = {
  group: "covenant.io",
  version: "v1alpha1",
  plural: "covenantpeers",
  kind: "CovenantPeer",
  namespaced: true,
};

/** An informer stand-in that hands out the handlers registered on it. */
function fakeSource(resource: ResourceRef = PEERS): EventSource & {
  resource: ResourceRef;
  handlers: EventHandlers<KubernetesObject>[];
} {
  const handlers: EventHandlers<KubernetesObject>[] = [];
  return {
    resource,
    handlers,
    addHandler(h) {
      handlers.push(h);
      return () => handlers.splice(handlers.indexOf(h), 1);
    },
  };
}

const recorder: EventRecorder = {
  normal: () => undefined,
  warning: () => undefined,
  event: () => undefined,
  flush: async () => undefined,
};

function client(server = "http://127.0.0.1:1"): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return KubeClient.fromKubeConfig(kc);
}

function controller(
  spec: Omit<ControllerSpec, "for" | "name"> & { name?: string },
  deps: { client?: KubeClient; metrics?: ReturnType<typeof createOperatorMetrics> } = {},
): Controller {
  return new Controller(
    {
      name: "test",
      for: fakeSource() as unknown as Informer<KubernetesObject>,
      // Fast, bounded backoff so that the test sees the retry without waiting long.
      rateLimiter: new ExponentialBackoff(20, 20),
      ...spec,
    },
    { client: deps.client ?? client(), recorder, metrics: deps.metrics },
  );
}

/** Polls `cond` every 10 ms; fails after a generous `ms` (the machine may be loaded). */
async function waitUntil(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Controller reconcile deadline", () => {
  test("a reconcile that never settles is abandoned at its deadline; the queue moves on and retries it", async () => {
    const metrics = createOperatorMetrics({ processMetrics: false });
    const signals: AbortSignal[] = [];
    const done: string[] = [];
    const c = controller(
      {
        workers: 1, // the stuck reconcile holds the only worker until its deadline
        reconcileTimeoutMs: 100,
        reconcile: (req, ctx) => {
          if (req.name === "stuck") {
            signals.push(ctx.signal);
            return new Promise(() => undefined); // ignores the signal and never settles
          }
          done.push(req.name);
          return Promise.resolve();
        },
      },
      { metrics },
    );
    c.enqueue("ns", "stuck");
    c.enqueue("ns", "fine");
    c.start();
    try {
      await waitUntil(() => done.includes("fine"), "the next key to be reconciled");
      assert.ok(signals[0]?.aborted, "the stuck reconcile's signal fired");
      assert.ok(signals[0]?.reason instanceof ReconcileTimeoutError);
      assert.match(String(signals[0]?.reason), /CovenantPeer\/ns\/stuck timed out after 100 ms/);
      await waitUntil(() => signals.length >= 2, "the timed-out key to be retried");

      const timeouts = (await metrics.reconcileTimeouts.get()).values;
      assert.ok((timeouts.find((v) => v.labels.controller === "test")?.value ?? 0) >= 1);
      const errors = (await metrics.reconcileErrors.get()).values;
      assert.ok((errors.find((v) => v.labels.controller === "test")?.value ?? 0) >= 1);
      const durations = (await metrics.reconcileDuration.get()).values;
      assert.ok(durations.some((v) => v.labels.result === "timeout" && v.metricName?.endsWith("_count")));
    } finally {
      const t0 = performance.now();
      await c.stop();
      // stop waits for the reconcile in flight, which its deadline bounds.
      assert.ok(performance.now() - t0 < 5000, "stop is not held up by a reconcile that never settles");
    }
  });

  test("the deadline aborts the reconcile's API requests through ctx.client", async () => {
    let sawClose: () => void = () => undefined;
    const closed = new Promise<void>((r) => (sawClose = r));
    const server = http.createServer((req) => req.socket.once("close", () => sawClose())); // never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    let failure: unknown;
    const c = controller(
      {
        reconcileTimeoutMs: 100,
        reconcile: async (req, ctx) => {
          try {
            await ctx.client.get(CORE.configMaps, req.namespace, req.name);
          } catch (e) {
            failure ??= e;
            throw e;
          }
        },
      },
      { client: client(`http://127.0.0.1:${(server.address() as { port: number }).port}`) },
    );
    try {
      c.enqueue("ns", "cm");
      c.start();
      await closed;
      await waitUntil(() => failure !== undefined, "the request to fail");
      assert.equal((failure as Error).name, "AbortError");
    } finally {
      await c.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("a reconciler that throws synchronously is an ordinary failure, retried", async () => {
    let calls = 0;
    const c = controller({
      reconcile: () => {
        calls++;
        throw new Error("boom");
      },
    });
    c.enqueue("ns", "x");
    c.start();
    try {
      await waitUntil(() => calls >= 2, "a retry");
    } finally {
      await c.stop();
    }
  });

  test("refuses a deadline that is not positive", () => {
    assert.throws(
      () => controller({ reconcileTimeoutMs: 0, reconcile: async () => undefined }),
      /reconcileTimeoutMs/,
    );
    assert.throws(
      () => controller({ reconcileTimeoutMs: NaN, reconcile: async () => undefined }),
      /reconcileTimeoutMs/,
    );
  });
});

describe("owner references by group and kind", () => {
  const ref = (apiVersion: string, kind: string, name: string, controller?: boolean) => ({
    apiVersion,
    kind,
    name,
    uid: name,
    controller,
  });

  test("isGroupKind ignores the version, not the group or kind", () => {
    assert.ok(isGroupKind({ apiVersion: "covenant.io/v1beta1", kind: "CovenantPeer" }, PEERS));
    assert.ok(isGroupKind({ apiVersion: "covenant.io/v1alpha1", kind: "CovenantPeer" }, PEERS));
    assert.ok(!isGroupKind({ apiVersion: "other.io/v1alpha1", kind: "CovenantPeer" }, PEERS));
    assert.ok(!isGroupKind({ apiVersion: "covenant.io/v1alpha1", kind: "TrainingRun" }, PEERS));
    assert.ok(!isGroupKind({ kind: "CovenantPeer" }, PEERS));
    assert.ok(isGroupKind({ apiVersion: "v1", kind: "Pod" }, CORE.pods), "core group");
    assert.ok(!isGroupKind({ apiVersion: "apps/v1", kind: "Pod" }, CORE.pods));
  });

  test("ownerOf follows a reference written at another version of the group", () => {
    const refs = [ref("covenant.io/v1beta1", "CovenantPeer", "a", true)];
    assert.equal(ownerOf(refs, "CovenantPeer", "covenant.io/v1alpha1")?.name, "a");
    assert.equal(
      ownerOf(
        [
          ref("covenant.io/v1beta1", "CovenantPeer", "a"),
          ref("covenant.io/v1alpha1", "CovenantPeer", "b", true),
        ],
        "CovenantPeer",
        "covenant.io/v1alpha1",
      )?.name,
      "b",
      "the controller reference still wins",
    );
    assert.equal(
      ownerOf([ref("other.io/v1alpha1", "CovenantPeer", "a", true)], "CovenantPeer", "covenant.io/v1alpha1"),
      undefined,
    );
  });

  test("an owned child whose reference is at another version queues its owner", async () => {
    const pods = fakeSource(CORE.pods);
    const c = new Controller(
      {
        name: "owner",
        for: fakeSource() as unknown as Informer<KubernetesObject>,
        owns: [pods],
        reconcile: async () => undefined,
      },
      { client: client(), recorder },
    );
    try {
      pods.handlers[0]!.onAdd!({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: "p",
          namespace: "ns",
          ownerReferences: [ref("covenant.io/v1beta1", "CovenantPeer", "peer-1", true)],
        },
      });
      assert.equal(c.queue.len(), 1);
      const key = await c.queue.get();
      assert.equal(key, "CovenantPeer/ns/peer-1");
      c.queue.done(key);
    } finally {
      await c.stop();
    }
  });
});
