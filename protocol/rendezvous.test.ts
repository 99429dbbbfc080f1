import assert from "node:assert/strict";
import { test } from "node:test";
import { assignShards, movedShards, shardOwner } from "./rendezvous.ts";

const peers = (n: number) => Array.from({ length: n }, (_, i) => `peer-${String(i).padStart(2, "0")}`);

test("every shard is assigned exactly once, deterministically, whatever the member order", () => {
  const members = peers(7);
  const a = assignShards("run-a", 500, members);
  const b = assignShards("run-a", 500, [...members].reverse());
  assert.deepEqual([...a], [...b]);
  const all = [...a.values()].flat().sort((x, y) => x - y);
  assert.deepEqual(
    all,
    Array.from({ length: 500 }, (_, i) => i),
  );
});

test("load is balanced within 35% of the mean", () => {
  const a = assignShards("run-a", 2000, peers(20));
  for (const [peer, shards] of a) {
    assert.ok(Math.abs(shards.length - 100) < 35, `${peer} holds ${shards.length} shards`);
  }
});

test("a departing peer's shards spread over the others and nothing else moves", () => {
  const members = peers(10);
  const before = assignShards("run-a", 1000, members);
  const leaving = members[3]!;
  const after = assignShards(
    "run-a",
    1000,
    members.filter((m) => m !== leaving),
  );
  assert.deepEqual(movedShards(before, after), before.get(leaving));
  const receivers = new Set(before.get(leaving)!.map((s) => shardOwner("run-a", s, [...after.keys()])));
  assert.ok(receivers.size >= 5, `spread over ${receivers.size} peers`);
});

test("a joining peer takes about 1/N from everyone and nothing else moves", () => {
  const members = peers(9);
  const before = assignShards("run-a", 1000, members);
  const after = assignShards("run-a", 1000, [...members, "newcomer"]);
  const moved = movedShards(before, after);
  assert.deepEqual(moved, after.get("newcomer"));
  assert.ok(moved.length > 60 && moved.length < 140, `newcomer took ${moved.length} of 1000`);
  const donors = new Set(moved.map((s) => shardOwner("run-a", s, members)));
  assert.equal(donors.size, 9);
});

test("different runs assign differently; no members means no owner", () => {
  const a = assignShards("run-a", 100, peers(4));
  const b = assignShards("run-b", 100, peers(4));
  assert.notDeepEqual([...a], [...b]);
  assert.equal(shardOwner("run-a", 0, []), undefined);
  assert.throws(() => assignShards("run-a", -1, peers(2)), /shard count/);
});
