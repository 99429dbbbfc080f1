// NATS accounts and permissions of a run, generated as server configuration.
//
// Each run is its own NATS account (nothing crosses runs). Inside it:
// - the operator user provisions streams and buckets and writes membership and
//   assignment in the state KV bucket;
// - each peer user, named by its hotkey, may publish only under its own hotkey:
//   its announcements, heartbeats, its own payload bucket, and (validators) its
//   selections, checkpoint bucket and checkpoint pointer;
// - every user of the run may read everything of the run.
// NATS itself refuses a publish outside these lists, so a peer cannot overwrite
// another peer's payload or selection whatever client it runs.
// Users authenticate with NATS nkeys (ed25519): only public keys appear here, the
// seeds stay in each peer's credentials Secret.
import { busNames, kvStream, objectStream } from "../names.ts";

export type PeerRole = "miner" | "validator";

export interface PeerUser {
  hotkey: string;
  role: PeerRole;
  /** Public NATS user nkey ("U..."). */
  nkey: string;
}

export interface RunAuth {
  run: string;
  /** Public nkey of the operator's user (full rights inside the run's account). */
  operatorNkey: string;
  peers: readonly PeerUser[];
  /** JetStream limits of the account. */
  maxFileBytes: number;
  maxMemoryBytes: number;
}

export interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

const USER_NKEY = /^U[A-Z2-7]{55}$/;

export function checkUserNkey(nkey: string): string {
  if (!USER_NKEY.test(nkey)) throw new Error(`${JSON.stringify(nkey)} is not a public NATS user nkey (U...)`);
  return nkey;
}

/** What any member of the run may do to read: JetStream lookups, consumers, direct gets. */
function readerPublish(): string[] {
  return [
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.CREATE.>",
    "$JS.API.CONSUMER.INFO.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.API.CONSUMER.MSG.NEXT.>",
    "$JS.FC.>",
    "$JS.ACK.>",
  ];
}

/** The exact permissions of a peer: writes only under its own hotkey. */
export function peerPermissions(run: string, peer: Pick<PeerUser, "hotkey" | "role">): Permissions {
  const n = busNames(run);
  const own = n.payloadBucket(peer.hotkey);
  const publish = [
    ...readerPublish(),
    `covenant.${run}.round.*.submit.${peer.hotkey}`,
    n.heartbeat(peer.hotkey),
    `$O.${own}.>`,
    // Replacing or deleting an object purges its old chunks.
    `$JS.API.STREAM.PURGE.${objectStream(own)}`,
  ];
  if (peer.role === "validator") {
    const ckpt = n.checkpointBucket(peer.hotkey);
    publish.push(
      `covenant.${run}.round.*.selection.${peer.hotkey}`,
      `$O.${ckpt}.>`,
      `$JS.API.STREAM.PURGE.${objectStream(ckpt)}`,
      `$KV.${n.stateBucket}.checkpoint.${peer.hotkey}`,
    );
  }
  return {
    publish: { allow: publish },
    subscribe: { allow: [n.allSubjects, "_INBOX.>"] },
  };
}

/** The account block of a run as a JSON value (NATS configuration is a superset of JSON). */
export function runAccount(spec: RunAuth): Record<string, unknown> {
  const seen = new Set<string>();
  const users: unknown[] = [{ nkey: checkUserNkey(spec.operatorNkey) }];
  seen.add(spec.operatorNkey);
  for (const peer of spec.peers) {
    busNames(spec.run).payloadBucket(peer.hotkey); // validates the hotkey
    if (seen.has(peer.nkey)) throw new Error(`nkey ${peer.nkey} is used by two users of run ${spec.run}`);
    seen.add(checkUserNkey(peer.nkey));
    users.push({ nkey: peer.nkey, permissions: peerPermissions(spec.run, peer) });
  }
  return {
    jetstream: { max_file: spec.maxFileBytes, max_mem: spec.maxMemoryBytes },
    users,
  };
}

/**
 * The `accounts { ... }` block for a set of runs, ready to include in nats-server's
 * configuration. Deterministic: the same runs give the same text.
 */
export function accountsConfig(runs: readonly RunAuth[]): string {
  const accounts: Record<string, unknown> = {};
  for (const r of [...runs].sort((a, b) => a.run.localeCompare(b.run))) {
    const name = busNames(r.run).account;
    if (accounts[name]) throw new Error(`run ${r.run} appears twice`);
    accounts[name] = runAccount(r);
  }
  return `accounts: ${JSON.stringify(accounts, null, 2)}\n`;
}

/** Names used by read-only tooling that wants to list what a run owns. */
export function runStreams(run: string, hotkeys: readonly string[], validators: readonly string[]): string[] {
  const n = busNames(run);
  return [
    n.stream,
    kvStream(n.stateBucket),
    ...hotkeys.map((h) => objectStream(n.payloadBucket(h))),
    ...validators.map((h) => objectStream(n.checkpointBucket(h))),
  ].sort();
}
