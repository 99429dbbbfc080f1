/** The local chain's call logic without a server: checks, replacement of a full subnet, scaling. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { burnedRegister, maxUpscale, serveAxon, setCommitment, setWeights } from "./dispatch.ts";
import { account, cloneState, emptyState, newNeuron, newSubnet, type ChainState } from "./state.ts";

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
      setWeights(s, { block: 500n }, key(0), 3, [0], [1], 0n),
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
    s.subnets.get(3)!.neurons[0]!.validatorPermit = true;
    assert.equal(fail(setWeights(s, { block: 50n }, key(0), 3, [1], [1], 0n)), "SettingWeightsTooFast");
    assert.equal(fail(setWeights(s, { block: 100n }, key(0), 3, [1, 1], [1, 2], 0n)), "DuplicateUids");
    assert.equal(fail(setWeights(s, { block: 100n }, key(0), 3, [7], [1], 0n)), "UidVecContainInvalidOne");
    assert.equal(fail(setWeights(s, { block: 100n }, key(0), 3, [2, 1], [3, 1], 0n)), "ok");
    assert.deepEqual(s.subnets.get(3)!.neurons[0]!.weights, [
      [1, 21845],
      [2, 65535],
    ]);
    assert.deepEqual(maxUpscale([0, 0]), [0, 0]);
    s.subnets.get(3)!.commitRevealWeightsEnabled = true;
    assert.equal(fail(setWeights(s, { block: 500n }, key(0), 3, [1], [1], 0n)), "CommitRevealEnabled");
  });
});
