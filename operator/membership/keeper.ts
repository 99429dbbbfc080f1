/**
 * Carries out planMembership for one run: reads the run's CovenantPeers (cache), their
 * hotkeys, the membership in the run's state bucket and what the bus has shown; publishes a
 * changed membership with compare-and-set (the bucket is the source of truth, so two
 * operators never interleave epochs), the validator to follow, then each peer's round status
 * and the run's shard summary (own field manager), then Events. Killed at any line, the next
 * pass converges: everything is recomputed from the bucket and the caches.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KV } from "@nats-io/kv";
import type { Counter } from "prom-client";
import {
  API_VERSION,
  COVENANT_PEER_KIND,
  PeerCondition,
  TRAINING_RUN_KIND,
  applyDefaults,
  trainingRunSchema,
  type CovenantPeer,
  type CovenantPeerStatus,
  type TrainingRun,
} from "../../api/index.ts";
import { findCondition, mergeConditions } from "../controllers/conditions.ts";
import { statusChanged } from "../controllers/status.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../controllers/resources.ts";
import {
  applyStatus,
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
} from "../kube/index.ts";
import { parseMembership, type Membership } from "../../protocol/membership.ts";
import { stateKeys } from "../../protocol/names.ts";
import type { BusProgress } from "../progress/plan.ts";
import type { HotkeyResolver } from "../chain/peer-hotkeys.ts";
import { firstExpectedRound, graceOf, planMembership, type PeerRoundStatus, type PeerView } from "./plan.ts";

/** The peer status fields the membership controller owns, besides its condition. */
const ROUND_FIELDS = ["assignedShards", "lastSubmittedRound", "lastSelectedRound", "missedRounds"] as const;
const PEER_FIELDS: readonly (keyof CovenantPeerStatus)[] = [...ROUND_FIELDS, "conditions"];

export const MEMBERSHIP_FIELD_MANAGER = "covenant-membership-controller";

export interface KeeperDeps {
  client: KubeClient;
  recorder: EventRecorder;
  log: Logger;
  peers: Informer<CovenantPeer>;
  hotkeys: HotkeyResolver;
  /** Counts joins and leaves by run. */
  changes?: Counter<"run" | "change">;
  now?: () => number;
}

/** The membership stored in the bucket, with its revision; malformed contents count as none. */
export async function readMembership(kv: KV): Promise<{ membership?: Membership; revision: number }> {
  const e = await kv.get(stateKeys.membership);
  if (!e || e.operation !== "PUT" || e.value.length === 0) return { revision: e?.revision ?? 0 };
  try {
    return { membership: parseMembership(e.string()), revision: e.revision };
  } catch {
    // a malformed value counts as none and is replaced by the next membership
  }
  return { revision: e.revision };
}

export class MembershipKeeper {
  /** Run -> hotkey -> first round the member was expected to submit for. */
  readonly #since = new Map<string, Map<string, number>>();
  readonly #now: () => number;

  constructor(private readonly d: KeeperDeps) {
    this.#now = d.now ?? Date.now;
  }

  forget(runKey: string): void {
    this.#since.delete(runKey);
  }

