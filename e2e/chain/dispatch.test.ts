/**
 * The local chain's call logic without a server: checks, replacement of a full subnet,
 * scaling, commit-reveal of weights and transfers.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TypeRegistry } from "@polkadot/types";
import { blake2AsHex } from "@polkadot/util-crypto";
import {
  burnedRegister,
  commitHash,
  commitWeights,
  CUSTOM_TX_ERROR,
  maxUpscale,
  revealBlocks,
  revealPoolCheck,
  revealWeights,
  serveAxon,
  setCommitment,
  setWeights,
  transferKeepAlive,
} from "./dispatch.ts";
import {
  account,
  cloneState,
  emptyState,
  newNeuron,
  newSubnet,
  weightCommitKey,
  type ChainState,
} from "./state.ts";

const key = (n: number) => "0x" + n.toString(16).padStart(64, "0");
const COLD = key(1000);

function world(neurons: number, params = {}): ChainState {
  const s = emptyState();
  const sn = newSubnet(3, key(999), { burn: 10n, ...params });
  for (let i = 0; i < neurons; i++) {
    const n = newNeuron(key(i), COLD, 0n);
    n.pruningScore = 100 - i;
    sn.neurons.push(n);
    s.owners.set(n.hotkey, COLD);
  }
  s.subnets.set(3, sn);
  account(s, COLD).free = 100n;
  return s;
}

const fail = (r: { ok: boolean; failure?: { error: string } }) => (r.ok ? "ok" : r.failure!.error);

describe("local chain dispatch", () => {
  it("appends a registration and burns from the coldkey", () => {
    const s = world(2);
    const r = burnedRegister(s, { block: 5n }, COLD, 3, key(50));
    assert.deepEqual(r, {
      ok: true,
      events: [{ pallet: "SubtensorModule", name: "NeuronRegistered", data: [3, 2, key(50)] }],
    });
    assert.equal(s.accounts.get(COLD)!.free, 90n);
    assert.equal(s.subnets.get(3)!.neurons[2]!.blockAtRegistration, 5n);
  });

  it("replaces the lowest pruning score outside immunity when the subnet is full", () => {
    const s = world(3, { maxAllowedUids: 3, immunityPeriod: 10 });
    assert.deepEqual(burnedRegister(cloneState(s), { block: 5n }, COLD, 3, key(60)), {
      ok: false,
      failure: { pallet: "SubtensorModule", error: "NoNeuronIdAvailable" },
    });
    const r = burnedRegister(s, { block: 20n }, COLD, 3, key(60));
    assert.ok(r.ok);
    assert.deepEqual(r.events[0]!.data, [3, 2, key(60)], "uid 2 had the lowest pruning score");
    assert.equal(s.subnets.get(3)!.neurons.length, 3);
  });

  it("changes nothing when a call fails", () => {
    const s = world(2);
    // key(51) belongs to COLD but is not registered: another coldkey may not register it.
    s.owners.set(key(51), COLD);
    account(s, key(77)).free = 100n;
    const before = JSON.stringify([...cloneState(s).subnets.values()], (_, v) =>
      typeof v === "bigint" ? String(v) : v,
    );
    const fails = [
      burnedRegister(s, { block: 1n }, COLD, 3, key(0)),
      burnedRegister(s, { block: 1n }, key(77), 3, key(51)),
      setWeights(s, { block: 500n }, key(0), 3, [0, 1], [1], 0n),
      setWeights(s, { block: 500n }, key(0), 3, [1], [1], 0n),
      serveAxon(s, { block: 1n }, key(0), {
        netuid: 3,
        version: 1,
        ip: 1n << 40n,
        port: 1,
        ipType: 4,
        protocol: 0,
        placeholder1: 0,
        placeholder2: 0,
      }),
      serveAxon(s, { block: 1n }, key(0), {
        netuid: 3,
        version: 1,
        ip: 1n,
        port: 0,
        ipType: 4,
        protocol: 0,
        placeholder1: 0,
        placeholder2: 0,
      }),
      setCommitment(s, { block: 1n }, key(0), 3, 4, new Uint8Array()),
      setCommitment(s, { block: 1n }, key(88), 3, 1, new Uint8Array()),
    ];
    assert.deepEqual(
      fails.map((f) => (f.ok ? "ok" : f.failure.error)),
      [
        "HotKeyAlreadyRegisteredInSubNet",
        "NonAssociatedColdKey",
        "WeightVecNotEqualSize",
        "NeuronNoValidatorPermit",
        "InvalidIpAddress",
        "InvalidPort",
        "TooManyFieldsInCommitmentInfo",
        "AccountNotAllowedCommit",
      ],
    );
    const after = JSON.stringify([...s.subnets.values()], (_, v) => (typeof v === "bigint" ? String(v) : v));
    assert.equal(after, before);
    assert.equal(s.commitments.size, 0);
    assert.equal(s.accounts.get(key(77))!.free, 100n, "nothing burned");
    assert.equal(fail(burnedRegister(s, { block: 1n }, key(78), 3, key(52))), "NotEnoughBalanceToStake");
  });

  it("enforces the weights rate limit and duplicate uids, and upscales to 65535", () => {
    const s = world(3);
    const v = s.subnets.get(3)!.neurons[0]!;
    v.validatorPermit = true;
    // LastUpdate 0 means never set: no rate limit applies.
    assert.equal(fail(setWeights(cloneState(s), { block: 50n }, key(0), 3, [1], [1], 0n)), "ok");
    v.lastUpdate = 10n;
    assert.equal(fail(setWeights(s, { block: 50n }, key(0), 3, [1], [1], 0n)), "SettingWeightsTooFast");
    assert.equal(fail(setWeights(s, { block: 110n }, key(0), 3, [1, 1], [1, 2], 0n)), "DuplicateUids");
    assert.equal(fail(setWeights(s, { block: 110n }, key(0), 3, [7], [1], 0n)), "UidVecContainInvalidOne");
    assert.equal(fail(setWeights(s, { block: 110n }, key(0), 3, [2, 1], [3, 1], 0n)), "ok");
    assert.deepEqual(s.subnets.get(3)!.neurons[0]!.weights, [
      [1, 21845],
      [2, 65535],
    ]);
    assert.deepEqual(maxUpscale([0, 0]), [0, 0]);
    s.subnets.get(3)!.commitRevealWeightsEnabled = true;
    assert.equal(fail(setWeights(s, { block: 500n }, key(0), 3, [1], [1], 0n)), "CommitRevealEnabled");
  });

  it("lets a neuron without a permit put a single weight on itself", () => {
    const s = world(3);
    assert.equal(fail(setWeights(s, { block: 1n }, key(1), 3, [1], [5], 0n)), "ok");
    assert.deepEqual(s.subnets.get(3)!.neurons[1]!.weights, [[1, 65535]]);
    assert.equal(fail(setWeights(s, { block: 1n }, key(2), 3, [1], [5], 0n)), "NeuronNoValidatorPermit");
  });
});

describe("commit-reveal of weights", () => {
  // netuid 3, tempo 10: epoch(b) = (b + 4) / 11, so a commit at block 20 (epoch 2) is
  // revealed in epoch 3, blocks 29..39, and expires from block 40.
  function crWorld(): ChainState {
    const s = world(3, { commitRevealWeightsEnabled: true, tempo: 10 });
    s.subnets.get(3)!.neurons[0]!.validatorPermit = true;
    return s;
  }
  const V = key(0);
  const SALT = [1, 2, 3];
  const hashOf = (uids: number[], values: number[], salt = SALT, version = 0n) =>
    commitHash(V, 3, uids, values, salt, version);

  it("hashes (hotkey, netuid index, uids, values, salt, version key) as the runtime does", () => {
    const bytes = new TypeRegistry()
      .createType("(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [V, 3, [1, 2], [10, 20], SALT, 7])
      .toU8a();
    assert.equal(hashOf([1, 2], [10, 20], SALT, 7n), blake2AsHex(bytes, 256));
  });

  it("reveals a matching commit in its reveal epoch and sets the weights", () => {
    const s = crWorld();
    const hash = hashOf([1, 2], [65535, 32767]);
    const c = commitWeights(s, { block: 20n }, V, 3, 0, hash);
    assert.deepEqual(c, {
      ok: true,
      events: [{ pallet: "SubtensorModule", name: "WeightsCommitted", data: [V, 3, hash] }],
    });
    const stored = s.weightCommits.get(weightCommitKey(3, V))!;
    assert.deepEqual(stored, [{ hash, commitBlock: 20n, firstRevealBlock: 29n, lastRevealBlock: 39n }]);
    assert.deepEqual(revealBlocks(s.subnets.get(3)!, 20n), [29n, 39n]);
    assert.equal(s.subnets.get(3)!.neurons[0]!.lastUpdate, 20n, "a commit counts as a weights update");
    const r = revealWeights(s, { block: 29n }, V, 3, 0, [1, 2], [65535, 32767], SALT, 0n);
    assert.ok(r.ok, fail(r));
    assert.deepEqual(
      r.events.map((e) => e.name),
      ["WeightsSet", "WeightsRevealed"],
    );
    assert.deepEqual(s.subnets.get(3)!.neurons[0]!.weights, [
      [1, 65535],
      [2, 32767],
    ]);
    assert.equal(s.weightCommits.size, 0, "the revealed commit is gone");
    assert.equal(s.subnets.get(3)!.neurons[0]!.lastUpdate, 20n, "a reveal does not move LastUpdate");
  });

  it("refuses early, late, mismatched and disabled reveals without changing anything", () => {
    const s = crWorld();
    const hash = hashOf([1], [65535]);
    assert.ok(commitWeights(s, { block: 20n }, V, 3, 0, hash).ok);
    const snapshot = JSON.stringify([...s.weightCommits], (_, v) => (typeof v === "bigint" ? String(v) : v));
    const reveal = (block: bigint, salt = SALT) =>
      fail(revealWeights(s, { block }, V, 3, 0, [1], [65535], salt, 0n));
    assert.equal(reveal(28n), "RevealTooEarly");
    assert.equal(reveal(30n, [9]), "InvalidRevealCommitHashNotMatch");
    assert.equal(reveal(40n), "ExpiredWeightCommit");
    assert.equal(reveal(40n, [9]), "NoWeightsCommitFound");
    assert.equal(
      fail(revealWeights(s, { block: 30n }, key(1), 3, 0, [1], [65535], SALT, 0n)),
      "NoWeightsCommitFound",
    );
    assert.equal(
      JSON.stringify([...s.weightCommits], (_, v) => (typeof v === "bigint" ? String(v) : v)),
      snapshot,
      "failed reveals keep the commits",
    );
    assert.deepEqual(s.subnets.get(3)!.neurons[0]!.weights, []);
    assert.equal(fail(setWeights(s, { block: 30n }, V, 3, [1], [1], 0n)), "CommitRevealEnabled");
    s.subnets.get(3)!.commitRevealWeightsEnabled = false;
    assert.equal(reveal(30n), "CommitRevealDisabled");
    assert.equal(fail(commitWeights(s, { block: 300n }, V, 3, 0, hash)), "CommitRevealDisabled");
  });

  it("rate-limits commits, caps unrevealed ones and checks registration", () => {
    const s = crWorld();
    assert.equal(fail(commitWeights(s, { block: 20n }, V, 3, 0, hashOf([1], [1]))), "ok");
    assert.equal(
      fail(commitWeights(s, { block: 50n }, V, 3, 0, hashOf([1], [2]))),
      "CommittingWeightsTooFast",
    );
    s.subnets.get(3)!.weightsSetRateLimit = 0n;
    for (let i = 2; i <= 10; i++)
      assert.equal(fail(commitWeights(s, { block: 21n }, V, 3, 0, hashOf([1], [i]))), "ok");
    assert.equal(
      fail(commitWeights(s, { block: 21n }, V, 3, 0, hashOf([1], [11]))),
      "TooManyUnrevealedCommits",
    );
    // Expired commits make room again.
    assert.equal(fail(commitWeights(s, { block: 60n }, V, 3, 0, hashOf([1], [12]))), "ok");
    assert.equal(s.weightCommits.get(weightCommitKey(3, V))!.length, 1);
    assert.equal(
      fail(commitWeights(s, { block: 60n }, key(50), 3, 0, hashOf([1], [1]))),
      "HotKeyNotRegisteredInSubNet",
    );
    assert.equal(fail(commitWeights(s, { block: 60n }, V, 3, 1, hashOf([1], [1]))), "MechanismDoesNotExist");
    assert.equal(fail(commitWeights(s, { block: 60n }, V, 9, 0, hashOf([1], [1]))), "MechanismDoesNotExist");
  });

  it("answers the pool's custom errors for reveal_weights", () => {
    const s = crWorld();
    assert.ok(commitWeights(s, { block: 20n }, V, 3, 0, hashOf([1], [65535])).ok);
    const check = (next: bigint, salt = SALT) => revealPoolCheck(s, next, V, 3, [1], [65535], salt, 0n);
    assert.equal(check(30n, [9]), CUSTOM_TX_ERROR.CommitNotFound);
    assert.equal(check(25n), CUSTOM_TX_ERROR.CommitBlockNotInRevealRange);
    assert.equal(check(45n), CUSTOM_TX_ERROR.CommitBlockNotInRevealRange);
    assert.equal(check(30n), undefined);
  });
});

describe("transfer_keep_alive", () => {
  const ED = 500n;
  it("moves the value and creates the destination account", () => {
    const s = world(0);
    account(s, COLD).free = 2000n;
    const r = transferKeepAlive(s, COLD, key(5), 600n, ED);
    assert.equal(fail(r), "ok");
    assert.equal(s.accounts.get(COLD)!.free, 1400n);
    assert.equal(s.accounts.get(key(5))!.free, 600n);
    assert.deepEqual(r.ok && r.events.map((e) => `${e.pallet}.${e.name}`), [
      "System.NewAccount",
      "Balances.Endowed",
      "Balances.Transfer",
    ]);
  });

  it("keeps the existential deposit and refuses dust, with the Token errors", () => {
    const s = world(0);
    account(s, COLD).free = 1000n;
    account(s, key(6)).free = 1000n;
    assert.deepEqual(transferKeepAlive(s, COLD, key(5), 501n, ED), {
      ok: false,
      failure: { pallet: "Token", error: "FundsUnavailable" },
    });
    assert.equal(fail(transferKeepAlive(s, COLD, key(5), 499n, ED)), "BelowMinimum");
    assert.equal(fail(transferKeepAlive(s, COLD, undefined, 1n, ED)), "CannotLookup");
    assert.equal(
      fail(transferKeepAlive(s, COLD, key(6), 1n, ED)),
      "ok",
      "an existing account takes any amount",
    );
    assert.equal(s.accounts.get(COLD)!.free, 999n);
  });
});
