/**
 * Test helper: submit a signed extrinsic through ApiPromise to a local chain that makes blocks
 * only on request, make the block once the pool holds it, and answer what the block says
 * about it (events in order, dispatch error).
 */
import type { ApiPromise } from "@polkadot/api";
import type { SubmittableExtrinsic } from "@polkadot/api/types";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { LocalChain } from "./local.ts";

export interface Included {
  blockHash: string;
  /** `section.method` of each event of the extrinsic, in order. */
  names: string[];
  events: { name: string; data: unknown[] }[];
  dispatchError: string | undefined;
}

export async function sendInNextBlock(
  api: ApiPromise,
  lc: LocalChain,
  tx: SubmittableExtrinsic<"promise">,
  signer: KeyringPair,
): Promise<Included> {
  const before = lc.chain.pending().length;
  let failed: unknown;
  const done = new Promise<Included>((resolve, reject) => {
    let unsub: (() => void) | undefined;
    tx.signAndSend(signer, (r) => {
      if (!r.status.isInBlock) return;
      unsub?.();
      const err = r.dispatchError;
      let dispatchError: string | undefined;
      if (err?.isModule) {
        const m = api.registry.findMetaError(err.asModule);
        dispatchError = `${m.section}.${m.name}`;
      } else if (err) dispatchError = err.toString();
      const events = r.events.map((e) => ({
        name: `${e.event.section}.${e.event.method}`,
        data: e.event.data.map((d) => d.toJSON()),
      }));
      resolve({
        blockHash: r.status.asInBlock.toHex(),
        names: events.map((e) => e.name),
        events,
        dispatchError,
      });
    })
      .then((u) => (unsub = u))
      .catch((e: unknown) => {
        failed = e;
        reject(e as Error);
      });
  });
  const end = Date.now() + 20_000;
  while (lc.chain.pending().length === before && failed === undefined) {
    if (Date.now() > end) throw new Error("the extrinsic never reached the pool");
    await new Promise((r) => setTimeout(r, 5));
  }
  if (failed === undefined) lc.chain.produce();
  return done;
}

/** Makes blocks until the best block is `n`. */
export function advanceTo(lc: LocalChain, n: number): void {
  while (lc.chain.best.number < n) lc.chain.produce();
}
