/**
 * Test-only controls of the local chain, served under the `covenantTest_` JSON-RPC namespace
 * (never part of a real node): make blocks now, set balances, stake and neuron fields,
 * replace a neuron with a new hotkey, change subnet parameters. Changes land in the next block.
 */
import type { Chain } from "./chain.ts";
import { placeNeuron } from "./dispatch.ts";
import { accountParam, bigParam, intParam, invalidParams, objParam } from "./params.ts";
import { account, newNeuron, type Neuron, type Subnet, type SubnetParams, type ChainState } from "./state.ts";

export const TEST_NAMESPACE = "covenantTest";

type Handler = (chain: Chain, params: unknown[]) => unknown;

function subnet(s: ChainState, v: unknown): Subnet {
  const netuid = intParam(v, "netuid", 0, 65535);
  const sn = s.subnets.get(netuid);
  if (!sn) throw invalidParams(`subnet ${netuid} does not exist`);
  return sn;
}

function neuronAt(sn: Subnet, v: unknown): [number, Neuron] {
  const uid = intParam(v, "uid", 0, 65535);
  const n = sn.neurons[uid];
  if (!n) throw invalidParams(`uid ${uid} is not registered on subnet ${sn.netuid}`);
  return [uid, n];
}

const U16_FIELDS = [
  "rank",
  "trust",
  "consensus",
  "incentive",
  "dividends",
  "validatorTrust",
  "pruningScore",
] as const;

function applyNeuronFields(n: Neuron, f: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(f)) {
    if ((U16_FIELDS as readonly string[]).includes(k)) {
      n[k as (typeof U16_FIELDS)[number]] = intParam(v, k, 0, 65535);
    } else if (k === "stake" || k === "emission" || k === "lastUpdate") {
      n[k] = bigParam(v, k);
    } else if (k === "active" || k === "validatorPermit") {
      if (typeof v !== "boolean") throw invalidParams(`${k} must be a boolean`);
      n[k] = v;
    } else {
      throw invalidParams(`unknown neuron field ${k}`);
    }
  }
}

function applySubnetParams(sn: Subnet, f: Record<string, unknown>): void {
  const ints: (keyof SubnetParams)[] = [
    "tempo",
    "maxAllowedUids",
    "immunityPeriod",
    "activityCutoff",
    "maxRegistrationsPerBlock",
  ];
  for (const [k, v] of Object.entries(f)) {
    if ((ints as string[]).includes(k))
      (sn as unknown as Record<string, number>)[k] = intParam(v, k, 0, 65535);
    // The runtime's bounds on the reveal period (MIN/MAX_COMMIT_REVEAL_PEROIDS).
    else if (k === "revealPeriodEpochs") sn[k] = intParam(v, k, 1, 100);
    else if (k === "weightsVersionKey" || k === "weightsSetRateLimit" || k === "burn") sn[k] = bigParam(v, k);
    else if (k === "commitRevealWeightsEnabled") {
      if (typeof v !== "boolean") throw invalidParams(`${k} must be a boolean`);
      sn[k] = v;
    } else throw invalidParams(`unknown subnet parameter ${k}`);
  }
}

/** Validates against a scratch copy first so a bad field changes nothing. */
function validated<T>(fn: (copy: T) => void, copy: T): void {
  fn(copy);
}

export const testHandlers: Record<string, Handler> = {
  advanceBlocks(chain, [n]) {
    const count = intParam(n ?? 1, "count", 1, 1000);
    for (let i = 0; i < count; i++) chain.produce();
    return chain.best.number;
  },
  setBalance(chain, [who, free]) {
    const w = accountParam(who, "account");
    const amount = bigParam(free, "free");
    chain.edit((s) => (account(s, w).free = amount));
    return null;
  },
  setNeuron(chain, [netuid, uid, fields]) {
    const f = objParam(fields, "fields");
    chain.edit((s) => {
      const [, n] = neuronAt(subnet(s, netuid), uid);
      validated((c: Neuron) => applyNeuronFields(c, f), { ...n });
      applyNeuronFields(n, f);
    });
    return null;
  },
  setStake(chain, [netuid, hotkey, amount]) {
    const h = accountParam(hotkey, "hotkey");
    const a = bigParam(amount, "amount");
    chain.edit((s) => {
      const sn = subnet(s, netuid);
      const n = sn.neurons.find((x) => x.hotkey === h);
      if (!n) throw invalidParams(`hotkey is not registered on subnet ${sn.netuid}`);
      n.stake = a;
    });
    return null;
  },
  replaceNeuron(chain, [netuid, uid, hotkey, coldkey]) {
    const h = accountParam(hotkey, "hotkey");
    const c = accountParam(coldkey, "coldkey");
    let result = 0;
    const events = chain.edit((s) => {
      const sn = subnet(s, netuid);
      const [u] = neuronAt(sn, uid);
      if (sn.neurons.some((x) => x.hotkey === h))
        throw invalidParams("hotkey is already registered on this subnet");
      placeNeuron(s, sn, u, newNeuron(h, c, BigInt(chain.best.number + 1)));
      s.owners.set(h, c);
      result = u;
      return [{ pallet: "SubtensorModule", name: "NeuronRegistered", data: [sn.netuid, u, h] }];
    });
    chain.edit(() => undefined, events);
    return result;
  },
  setSubnetParams(chain, [netuid, params]) {
    const f = objParam(params, "params");
    chain.edit((s) => {
      const sn = subnet(s, netuid);
      validated((c: Subnet) => applySubnetParams(c, f), { ...sn });
      applySubnetParams(sn, f);
    });
    return null;
  },
};
