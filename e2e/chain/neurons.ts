/**
 * NeuronInfoRuntimeApi answers, encoded with the output types the metadata declares for
 * get_neurons_lite and get_neuron_lite. The same state feeds storage.ts, so a metagraph read
 * by storage queries and one read by the runtime call agree.
 */
import type { Runtime } from "./runtime.ts";
import type { ChainState, Neuron } from "./state.ts";

function outputType(rt: Runtime, method: string): string {
  const api = rt.metadata.asLatest.apis.find((a) => a.name.eq("NeuronInfoRuntimeApi"));
  const m = api?.methods.find((x) => x.name.eq(method));
  if (!m) throw new Error(`NeuronInfoRuntimeApi.${method} is not in the metadata`);
  return rt.registry.createLookupType(m.output);
}

/** An axon that was never served, as the runtime reports it. */
export const EMPTY_AXON = {
  block: 0n,
  version: 0,
  ip: 0n,
  port: 0,
  ipType: 0,
  protocol: 0,
  placeholder1: 0,
  placeholder2: 0,
};
/** No Prometheus endpoint served. */
export const NO_PROMETHEUS = { block: 0n, version: 0, ip: 0n, port: 0, ipType: 0 };

/** A NeuronInfoLite from the state; the full NeuronInfo adds weights and bonds to it. */
export function lite(netuid: number, uid: number, n: Neuron): Record<string, unknown> {
  return {
    hotkey: n.hotkey,
    coldkey: n.coldkey,
    uid,
    netuid,
    active: n.active,
    axonInfo: n.axon ?? EMPTY_AXON,
    prometheusInfo: NO_PROMETHEUS,
    stake: [[n.coldkey, n.stake]],
    rank: n.rank,
    emission: n.emission,
    incentive: n.incentive,
    consensus: n.consensus,
    trust: n.trust,
    validatorTrust: n.validatorTrust,
    dividends: n.dividends,
    lastUpdate: n.lastUpdate,
    validatorPermit: n.validatorPermit,
    pruningScore: n.pruningScore,
  };
}

export function neuronsLite(rt: Runtime, state: ChainState, netuid: number): Uint8Array {
  const s = state.subnets.get(netuid);
  const list = s ? s.neurons.map((n, uid) => lite(netuid, uid, n)) : [];
  return rt.registry.createTypeUnsafe(outputType(rt, "get_neurons_lite"), [list]).toU8a();
}

export function neuronLite(rt: Runtime, state: ChainState, netuid: number, uid: number): Uint8Array {
  const n = state.subnets.get(netuid)?.neurons[uid];
  const value = n ? lite(netuid, uid, n) : null;
  return rt.registry.createTypeUnsafe(outputType(rt, "get_neuron_lite"), [value]).toU8a();
}
