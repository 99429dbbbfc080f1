// Churn end to end: a miner's node fails mid-run. The operator drops the miner from the
// run's membership (its shards move to the others, rounds go on without it), moves its pod
// to a spare node, and once the new worker has caught up (Ready, heartbeating) takes it back
// in; it trains again and holds the same weights as everyone else. On the run's hub: the new
// worker logs in by its hotkey again, admitted by the auth callout.
// test-limit: 720 s (its tests' own timeouts, plus setup)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import type { CovenantPeer, TrainingRun } from "../../api/index.ts";
import { startSystem, type System } from "../system.ts";
import { metricValue } from "../worker/harness.ts";
import { waitFor } from "../stack/wait.ts";

// More rounds than the test needs: it ends once the rejoined miner has trained and caught up.
const ROUNDS = 400;
const WAIT = { timeoutMs: 240_000, intervalMs: 250 };

describe("churn: a miner's node fails and the miner comes back", { timeout: 600_000 }, () => {
  let system: System;
  const lines: string[] = [];
  before(async () => {
    system = await startSystem({
      run: "churn",
      miners: 3,
      rounds: ROUNDS,
      innerSteps: 8,
      roundDeadlineSeconds: 15,
      // Rounds start with all three miners and go on with two while one is away.
      minPeers: 2,
      spareNodes: 1,
      nodeNotReadyGrace: "3s",
      spec: { membership: { podGraceSeconds: 2, heartbeatGraceSeconds: 20 } },
      say: (l) => lines.push(l),
    });
  });
  after(async () => {
    await system?.stop();
  });

  /** Weights digest each replica reported after applying `round`. */
  const weightsAt = (round: number) => {
    const out = new Map<string, string>();
    const re = new RegExp(
      `^\\[(\\S+)\\] .* round ${round}: (?:applied|\\d+ submissions).* weights ([0-9a-f]{12})`,
    );
    for (const l of lines) {
      const m = re.exec(l);
      if (m) out.set(m[1]!, m[2]!);
    }
    return out;
  };
  const trainedRounds = (who: string) =>
    lines
      .filter((l) => l.startsWith(`[${who}]`))
      .map((l) => /round (\d+): trained/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);

  test("the lost miner leaves the membership, its pod moves, it rejoins and converges", async (t) => {
    const kc = system.kube.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const objects = kc.makeApiClient(CustomObjectsApi);
    const peer = async (name: string) =>
      (await objects.getNamespacedCustomObject({
        group: "covenant.io",
        version: "v1alpha1",
        namespace: "default",
        plural: "covenantpeers",
        name,
      })) as CovenantPeer;
    const pod = async () =>
      (await core.listNamespacedPod({ namespace: "default", labelSelector: "covenant.io/peer=miner-2" }))
        .items as V1Pod[];

    const full = await waitFor(
      "three active miners a few rounds in",
      async () => {
        const r = await system.readRun();
        return (r.status?.activePeers?.length ?? 0) === 3 && (r.status?.round ?? 0) >= 3 ? r : undefined;
      },
      WAIT,
    );
    const hotkey = (await peer("miner-2")).status?.hotkey;
    assert.ok(hotkey && full.status?.activePeers?.includes(hotkey));
    assert.equal(
      (await peer("miner-2")).status?.conditions?.find((c) => c.type === "Contributing")?.status,
      "True",
    );
    const lostNode = (await pod())[0]!.spec!.nodeName!;

    const failedAt = Date.now();
    await system.agent.failNode(lostNode);
    const without = await waitFor(
      "miner-2 out of the membership",
      async () => {
        const r = await system.readRun();
        return r.status?.activePeers && !r.status.activePeers.includes(hotkey) ? r : undefined;
      },
      WAIT,
    );
    const outAfterMs = Date.now() - failedAt;
    assert.equal(without.status?.activePeers?.length, 2);
    assert.ok(without.status!.membershipEpoch! > full.status!.membershipEpoch!);
    assert.equal(without.status?.shards?.assigned, 8, "its shards went to the others");
    const left = await peer("miner-2");
    assert.equal(left.status?.conditions?.find((c) => c.type === "Contributing")?.status, "False");
    assert.equal(left.status?.assignedShards, 0);

    // Rounds go on without it.
    const roundAtLeave = without.status?.round ?? 0;
    await waitFor(
      "three more rounds with two miners",
      async () => ((await system.readRun()).status?.round ?? 0) >= roundAtLeave + 3 || undefined,
      WAIT,
    );

    // Its pod moves to the spare node; the new worker catches up and is taken back in.
    const moved = await waitFor(
      "miner-2's pod Ready on another node",
      async () =>
        (await pod()).find(
          (p) =>
            p.spec?.nodeName !== lostNode &&
            !p.metadata?.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        ),
      WAIT,
    );
    const back = await waitFor(
      "miner-2 back in the membership",
      async () => {
        const r = await system.readRun();
        return r.status?.activePeers?.includes(hotkey) ? r : undefined;
      },
      WAIT,
    );
    assert.ok(back.status!.membershipEpoch! > without.status!.membershipEpoch!);
    assert.notEqual(moved.spec?.nodeName, lostNode);
    assert.ok(((await peer("miner-2")).status?.podReplacements ?? 0) >= 1);

    // It trains again, and every replica, the rejoined one included, holds the same weights.
    const rejoinRound = back.status?.round ?? 0;
    const contributed = await waitFor(
      "miner-2 trains after rejoining",
      async () => trainedRounds("miner-2").find((r) => r >= rejoinRound),
      WAIT,
    );
    const check = contributed + 2;
    const same = await waitFor(
      `all four replicas report round ${check}`,
      async () => (weightsAt(check).size === 4 ? weightsAt(check) : undefined),
      WAIT,
    );
    assert.equal(new Set(same.values()).size, 1, JSON.stringify([...same]));
    t.diagnostic(
      `node failed at round ${full.status?.round}; out ${(outAfterMs / 1000).toFixed(1)} s later at round ${roundAtLeave} (epoch ${without.status?.membershipEpoch}); ` +
        `back at round ${rejoinRound} (epoch ${back.status?.membershipEpoch}); trained round ${contributed}; ` +
        `identical weights at round ${check}`,
    );

    const events = (await core.listNamespacedEvent({ namespace: "default" })).items;
    const reasons = (name: string) =>
      events.filter((e) => e.involvedObject.name === name).map((e) => e.reason ?? "");
    assert.ok(reasons("miner-2").includes("LeftMembership"), reasons("miner-2").join(","));
    assert.ok(reasons("miner-2").includes("JoinedMembership"));
    assert.ok(reasons("churn").includes("MembershipChanged"));
    const run: TrainingRun = await system.readRun();
    assert.notEqual(run.status?.phase, "Failed");
    const transport = run.status?.conditions?.find((c) => c.type === "TransportReady");
    assert.equal(transport?.status, "True", JSON.stringify(transport));
    // Three miners' first logins and the moved miner's, then the validator's, all by the callout.
    const adm = await system.hub!.admission.metrics();
    const admitted = (role: string) =>
      metricValue(adm, "covenant_admission_decisions_total", { result: "admitted", reason: role });
    assert.ok(admitted("miner") >= 4, `miners admitted ${admitted("miner")} times`);
    assert.ok(admitted("validator") >= 1);
    assert.equal(
      metricValue(adm, "covenant_admission_decisions_total", { result: "refused", reason: "unregistered" }),
      0,
    );
  });
});
