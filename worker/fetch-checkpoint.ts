// covenant-fetch-checkpoint: downloads the latest checkpoint of a run's validator from the
// run's bus, checks it against the digest the validator recorded, and writes it to a file,
// for `covenant-engine export --hf` (docs/huggingface.md). It logs in as the worker does
// (by hotkey through the run's admission service, or with NATS credentials), so any member
// of the run can use it.
//
//   node --import tsx worker/fetch-checkpoint.ts --config run.json --hotkey-file hotkey \
//     --out checkpoint [--bus-auth hotkey|nkey] [--nats-creds F] [--bus-ca F] [--nats-url U]
//     [--validator HOTKEY]
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { BusClient } from "../protocol/bus/client.ts";
import { stateKeys } from "../protocol/names.ts";
import { busClientOptions, nkeySeedIn } from "./bus-login.ts";
import { decodeCheckpoint, readCheckpointHeader, stateDigest } from "./checkpoint.ts";
import { busLogin, parseRunConfig, RunConfigEpochs, type BusAuth } from "./config.ts";
import { outerOptimizer } from "./dense.ts";
import type { CheckpointPointer } from "./replica.ts";

export const USAGE = `covenant-fetch-checkpoint: the latest checkpoint of a run's validator, checked, to a file

  --config FILE       the run's resolved configuration (run.json, the <run>-run-config ConfigMap)
  --hotkey-file FILE  the member's hotkey (secret URI or seed), to log in to the bus
  --out FILE          where to write the checkpoint
  --bus-auth MODE     hotkey (default without credentials) or nkey
  --nats-creds FILE   NATS credentials for an nkey login
  --bus-ca FILE       CA of the bus servers' TLS certificates
  --nats-url URL      the bus (default: the run configuration's)
  --validator HOTKEY  whose checkpoint (default: the validator the state bucket names)
`;

/**
 * Checks fetched checkpoint bytes against the pointer the validator wrote and the run's
 * configuration: the run's name, the momentum its round's outer optimizer implies, and the
 * state digest. Pure; throws with the reason.
 */
export function verifyCheckpoint(
  bytes: Uint8Array,
  ptr: CheckpointPointer,
  epochs: RunConfigEpochs,
  run: string,
): { round: number; digest: string } {
  const header = readCheckpointHeader(bytes);
  if (header.round !== ptr.round)
    throw new Error(`the object holds round ${header.round}, the pointer names round ${ptr.round}`);
  const { theta, momentum } = decodeCheckpoint(bytes, {
    run,
    tensors: header.tensors,
    momentum: (round) => outerOptimizer(epochs.at(round).config) === "nesterov",
  });
  const digest = stateDigest(theta, momentum);
  if (digest !== ptr.digest)
    throw new Error(`checkpoint of round ${ptr.round} is corrupt: digest ${digest}, recorded ${ptr.digest}`);
  return { round: header.round, digest };
}

async function main(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        "hotkey-file": { type: "string" },
        out: { type: "string" },
        "bus-auth": { type: "string" },
        "nats-creds": { type: "string" },
        "bus-ca": { type: "string" },
        "nats-url": { type: "string" },
        validator: { type: "string" },
        help: { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!a.config || !a["hotkey-file"] || !a.out) {
    process.stderr.write(`--config, --hotkey-file and --out are required\n${USAGE}`);
    return 2;
  }
  const busAuth = a["bus-auth"];
  if (busAuth !== undefined && busAuth !== "hotkey" && busAuth !== "nkey") {
    process.stderr.write(`--bus-auth must be hotkey or nkey, not ${JSON.stringify(busAuth)}\n`);
    return 2;
  }
  const parsed = parseRunConfig(readFileSync(a.config, "utf8"));
  if (!parsed.ok) throw new Error(`${a.config}: ${parsed.error}`);
  const cfg = parsed.config;
  const login = busLogin({ busAuth: busAuth as BusAuth | undefined, natsCredsFile: a["nats-creds"] }, cfg);
  if (!login.ok) throw new Error(login.error);
  const nkeySeed =
    login.login.kind === "nkey" ? nkeySeedIn(readFileSync(login.login.credsFile, "utf8")) : undefined;
  if (login.login.kind === "nkey" && !nkeySeed)
    throw new Error(`${login.login.credsFile} holds no NATS user nkey seed (SU...)`);
  await cryptoWaitReady();
  const pair = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri(
    readFileSync(a["hotkey-file"], "utf8").trim(),
  );
  const servers = a["nats-url"] ?? cfg.transport.natsUrl;
  const bus = await BusClient.connect(
    busClientOptions(
      {
        servers,
        run: cfg.run.name,
        netuid: cfg.chain.netuid,
        role: "miner",
        pair,
        login: login.login,
        caFile: a["bus-ca"],
      },
      nkeySeed,
    ),
  );
  try {
    const kv = await bus.state();
    const validator = a.validator ?? (await kv.get(stateKeys.validator))?.string();
    if (!validator)
      throw new Error(`the state bucket names no validator ('${stateKeys.validator}'); give --validator`);
    const entry = await kv.get(stateKeys.checkpoint(validator));
    if (!entry || entry.value.length === 0)
      throw new Error(`validator ${validator} has written no checkpoint yet`);
    const ptr = JSON.parse(entry.string()) as CheckpointPointer;
    const bytes = await bus.getObject(bus.names.checkpointBucket(validator), ptr.object, {
      maxBytes: 64 * 1024 ** 3,
    });
    if (!bytes) throw new Error(`the checkpoint object ${ptr.object} of validator ${validator} is gone`);
    const ok = verifyCheckpoint(bytes, ptr, new RunConfigEpochs(cfg), cfg.run.name);
    writeFileSync(`${a.out}.part`, bytes);
    renameSync(`${a.out}.part`, a.out);
    process.stdout.write(
      `checkpoint of round ${ok.round} of run ${cfg.run.name} from validator ${validator}: ` +
        `${bytes.length} bytes, digest ${ok.digest} (as recorded) -> ${a.out}\n`,
    );
    return 0;
  } finally {
    await bus.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`covenant-fetch-checkpoint: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
