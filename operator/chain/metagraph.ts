/**
 * A subnet's metagraph as the bridge sees it at one block, read with one runtime call
 * (NeuronInfoRuntimeApi.get_neurons_lite) or, where a runtime lacks it, by storage queries.
 * The conversion from decoded values is pure.
 */
import type { ApiPromise } from "@polkadot/api";
import type { Codec } from "@polkadot/types/types";

export interface NeuronView {
  uid: number;
  /** SS58 (prefix 42). */
  hotkey: string;
  coldkey: string;
  active: boolean;
  /** RAO. */
  stake: bigint;
  /** 0..1 (the chain stores u16 / 65535). */
  incentive: number;
  validatorPermit: boolean;
  lastUpdate: bigint;
}

export interface MetagraphSnapshot {
  netuid: number;
  block: number;
  blockHash: string;
  neurons: NeuronView[];
}

const U16_MAX = 65535;

/** Neurons from the JSON of decoded NeuronInfoLite values. */
export function neuronsFromLite(list: readonly Record<string, unknown>[]): NeuronView[] {
  return list.map((j) => {
    const stake = (j.stake as [string, number | string][] | undefined) ?? [];
    return {
      uid: Number(j.uid),
      hotkey: String(j.hotkey),
      coldkey: String(j.coldkey),
      active: Boolean(j.active),
      stake: stake.reduce((sum, [, v]) => sum + BigInt(v), 0n),
      incentive: Number(j.incentive) / U16_MAX,
      validatorPermit: Boolean(j.validatorPermit),
      lastUpdate: BigInt(j.lastUpdate as number | string),
    };
  });
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the chain's metadata has no ${what}; is this a subtensor endpoint?`);
  return v;
}

export async function readMetagraph(
  api: ApiPromise,
  netuid: number,
  blockHash: string,
  block: number,
): Promise<MetagraphSnapshot> {
  const at = await api.at(blockHash);
  const call = at.call.neuronInfoRuntimeApi?.getNeuronsLite;
  if (!call) return readMetagraphByStorage(api, netuid, blockHash, block);
  const list = (await call(netuid)) as unknown as Codec[];
  const neurons = neuronsFromLite(list.map((c) => c.toJSON() as Record<string, unknown>));
  return { netuid, block, blockHash, neurons };
}

/** The same snapshot by storage queries (SubnetworkN, Keys, Owner, per-subnet vectors, TotalHotkeyAlpha). */
export async function readMetagraphByStorage(
  api: ApiPromise,
  netuid: number,
  blockHash: string,
  block: number,
): Promise<MetagraphSnapshot> {
  const at = await api.at(blockHash);
  const st = need(at.query.subtensorModule, "SubtensorModule pallet");
  const q = (item: string) => need(st[item], `SubtensorModule.${item}`);
  const n = Number((await q("subnetworkN")(netuid)).toString());
  const uids = [...Array(n).keys()];
  const [keys, active, incentive, permit, lastUpdate] = await Promise.all([
    q("keys").multi(uids.map((u) => [netuid, u])),
    q("active")(netuid),
    q("incentive")(netuid),
    q("validatorPermit")(netuid),
    q("lastUpdate")(netuid),
  ]);
  const hotkeys = keys.map((k) => k.toString());
  const [owners, stakes] = await Promise.all([
    q("owner").multi(hotkeys),
    q("totalHotkeyAlpha").multi(hotkeys.map((h) => [h, netuid])),
  ]);
  const vec = (c: Codec) => c.toJSON() as (number | boolean | string)[];
  const neurons = neuronsFromLite(
    uids.map((u) => ({
      uid: u,
      hotkey: hotkeys[u],
      coldkey: owners[u]!.toString(),
      active: vec(active)[u],
      stake: [[owners[u]!.toString(), stakes[u]!.toString()]],
      incentive: vec(incentive)[u],
      validatorPermit: vec(permit)[u],
      lastUpdate: vec(lastUpdate)[u] ?? 0,
    })),
  );
  return { netuid, block, blockHash, neurons };
}
