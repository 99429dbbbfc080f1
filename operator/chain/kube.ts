/**
 * The Kubernetes side of the chain bridge, kept thin: lists the run's CovenantPeers (hotkey
 * from status, else derived from the peer's hotkey Secret), applies the planned status with
 * server-side apply under the bridge's own field manager, then emits the planned Events;
 * writes the TrainingRun ChainSynced condition the same way.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Condition, CovenantPeer } from "../../api/index.ts";
import { mergeConditions, findCondition } from "../controllers/conditions.ts";
import { COVENANT_PEERS, TRAINING_RUNS } from "../controllers/resources.ts";
import { applyStatus, type EventRecorder } from "../kube/index.ts";
import type { KubeClient } from "../kube/client.ts";
import type { BridgeSink } from "./bridge.ts";
import { HotkeyResolver } from "./peer-hotkeys.ts";
import type { PeerChainInput, PeerChainPlan, PeerChainStatus } from "./peers.ts";
import { ChainEventReason, ChainReason, CHAIN_FIELD_MANAGER } from "./reasons.ts";
import type { ConditionSpec, SyncSnapshot } from "./sync.ts";

export interface KubeSinkOptions {
  client: KubeClient;
  recorder: EventRecorder;
  namespace: string;
  run: string;
  now?: () => Date;
  /** The namespace's CovenantPeers from a cache; without it every metagraph read lists them from the API. */
  listPeers?: () => CovenantPeer[];
}

/** The applied status of one peer: only the fields the bridge owns. */
export function peerStatusObject(
  namespace: string,
  name: string,
  s: PeerChainStatus,
  existing: readonly Condition[] | undefined,
  generation: number | undefined,
  now: Date,
) {
  const status: Record<string, unknown> = {
    conditions: mergeConditions(existing, [s.registered], generation, now),
  };
  for (const k of ["hotkey", "uid", "stake", "incentive", "validatorPermit"] as const) {
    if (s[k] !== undefined) status[k] = s[k];
  }
  return { apiVersion: "covenant.io/v1alpha1", kind: "CovenantPeer", metadata: { namespace, name }, status };
}

export class KubeChainSink implements BridgeSink {
  private readonly byName = new Map<string, CovenantPeer>();
  private readonly now: () => Date;
  private readonly hotkeys: HotkeyResolver;

  constructor(private readonly o: KubeSinkOptions) {
    this.now = o.now ?? (() => new Date());
    this.hotkeys = new HotkeyResolver(o.client);
  }

  async peers(): Promise<PeerChainInput[]> {
    const items = this.o.listPeers
      ? this.o.listPeers()
      : (await this.o.client.list<CovenantPeer>(COVENANT_PEERS, { namespace: this.o.namespace })).items;
    const out: PeerChainInput[] = [];
    this.byName.clear();
    for (const p of items) {
      if (p.spec.runRef.name !== this.o.run) continue;
      this.byName.set(p.metadata.name, p);
      const registered = findCondition(p.status?.conditions, "Registered");
      out.push({
        namespace: this.o.namespace,
        name: p.metadata.name,
        role: p.spec.role ?? "miner",
        hotkey: await this.hotkeys.of(p),
        previousUid: p.status?.uid,
        previouslyRegistered: registered?.status === "True",
        deregistered:
          registered?.status === "False" && registered.reason === ChainReason.Deregistered
            ? registered.message
            : undefined,
      });
    }
    return out;
  }

  async applyPeers(plan: PeerChainPlan): Promise<void> {
    const now = this.now();
    for (const p of plan.peers) {
      const existing = this.byName.get(p.name);
      const obj = peerStatusObject(
        p.namespace,
        p.name,
        p.status,
        existing?.status?.conditions,
        existing?.metadata.generation,
        now,
      );
      if (existing && sameStatus(existing, obj.status)) continue;
      await applyStatus(this.o.client, COVENANT_PEERS, obj as KubernetesObject, {
        fieldManager: CHAIN_FIELD_MANAGER,
      });
    }
    for (const e of plan.events) {
      const target = this.byName.get(e.name);
      if (target) this.o.recorder.event(target, e.type, e.reason, e.message);
    }
  }

  async applySync(condition: ConditionSpec, snapshot: SyncSnapshot): Promise<void> {
    const run = await this.o.client.getOrUndefined<
      KubernetesObject & { status?: { conditions?: Condition[] } }
    >(TRAINING_RUNS, this.o.namespace, this.o.run);
    if (!run) return;
    const conditions = mergeConditions(
      run.status?.conditions,
      [condition],
      run.metadata?.generation,
      this.now(),
    );
    await applyStatus(
      this.o.client,
      TRAINING_RUNS,
      {
        apiVersion: "covenant.io/v1alpha1",
        kind: "TrainingRun",
        metadata: { namespace: this.o.namespace, name: this.o.run },
        status: { conditions },
      } as KubernetesObject,
      { fieldManager: CHAIN_FIELD_MANAGER },
    );
    if (snapshot.phase === "Unreachable" && snapshot.failures === 1) {
      this.o.recorder.warning(run, ChainEventReason.ChainUnreachable, condition.message);
    }
  }
}

function sameStatus(p: CovenantPeer, desired: Record<string, unknown>): boolean {
  const cur = p.status as Record<string, unknown> | undefined;
  if (!cur) return false;
  for (const [k, v] of Object.entries(desired)) {
    if (k === "conditions") {
      const want = (v as Condition[])[0]!;
      const have = findCondition(cur.conditions as Condition[] | undefined, want.type);
      if (
        !have ||
        have.status !== want.status ||
        have.reason !== want.reason ||
        have.message !== want.message
      )
        return false;
    } else if (cur[k] !== v) return false;
  }
  // A field the bridge stopped declaring (uid after deregistration) must be removed.
  for (const k of ["uid", "stake", "incentive", "validatorPermit"])
    if (!(k in desired) && k in cur) return false;
  return true;
}
