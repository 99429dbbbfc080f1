// The adversaries of the adversarial suite, in two kinds:
//  - faulty miners: real covenant-worker processes that train on their own shards and
//    corrupt their update (worker/test-fault-injection.ts, switched on by an environment
//    variable only these tests set): sign-flip, noise, scale, zeros, lazy, turncoat;
//  - copiers: small actors in the test process that read honest peers' payloads of the
//    round from the bus, craft a payload with the real codec, and sign and announce it
//    with the real envelope under their own hotkey: moved-index copy, stitched copy,
//    colluders sending one crafted update under two hotkeys.
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BusClient } from "../../protocol/bus/client.ts";
import { encodeAnnouncement, signEnvelope } from "../../protocol/envelope.ts";
import type { SignedEnvelope } from "../../protocol/envelope.ts";
import type { Codec, Tensors } from "../../worker/kernels.ts";
import { FAULT_ENV } from "../../worker/test-fault-injection.ts";
import { freePort } from "../stack/ports.ts";
import { nodeTs, repoRoot } from "../stack/paths.ts";
import { ManagedProcess } from "../stack/process.ts";
import type { LocalRun } from "../worker/harness.ts";

/** A faulty miner: the harness's worker command line plus the fault injection variable. */
export async function startFaulty(run: LocalRun, name: string, fault: string): Promise<ManagedProcess> {
  const who = run.identity(name);
  const secrets = join(run.dir, name);
  mkdirSync(secrets, { recursive: true });
  writeFileSync(join(secrets, "hotkey"), `//${name}`, { mode: 0o600 });
  writeFileSync(join(secrets, "nats.seed"), who.seed, { mode: 0o600 });
  const [cmd, ...pre] = nodeTs(join(repoRoot, "worker/main.ts"));
  return ManagedProcess.start({
    name: `faulty-${name}`,
    command: cmd!,
    args: [
      ...pre,
      "--role",
      "miner",
      "--config",
      join(run.dir, "run.json"),
      "--hotkey-file",
      join(secrets, "hotkey"),
      "--nats-creds",
      join(secrets, "nats.seed"),
      "--metrics-port",
      String(await freePort()),
      "--metrics-host",
      "127.0.0.1",
      "--chain",
      "off",
    ],
    logFile: join(run.dir, `${name}.log`),
    env: { OMP_NUM_THREADS: "1", [FAULT_ENV]: fault },
  });
}

export type CopyKind = "moved" | "stitched" | "collude";

/**
 * What a copier sends for a round, from the victims' dense updates (pure):
 *  - moved: the first victim's update with 80% of its kept values moved to other
 *    positions of the same 64-wide row segment;
 *  - stitched: bands of 64 rows (or whole 1-D tensors) taken in turn from each victim;
 *  - collude: the negated mean of the victims' updates (sent by two hotkeys).
 */
export function craft(kind: CopyKind, victims: Tensors[], round: number): Tensors {
  if (kind === "stitched")
    return victims[0]!.map((t, ti) => {
      const out = new Float32Array(t.length);
      const band = 64 * 64;
      for (let b = 0; b * band < t.length; b++) {
        const from = victims[(ti + b) % victims.length]![ti]!;
        out.set(from.subarray(b * band, (b + 1) * band), b * band);
      }
      return out;
    });
  if (kind === "collude")
    return victims[0]!.map((_, ti) => {
      const out = new Float32Array(victims[0]![ti]!.length);
      for (const v of victims)
        for (let i = 0; i < out.length; i++) out[i] = out[i]! - v[ti]![i]! / victims.length;
      return out;
    });
  let seed = (round * 747796405 + 1) >>> 0;
  const rand = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  return victims[0]!.map((t) => {
    const out = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) {
      if (t[i] === 0) continue;
      let at = i;
      if (rand() < 0.8) {
        const base = i - (i % 64);
        const width = Math.min(64, t.length - base);
        for (let tries = 0; tries < 8; tries++) {
          const c = base + Math.floor(rand() * width);
          if (t[c] === 0 && out[c] === 0) {
            at = c;
            break;
          }
        }
      }
      out[at] = t[i]!;
    }
    return out;
  });
}

export interface Copier {
  name: string;
  kind: CopyKind;
  /** The hotkeys it sends under (two for colluders). */
  clients: { bus: BusClient; pair: Parameters<typeof signEnvelope>[2] }[];
}

/**
 * Sends each round's crafted payload once every victim has announced (so it is always the
 * later uploader), until `rounds` or the signal.
 */
export async function runCopier(
  c: Copier,
  o: { run: string; format: number; rounds: number; victims: string[]; codec: Codec; watch: BusClient },
  signal: AbortSignal,
): Promise<void> {
  const zeros = (t: Tensors) => t.map((x) => new Float32Array(x.length));
  for (let round = 0; round < o.rounds && !signal.aborted; round++) {
    // The victims that announce within a while (a victim may sit a round out).
    const envs: SignedEnvelope[] = [];
    for (const h of o.victims) {
      for (let i = 0; i < (envs.length ? 50 : 600) && !signal.aborted; i++) {
        const m = await o.watch.lastMessage(o.watch.names.submit(round, h)).catch(() => undefined);
        if (m) {
          envs.push(JSON.parse(new TextDecoder().decode(m.data)) as SignedEnvelope);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (envs.length === 0) continue;
    const dense: Tensors[] = [];
    for (const e of envs) {
      const bytes = await o.watch.getPayload(e.hotkey, round, { maxBytes: e.size }).catch(() => undefined);
      if (bytes) dense.push(o.codec.decode(bytes));
    }
    if (dense.length === 0) continue;
    const crafted = craft(c.kind, dense, round);
    const payload = o.codec.compress(crafted, zeros(crafted)).slice();
    for (const { bus, pair } of c.clients) {
      const env = signEnvelope({ run: o.run, round, format: o.format }, payload, pair);
      await bus.putPayload(env.hotkey, round, payload).catch(() => undefined);
      await bus
        .publish(bus.names.submit(round, env.hotkey), encodeAnnouncement(env), `${env.hotkey}-${round}`)
        .catch(() => undefined);
    }
  }
}
