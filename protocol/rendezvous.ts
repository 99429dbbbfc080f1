// Shard assignment by rendezvous (highest random weight) hashing: each shard goes
// to the member with the largest hash of (run, shard, hotkey). A departing member's
// shards spread over the others; a joining member takes about 1/N from everyone;
// nothing else moves. Pure and deterministic: operator and worker both call it.
import { createHash } from "node:crypto";

/** The 64-bit weight of a (run, shard, hotkey) triple. */
export function weight(run: string, shard: number, hotkey: string): bigint {
  const digest = createHash("sha256").update(`${run}\u0000${shard}\u0000${hotkey}`).digest();
  return digest.readBigUInt64BE(0);
}

/** The member that owns a shard, or undefined when there are no members. Ties go to the smaller hotkey. */
export function shardOwner(run: string, shard: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const m of members) {
    const w = weight(run, shard, m);
    if (w > bestWeight || (w === bestWeight && best !== undefined && m < best)) {
      best = m;
      bestWeight = w;
    }
  }
  return best;
}

export type Assignment = Map<string, number[]>;

/** Every member's shards (ascending); members without a shard map to an empty list. */
export function assignShards(run: string, shardCount: number, members: readonly string[]): Assignment {
  if (!Number.isSafeInteger(shardCount) || shardCount < 0)
    throw new Error(`shard count ${shardCount} is invalid`);
  const unique = [...new Set(members)].sort();
  const out: Assignment = new Map(unique.map((m) => [m, []]));
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = shardOwner(run, shard, unique);
    if (owner !== undefined) out.get(owner)!.push(shard);
  }
  return out;
}

/** Shards whose owner differs between two assignments of the same run. */
export function movedShards(before: Assignment, after: Assignment): number[] {
  const ownerOf = (a: Assignment) => {
    const m = new Map<number, string>();
    for (const [hotkey, shards] of a) for (const s of shards) m.set(s, hotkey);
    return m;
  };
  const b = ownerOf(before);
  const a = ownerOf(after);
  const all = new Set([...b.keys(), ...a.keys()]);
  return [...all].filter((s) => b.get(s) !== a.get(s)).sort((x, y) => x - y);
}
