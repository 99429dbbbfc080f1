// Per-run JetStream provisioning: planned by a pure function, applied idempotently.
// - one stream for announcements, selections and heartbeats, retention bounded by rounds;
// - one Object Store bucket per peer for its payloads, bounded in age and size;
// - one Object Store bucket per validator for checkpoints, bounded in size;
// - one KV bucket for membership, assignment and checkpoint pointers.
// Every one of them is replicated on `replicas` servers of the JetStream cluster
// (R3 on the run's 3-server hub: anything acknowledged survives the loss of a server).
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/nats-core";
import { nanos } from "@nats-io/nats-core";
import { busNames, kvStream, objectStream } from "../../protocol/names.ts";

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
  /**
   * Servers holding a copy of every stream and bucket, 1..5 (default 1). 3 on a
   * 3-server cluster; odd numbers are recommended (R3 keeps accepting writes with one
   * server down, R5 with two). At most the number of JetStream servers.
   */
  replicas?: number;
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
    | "duplicate_window"
    | "max_msg_size"
    | "max_msgs_per_subject"
    | "max_bytes"
    | "num_replicas"
  >;
  state: { bucket: string; history: number; maxValueBytes: number };
  payloadBuckets: BucketPlan[];
  checkpointBuckets: BucketPlan[];
  /** Copies of the stream, the state bucket and every Object Store bucket. */
  replicas: number;
}

/** JetStream's own ceiling on the copies of a stream. */
export const MAX_REPLICAS = 5;

/** Largest announcement, selection or heartbeat message kept in the run stream. */
export const MAX_BUS_MESSAGE_BYTES = 64 * 1024;

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} ${v} must be a positive integer`);
  return v;
}

/**
 * Copies of everything (1..5, JetStream's range). Odd counts are the sensible ones but
 * even ones are allowed: R2 keeps a second copy of the data, yet stops accepting writes
 * when either server is away (a majority of 2 is 2); R4 survives no more than R3.
 */
function replicasOf(spec: BusSpec): number {
  const r = spec.replicas ?? 1;
  if (!Number.isInteger(r) || r < 1 || r > MAX_REPLICAS)
    throw new Error(`replicas ${r} must be an integer from 1 to ${MAX_REPLICAS}`);
  return r;
}

/** What the run needs on the bus; pure, so it is tested without a server. */
export function planBus(spec: BusSpec): BusPlan {
  const n = busNames(spec.run);
  const replicas = replicasOf(spec);
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
      // JetStream refuses a duplicates window longer than max_age (its default is 2 min), so a
      // run with short rounds, or a change that shortens retention, sets both together.
      duplicate_window: nanos(Math.min(DEFAULT_DUPLICATE_WINDOW_MS, retainMs)),
      max_msg_size: MAX_BUS_MESSAGE_BYTES,
      // A peer republishing its own subject cannot grow the stream without bound.
      max_msgs_per_subject: 64,
      max_bytes: Math.max(64 * 1024 * 1024, peers.length * spec.retainRounds * 4 * MAX_BUS_MESSAGE_BYTES),
      num_replicas: replicas,
    },
    state: { bucket: n.stateBucket, history: 4, maxValueBytes: 1024 * 1024 },
    payloadBuckets: peers.map((h) => ({ name: n.payloadBucket(h), ttlMs: retainMs, maxBytes: payloadBytes })),
    checkpointBuckets: [...spec.validators].sort().map((h) => ({
      name: n.checkpointBucket(h),
      ttlMs: 0,
      maxBytes: Math.ceil((spec.retainCheckpoints + 1) * spec.maxCheckpointBytes * 1.02) + 1024 * 1024,
    })),
    replicas,
  };
}

/** JetStream's default duplicates window (2 min). */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

async function ensureStream(jsm: JetStreamManager, cfg: BusPlan["stream"]): Promise<void> {
  let exists = true;
  try {
    await jsm.streams.info(cfg.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    exists = false;
  }
  try {
    if (exists) await jsm.streams.update(cfg.name, cfg);
    else await jsm.streams.add(cfg);
  } catch (err) {
    // The run's stream is created first, so a cluster too small for the replicas fails
    // here ("no suitable peers for placement"); say which stream and how many copies.
    const doing = exists ? "updating" : "creating";
    throw new Error(
      `${doing} stream ${cfg.name} with ${cfg.num_replicas} replicas: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
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

/**
 * Kvm.create and Objm.create keep an existing bucket as it is; bring the fields the
 * plan sets (limits, replicas) up to date on its stream. JetStream adds or removes
 * copies of a stream in place when num_replicas changes.
 */
async function alignStream(
  jsm: JetStreamManager,
  name: string,
  want: Partial<Pick<StreamConfig, "max_bytes" | "max_age" | "num_replicas">>,
): Promise<void> {
  const info = await jsm.streams.info(name);
  const have = info.config as unknown as Record<string, unknown>;
  const changed: Record<string, unknown> = Object.fromEntries(
    Object.entries(want).filter(([k, v]) => have[k] !== v),
  );
  // A shorter max_age must not leave a longer duplicates window behind (JetStream refuses it).
  const maxAge = changed.max_age as number | undefined;
  if (maxAge && maxAge > 0 && Number(have.duplicate_window ?? 0) > maxAge) changed.duplicate_window = maxAge;
  if (Object.keys(changed).length) await jsm.streams.update(name, changed);
}

/**
 * A standalone server (its INFO names no cluster) cannot place more than one copy;
 * say so before creating anything. On a cluster with fewer servers than replicas,
 * JetStream itself refuses the stream (insufficient resources) and nothing is created.
 */
function checkReplicasPlaceable(nc: NatsConnection, replicas: number): void {
  if (replicas > 1 && !nc.info?.cluster)
    throw new Error(
      `replicas ${replicas} needs a JetStream cluster; ${nc.getServer()} is a standalone server`,
    );
}

/** Creates or updates everything in the plan; safe to run again at any time. */
export async function applyBus(nc: NatsConnection, plan: BusPlan): Promise<void> {
  checkReplicasPlaceable(nc, plan.replicas);
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, plan.stream);
  await new Kvm(nc).create(plan.state.bucket, {
    history: plan.state.history,
    storage: StorageType.File,
    maxValueSize: plan.state.maxValueBytes,
    replicas: plan.replicas,
  });
  await alignStream(jsm, kvStream(plan.state.bucket), { num_replicas: plan.replicas });
  const objm = new Objm(nc);
  for (const b of [...plan.payloadBuckets, ...plan.checkpointBuckets]) {
    await objm.create(b.name, {
      storage: StorageType.File,
      ttl: nanos(b.ttlMs),
      max_bytes: b.maxBytes,
      replicas: plan.replicas,
    });
    await alignStream(jsm, objectStream(b.name), {
      max_bytes: b.maxBytes,
      max_age: nanos(b.ttlMs),
      num_replicas: plan.replicas,
    });
  }
}