  /** One pass for a run; answers when the next grace period runs out (ms), if one is running. */
  async reconcile(cached: TrainingRun, kv: KV, bus: BusProgress): Promise<number | undefined> {
    const run = applyDefaults(trainingRunSchema.json, cached);
    const ns = run.metadata.namespace ?? "default";
    const runKey = `${ns}/${run.metadata.name}`;
    const peers = this.d.peers.store.list(ns).filter((p) => p.spec?.runRef?.name === run.metadata.name);
    const views: PeerView[] = [];
    for (const p of peers) {
      views.push({
        name: p.metadata.name,
        role: p.spec.role ?? "miner",
        hotkey: await this.d.hotkeys.of(p),
        suspended: (p.spec.suspend ?? false) || (run.spec.suspend ?? false),
        ready: findCondition(p.status?.conditions, PeerCondition.Ready),
        registered: findCondition(p.status?.conditions, PeerCondition.Registered),
      });
    }

    const { membership: previous, revision } = await readMembership(kv);
    let since = this.#since.get(runKey);
    if (!since) this.#since.set(runKey, (since = new Map()));
    // Members this operator has not seen join (it restarted) are expected from now on.
    for (const h of previous?.members ?? [])
      if (!since.has(h)) since.set(h, firstExpectedRound(bus.lastSelectedRound));

    const now = this.#now();
    const plan = planMembership({
      run: run.metadata.name,
      shards: run.spec.data.shards,
      previous,
      peers: views,
      bus: { ...bus, lastClosedRound: bus.lastSelectedRound },
      memberSince: since,
      grace: graceOf(run.spec.membership),
      now,
    });

    if (plan.changed) {
      const text = JSON.stringify(plan.membership);
      // Compare-and-set: a concurrent writer makes this fail, and the retry plans again.
      if (revision === 0) await kv.create(stateKeys.membership, text);
      else await kv.update(stateKeys.membership, text, revision);
      for (const h of plan.joined) since.set(h, firstExpectedRound(bus.lastSelectedRound));
      for (const l of plan.left) since.delete(l.hotkey);
      if (plan.joined.length) this.d.changes?.inc({ run: runKey, change: "joined" }, plan.joined.length);
      if (plan.left.length) this.d.changes?.inc({ run: runKey, change: "left" }, plan.left.length);
      this.d.log.info("membership changed", {
        run: runKey,
        epoch: plan.membership.epoch,
        members: plan.membership.members.length,
        joined: plan.joined.length,
        left: plan.left.length,
      });
    }
    if (plan.validator && (await kv.get(stateKeys.validator))?.string() !== plan.validator)
      await kv.put(stateKeys.validator, plan.validator);

    for (const p of peers) {
      const s = plan.peers.get(p.metadata.name);
      if (s) await this.#writePeer(p, s, new Date(now));
    }
    if (JSON.stringify(cached.status?.shards) !== JSON.stringify(plan.shards)) {
      await applyStatus(
        this.d.client,
        TRAINING_RUNS,
        {
          apiVersion: API_VERSION,
          kind: TRAINING_RUN_KIND,
          metadata: { name: run.metadata.name, namespace: ns },
          status: { shards: plan.shards },
        } as KubernetesObject,
        { fieldManager: MEMBERSHIP_FIELD_MANAGER },
      );
    }

    if (plan.changed) {
      const nameOf = new Map(views.filter((v) => v.hotkey).map((v) => [v.hotkey!, v.name]));
      const who = (h: string) => nameOf.get(h) ?? h.slice(0, 8);
      const parts = [
        ...plan.joined.map((h) => `+${who(h)}`),
        ...plan.left.map((l) => `-${who(l.hotkey)} (${l.reason})`),
      ];
      this.d.recorder.normal(
        cached,
        "MembershipChanged",
        `epoch ${plan.membership.epoch}: ${plan.membership.members.length} members; ${parts.join(" ")}`,
      );
      const byName = new Map(peers.map((p) => [p.metadata.name, p]));
      for (const h of plan.joined) {
        const p = byName.get(who(h));
        if (p) this.d.recorder.normal(p, "JoinedMembership", `member of epoch ${plan.membership.epoch}`);
      }
      for (const l of plan.left) {
        const p = byName.get(who(l.hotkey));
        if (p)
          this.d.recorder.warning(p, "LeftMembership", `left in epoch ${plan.membership.epoch}: ${l.reason}`);
      }
    }
    return plan.recheckMs;
  }

  async #writePeer(p: CovenantPeer, s: PeerRoundStatus, now: Date): Promise<void> {
    const status: CovenantPeerStatus = {
      conditions: mergeConditions(
        p.status?.conditions,
        [{ type: PeerCondition.Contributing, ...s.contributing }],
        p.metadata.generation,
        now,
      ),
    };
    for (const k of ROUND_FIELDS) if (s[k] !== undefined) status[k] = s[k];
    if (!statusChanged(p.status, status, PEER_FIELDS)) return;
    await applyStatus(
      this.d.client,
      COVENANT_PEERS,
      {
        apiVersion: API_VERSION,
        kind: COVENANT_PEER_KIND,
        metadata: { name: p.metadata.name, namespace: p.metadata.namespace },
        status,
      } as KubernetesObject,
      { fieldManager: MEMBERSHIP_FIELD_MANAGER },
    );
  }
}
