// The whole system end to end, as `make demo` runs it: a TrainingRun and its
// CovenantPeers applied with kubectl become worker pods (operator), run as
// processes on B200 nodes (node agent), train llama3-tiny on text from this machine
// (uploaded to a nats:// bucket) over the run's hub (3-server TLS JetStream cluster, peers
// admitted by their hotkey through the auth callout, the bus objects provisioned by the
// operator), and the run's progress comes back into its status until Completed.
// test-limit: 720 s (its tests' own timeouts, plus setup)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import type { CovenantPeer } from "../../api/index.ts";
import { assignShards } from "../../protocol/rendezvous.ts";
import { metricValue } from "../worker/harness.ts";
import { startSystem, type System } from "../system.ts";
import { waitFor } from "../stack/wait.ts";

// Enough rounds for the readiness probes to pass (about a second) well before the run completes.
const ROUNDS = 12;

describe("whole system", { timeout: 600_000 }, () => {
  let system: System;
  const lines: string[] = [];
  before(async () => {
    system = await startSystem({
      run: "e2e",
      miners: 3,
      rounds: ROUNDS,
      innerSteps: 8,
      roundDeadlineSeconds: 20,
      say: (l) => lines.push(l),
    });
  });
  after(async () => {
    await system?.stop();
  });

  test("the operator's worker pods train the run to completion with identical weights", async () => {
    // Pods come from the operator, one per peer, each on its own B200 node (8 GPUs each).
    const core = system.kube.kubeConfig().makeApiClient(CoreV1Api);
    const seen = new Map<string, V1Pod>();
    const workers = await waitFor(
      "a worker pod bound for each of the four peers",
      async () => {
        for (const p of (await core.listNamespacedPod({ namespace: "default" })).items) {
          const peer = p.metadata?.labels?.["covenant.io/peer"];
          if (peer && p.spec?.nodeName && !seen.has(peer)) seen.set(peer, p);
        }
        return seen.size === 4 ? [...seen.values()] : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    assert.ok(workers.every((p) => p.metadata?.ownerReferences?.[0]?.kind === "CovenantPeer"));
    assert.equal(new Set(workers.map((p) => p.spec?.nodeName)).size, 4);
    assert.ok(workers.every((p) => p.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"] === "8"));

    // On the way, the workers' readiness probes pass: the run trains with all four peers ready.
    const phases = new Set<string>();
    let mostReady = 0;
    const run = await waitFor(
      "TrainingRun Completed",
      async () => {
        system.refreshTargets();
        const r = await system.readRun();
        if (r.status?.phase) phases.add(r.status.phase);
        mostReady = Math.max(mostReady, r.status?.readyPeers ?? 0);
        return r.status?.phase === "Completed" ? r : undefined;
      },
      { timeoutMs: 420_000, intervalMs: 250 },
    );
    assert.ok(phases.has("Training"), `phases seen: ${[...phases].join(", ")}`);
    assert.equal(mostReady, 4, "every worker pod passed its readiness probe");
    assert.equal(run.status?.round, ROUNDS);
    // The operator admitted the miners as their workers caught up: one epoch per join at most.
    assert.ok((run.status?.membershipEpoch ?? 0) >= 1 && run.status!.membershipEpoch! <= 3);
    assert.equal(run.status?.activePeers?.length, 3);
    const counts = [...assignShards("e2e", 8, run.status!.activePeers!).values()].map((x) => x.length);
    assert.deepEqual(run.status?.shards, {
      total: 8,
      assigned: 8,
      perPeerMin: Math.min(...counts),
      perPeerMax: Math.max(...counts),
    });

    // Every replica (3 miners and the validator) ends each round on the same weights.
    const last = ROUNDS - 1;
    const lastRound = () =>
      lines
        .map((l) =>
          new RegExp(
            `^\\[(\\S+)\\] .* round ${last}: (?:applied|\\d+ submissions).* weights ([0-9a-f]{12})`,
          ).exec(l),
        )
        .filter((m) => m !== null)
        .map((m) => [m[1], m[2]] as const);
    // Output is followed from log files, a moment behind the processes.
    const weights = await waitFor(
      "every replica's last round",
      () => (lastRound().length >= 4 ? lastRound() : undefined),
      {
        timeoutMs: 10_000,
      },
    ).catch(() => lastRound());
    assert.deepEqual(
      weights.map(([who]) => who).sort(),
      ["miner-1", "miner-2", "miner-3", "validator"],
      lines.slice(-40).join("\n"),
    );
    assert.equal(new Set(weights.map(([, w]) => w)).size, 1, JSON.stringify(weights));

    // Every miner trains in (nearly) every round.
    for (const miner of ["miner-1", "miner-2", "miner-3"]) {
      const rounds = lines.filter((l) => l.startsWith(`[${miner}]`) && /round \d+: trained/.test(l));
      // minPeers is every miner: rounds wait until all three are members.
      assert.ok(rounds.length >= ROUNDS - 1, `${miner} trained ${rounds.length} rounds`);
    }
    // Training lowers the loss of the global model on random data, as the validator measures it
    // (a miner's own inner-step loss moves with the shards it draws).
    const validatorLoss = lines
      .filter((l) => l.startsWith("[validator]"))
      .map((l) => /round \d+: [1-9]\d* submissions.*, loss ([0-9.]+)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
    assert.ok(validatorLoss.length >= ROUNDS / 2, validatorLoss.join(" "));
    assert.ok(
      validatorLoss.at(-1)! < 0.9 * validatorLoss[0]!,
      `validator loss ${validatorLoss.join(" -> ")}`,
    );
  });

  test("the chain: every peer holds a uid, the operator follows it into status and Events", async () => {
    const objects = system.kube.kubeConfig().makeApiClient(CustomObjectsApi);
    const peers = (
      (await objects.listNamespacedCustomObject({
        group: "covenant.io",
        version: "v1alpha1",
        namespace: "default",
        plural: "covenantpeers",
      })) as { items: CovenantPeer[] }
    ).items;
    const registered = peers.map((p) => ({
      name: p.metadata.name,
      uid: p.status?.uid,
      registered: p.status?.conditions?.find((c) => c.type === "Registered")?.status,
      permit: p.status?.validatorPermit,
    }));
    assert.ok(
      registered.every((p) => p.registered === "True" && typeof p.uid === "number"),
      JSON.stringify(registered),
    );
    // Every peer holds its own uid, registered before the run (on the hub, admission lets in
    // registered hotkeys only); the validator's with stake and a permit.
    assert.equal(new Set(registered.map((p) => p.uid)).size, 4);
    assert.equal(registered.find((p) => p.name === "validator")?.permit, true);
    const run = await system.readRun();
    assert.equal(run.status?.conditions?.find((c) => c.type === "ChainSynced")?.status, "True");
    // The validator's set_weights calls reached the chain and came back as Events.
    const core = system.kube.kubeConfig().makeApiClient(CoreV1Api);
    const events = await waitFor("a WeightsSet event", async () => {
      const list = await core.listNamespacedEvent({ namespace: "default" });
      const found = list.items.filter((e) => e.reason === "WeightsSet");
      return found.length > 0 ? found : undefined;
    });
    assert.equal(events[0]?.involvedObject.name, "validator");
  });

  test("the hub: the operator provisioned the run's bus, every peer was admitted by its hotkey", async () => {
    const hub = system.hub;
    assert.ok(hub, "the system runs on the hub");
    const run = await system.readRun();
    const ready = run.status?.conditions?.find((c) => c.type === "TransportReady");
    assert.equal(ready?.status, "True", JSON.stringify(ready));
    // Every pod's worker logged in by its hotkey with the run's CA (no NATS credentials).
    const core = system.kube.kubeConfig().makeApiClient(CoreV1Api);
    const pods = (await core.listNamespacedPod({ namespace: "default" })).items;
    for (const p of pods.filter((p) => p.metadata?.labels?.["covenant.io/peer"])) {
      const env = p.spec?.containers[0]?.env ?? [];
      assert.ok(
        env.some((e) => e.name === "COVENANT_BUS_CA"),
        p.metadata?.name,
      );
      assert.ok(!env.some((e) => e.name === "COVENANT_NATS_CREDS"), p.metadata?.name);
    }
    for (const who of ["miner-1", "miner-2", "miner-3", "validator"])
      assert.ok(
        lines.some((l) =>
          new RegExp(
            `^\\[${who}\\] .*logging in to the bus at tls://\\S+ with the hotkey, TLS verified`,
          ).test(l),
        ),
        `${who} logged in by its hotkey over TLS`,
      );
    const adm = await hub.admission.metrics();
    const decisions = (result: string, reason: string) =>
      metricValue(adm, "covenant_admission_decisions_total", { result, reason });
    assert.ok(decisions("admitted", "miner") >= 3, adm);
    assert.ok(decisions("admitted", "validator") >= 1, adm);
    for (const reason of ["unregistered", "bad_signature", "not_validator", "wrong_run", "malformed"])
      assert.equal(decisions("refused", reason), 0, `refused as ${reason}`);
    // Prometheus scrapes the admission service too.
    const up = await waitFor("admission scraped", async () => {
      const r = await system.prom.query('up{job="covenant-admission"}');
      return r[0]?.value === 1 ? r : undefined;
    });
    assert.equal(up.length, 1);
  });

  test("Prometheus has scraped the operator", async () => {
    const up = await waitFor("operator scraped", async () => {
      const r = await system.prom.query('up{job="covenant-operator"}');
      return r[0]?.value === 1 ? r : undefined;
    });
    assert.equal(up.length, 1);
    const reconciles = await system.prom.query("sum(covenant_reconcile_duration_seconds_count)");
    assert.ok((reconciles[0]?.value ?? 0) > 0);
    // The run's own series, as the "Covenant / Training run" dashboard reads them.
    const runSeries = await waitFor("the run's metrics at the end of the run", async () => {
      const [round] = await system.prom.query('covenant_run_round{run="default/e2e"}');
      const [active] = await system.prom.query('covenant_run_active_peers{run="default/e2e"}');
      const [joined] = await system.prom.query(
        'covenant_membership_changes_total{run="default/e2e",change="joined"}',
      );
      return round?.value === ROUNDS ? { active: active?.value, joined: joined?.value } : undefined;
    });
    assert.deepEqual(runSeries, { active: 3, joined: 3 });
    // The workers have exited by now: read their last samples.
    const workerLoss = await system.prom.query(
      'last_over_time(covenant_worker_loss{run="default/e2e",role="miner"}[10m])',
    );
    assert.ok(workerLoss.length >= 1, "the workers' series carry the same run label");
  });
});
