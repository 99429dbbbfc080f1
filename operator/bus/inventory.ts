// What of a run is on the bus now, and how it differs from the run's plan.
// - classifyStream: which of a run's objects a JetStream stream is (pure);
// - observeRunBus: lists the account's streams once and keeps the run's (one request per
//   256 streams, so a reconcile that changes nothing costs one round trip);
// - diffBus: what to create or update and which buckets the plan no longer has (pure);
// - deleteStreams: removes streams, a stream already gone counting as removed.
import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { busNames, checkHotkey, kvStream, objectStream } from "../../protocol/names.ts";
import type { BusPlan } from "./provision.ts";

export type RunStream =
  | { kind: "stream" }
  | { kind: "state" }
  | { kind: "payload"; hotkey: string }
  | { kind: "checkpoint"; hotkey: string };

function hotkeyOrUndefined(s: string): string | undefined {
  try {
    return checkHotkey(s);
  } catch {
    return undefined;
  }
}

/**
 * Which object of `run` the stream `name` backs, or undefined when it is not the run's.
 * Bucket names are matched whole (prefix plus an SS58 hotkey), so run `a` never claims
 * the objects of a run named `a-p` or `a-c`.
 */
export function classifyStream(run: string, name: string): RunStream | undefined {
  const n = busNames(run);
  if (name === n.stream) return { kind: "stream" };
  if (name === kvStream(n.stateBucket)) return { kind: "state" };
  const payloadPrefix = objectStream(`${n.stream}-p-`);
  const checkpointPrefix = objectStream(`${n.stream}-c-`);
  for (const [prefix, kind] of [
    [payloadPrefix, "payload"],
    [checkpointPrefix, "checkpoint"],
  ] as const) {
    if (!name.startsWith(prefix)) continue;
    const hotkey = hotkeyOrUndefined(name.slice(prefix.length));
    if (hotkey) return { kind, hotkey };
  }
  return undefined;
}

/** The limits of a stream this module compares with a plan. */
export type StreamLimits = Pick<StreamConfig, "max_bytes" | "max_age" | "num_replicas">;

/** A run's streams on the bus, by stream name. */
export type RunInventory = Map<string, StreamLimits>;

export async function observeRunBus(jsm: JetStreamManager, run: string): Promise<RunInventory> {
  const out: RunInventory = new Map();
  for await (const si of jsm.streams.list()) {
    const c = si.config;
    if (classifyStream(run, c.name))
      out.set(c.name, { max_bytes: c.max_bytes, max_age: c.max_age, num_replicas: c.num_replicas });
  }
  return out;
}

export interface BusDiff {
  /** The part of the plan to apply (undefined: everything is in place). */
  apply: BusPlan | undefined;
  /** Streams the plan creates (not on the bus yet). */
  create: string[];
  /** Streams on the bus whose limits or replicas differ from the plan. */
  update: string[];
  /** Bucket streams of the run that the plan no longer has (the run stream and state bucket never are). */
  extra: string[];
}

/**
 * Compares the plan with the inventory. The run stream and state bucket are compared on
 * their replicas (applyBus brings the rest of their config); buckets on their size, age and
 * replicas, which is what applyBus keeps aligned.
 */
export function diffBus(plan: BusPlan, have: RunInventory): BusDiff {
  const create: string[] = [];
  const update: string[] = [];
  const check = (name: string, want: Partial<StreamLimits>): boolean => {
    const got = have.get(name);
    if (!got) return create.push(name) > 0;
    const differs = Object.entries(want).some(([k, v]) => got[k as keyof StreamLimits] !== v);
    return differs ? update.push(name) > 0 : false;
  };
  const base = [
    check(plan.stream.name, {
      num_replicas: plan.replicas,
      max_bytes: plan.stream.max_bytes,
      max_age: plan.stream.max_age,
    }),
    check(kvStream(plan.state.bucket), { num_replicas: plan.replicas }),
  ].some(Boolean);
  const bucketNeeds = (b: BusPlan["payloadBuckets"][number]) =>
    check(objectStream(b.name), {
      max_bytes: b.maxBytes,
      max_age: nanos(b.ttlMs),
      num_replicas: plan.replicas,
    });
  const payloadBuckets = plan.payloadBuckets.filter(bucketNeeds);
  const checkpointBuckets = plan.checkpointBuckets.filter(bucketNeeds);
  const wanted = new Set([
    ...plan.payloadBuckets.map((b) => objectStream(b.name)),
    ...plan.checkpointBuckets.map((b) => objectStream(b.name)),
  ]);
  // `have` holds only the run's streams (observeRunBus): anything but the run stream, the
  // state bucket and the planned buckets is a bucket the plan dropped.
  const fixed = new Set([plan.stream.name, kvStream(plan.state.bucket)]);
  const extra = [...have.keys()].filter((name) => !fixed.has(name) && !wanted.has(name));
  const needed = base || payloadBuckets.length > 0 || checkpointBuckets.length > 0;
  return {
    apply: needed ? { ...plan, payloadBuckets, checkpointBuckets } : undefined,
    create,
    update,
    extra: extra.sort(),
  };
}

function isStreamNotFound(err: unknown): boolean {
  const e = err as { name?: string; api_error?: { err_code?: number } };
  return e?.name === "StreamNotFoundError" || e?.api_error?.err_code === 10059;
}

/** Deletes the streams (buckets are streams); answers how many were there to delete. */
export async function deleteStreams(jsm: JetStreamManager, names: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const name of names) {
    try {
      await jsm.streams.delete(name);
      deleted++;
    } catch (err) {
      if (!isStreamNotFound(err))
        throw new Error(`deleting stream ${name}: ${(err as Error).message}`, { cause: err });
    }
  }
  return deleted;
}
