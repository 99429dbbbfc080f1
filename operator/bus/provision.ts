// Per-run JetStream provisioning: planned by a pure function, applied idempotently.
// - one stream for announcements, selections and heartbeats, retention bounded by rounds;
// - one Object Store bucket per peer for its payloads, bounded in age and size;
// - one Object Store bucket per validator for checkpoints, bounded in size;
// - one KV bucket for membership, assignment and checkpoint pointers.
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/nats-core";
import { nanos } from "@nats-io/nats-core";
import { busNames } from "../protocol/names.ts";

export interface BusSpec {
  run: string;
  /** Length of a round (ms). */
  roundMs: number;
  /** Rounds of announcements, selections and payloads kept (at least 2). */
  retainRounds: number;
  /** Largest payload of one peer for one round (bytes). */
  maxPayloadBytes: number;
  /** Checkpoints kept per validator. */
  retainCheckpoints: number;
  /** Largest checkpoint (bytes). */
  maxCheckpointBytes: number;
  miners: readonly string[];
  validators: readonly string[];
}

export interface BucketPlan {
  name: string;
  ttlMs: number;
  maxBytes: number;
}

export interface BusPlan {
  stream: Pick<
    StreamConfig,
    | "name"
    | "subjects"
    | "retention"
    | "storage"
    | "discard"
    | "max_age"
    | "max_msg_size"
    | "max_msgs_per_subject"
    | "max_bytes"
    | "num_replicas"
  >;
  state: { bucket: string; history: number; maxValueBytes: number };
  payloadBuckets: BucketPlan[];
  checkpointBuckets: BucketPlan[];
}

/** Largest announcement, selection or heartbeat message kept in the run stream. */
export const MAX_BUS_MESSAGE_BYTES = 64 * 1024;

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} ${v} must be a positive integer`);
  return v;
}

/** What the run needs on the bus; pure, so it is tested without a server. */
export function planBus(spec: BusSpec): BusPlan {
  const n = busNames(spec.run);
  positive("roundMs", spec.roundMs);
  positive("maxPayloadBytes", spec.maxPayloadBytes);
  positive("retainCheckpoints", spec.retainCheckpoints);
  positive("maxCheckpointBytes", spec.maxCheckpointBytes);
  if (!Number.isSafeInteger(spec.retainRounds) || spec.retainRounds < 2)
    throw new Error(`retainRounds ${spec.retainRounds} must be an integer >= 2`);
  const overlap = spec.validators.filter((v) => spec.miners.includes(v));
  if (overlap.length) throw new Error(`hotkeys ${overlap.join(", ")} are both miner and validator`);
  const retainMs = spec.retainRounds * spec.roundMs;
  // A payload may be replaced inside its round; give each bucket room for the kept
  // rounds plus one in flight and the Object Store's per-chunk overhead (~1%).
  const payloadBytes = Math.ceil((spec.retainRounds + 1) * spec.maxPayloadBytes * 1.02) + 1024 * 1024;
  const peers = [...new Set([...spec.miners, ...spec.validators])].sort();
  return {
    stream: {
      name: n.stream,
      subjects: [n.allSubjects],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(retainMs),
      max_msg_size: MAX_BUS_MESSAGE_BYTES,
      // A peer republishing its own subject cannot grow the stream without bound.
      max_msgs_per_subject: 64,
      max_bytes: Math.max(64 * 1024 * 1024, peers.length * spec.retainRounds * 4 * MAX_BUS_MESSAGE_BYTES),
      num_replicas: 1,
    },
    state: { bucket: n.stateBucket, history: 4, maxValueBytes: 1024 * 1024 },
    payloadBuckets: peers.map((h) => ({ name: n.payloadBucket(h), ttlMs: retainMs, maxBytes: payloadBytes })),
    checkpointBuckets: [...spec.validators].sort().map((h) => ({
      name: n.checkpointBucket(h),
      ttlMs: 0,
      maxBytes: Math.ceil((spec.retainCheckpoints + 1) * spec.maxCheckpointBytes * 1.02) + 1024 * 1024,
    })),
  };
}

async function ensureStream(jsm: JetStreamManager, cfg: BusPlan["stream"]): Promise<void> {
  try {
    await jsm.streams.info(cfg.name);
    await jsm.streams.update(cfg.name, cfg);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(cfg);
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; code?: number; api_error?: { err_code?: number } };
  return (
    e?.name === "StreamNotFoundError" ||
    e?.api_error?.err_code === 10059 ||
    /stream not found/i.test(String((err as Error)?.message))
  );
}

/** Creates or updates everything in the plan; safe to run again at any time. */
export async function applyBus(nc: NatsConnection, plan: BusPlan): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, plan.stream);
  const kvm = new Kvm(nc);
  await kvm.create(plan.state.bucket, {
    history: plan.state.history,
    storage: StorageType.File,
    maxValueSize: plan.state.maxValueBytes,
  });
  const objm = new Objm(nc);
  for (const b of [...plan.payloadBuckets, ...plan.checkpointBuckets]) {
    await objm.create(b.name, {
      storage: StorageType.File,
      ttl: nanos(b.ttlMs),
      max_bytes: b.maxBytes,
      replicas: 1,
    });
    // Objm.create keeps an existing bucket as it is; bring its limits up to date.
    const name = `OBJ_${b.name}`;
    const info = await jsm.streams.info(name);
    if (info.config.max_bytes !== b.maxBytes || info.config.max_age !== nanos(b.ttlMs)) {
      await jsm.streams.update(name, { max_bytes: b.maxBytes, max_age: nanos(b.ttlMs) });
    }
  }
}
