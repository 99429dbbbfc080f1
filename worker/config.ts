// The worker's command line: flags, then environment variables, then the run
// configuration file the operator mounts. Pure parsing, so it is tested without I/O.
import type { ConfigEpoch, ResolvedRunConfig } from "../api/runconfig.ts";
import { HOTKEY_DIR, HOTKEY_FILE, RUN_CONFIG_DIR, RUN_CONFIG_FILE } from "../api/runconfig.ts";
import { configEpochs, configOf, epochFor, epochProblems } from "../protocol/configepoch.ts";

export type Role = "miner" | "validator";

/**
 * hotkey: sign the server's nonce with the peer's hotkey; the run's admission service
 * (NATS auth callout) admits it by its registration on chain (docs/admission.md).
 * nkey: a NATS user nkey handed out beforehand (--nats-creds), as on a bus with static accounts.
 */
export type BusAuth = "hotkey" | "nkey";

export interface WorkerOptions {
  configFile: string;
  hotkeyFile: string;
  role: Role;
  /** Overrides the run configuration's NATS URL. */
  natsUrl?: string;
  /** NATS credentials: a user nkey seed file or a .creds file. */
  natsCredsFile?: string;
  /** How the worker logs in to the bus (default: nkey when a credentials file is given, else hotkey). */
  busAuth?: BusAuth;
  /** CA (PEM file) that signs the bus servers' TLS certificates. */
  busCa?: string;
  /** Hotkey of the validator whose selections this worker follows (default: the state bucket's). */
  validator?: string;
  metricsPort: number;
  metricsHost: string;
  /** Directory of the token shards: a file:// source's (overriding it), else the shard cache's. */
  dataDir?: string;
  /** CA (PEM file) that signs an https:// data source's certificate. */
  dataCa?: string;
  /** Size bound of the shard cache in bytes. */
  dataCacheBytes?: number;
  /** Stop after this round (default: the run's last round). */
  untilRound?: number;
  /** Take part on the run's chain (register, commit, set weights); off for runs without one. */
  chain: boolean;
}

export const USAGE = `covenant-worker: one peer of a Covenant training run

  covenant-worker --role miner|validator [flags]

  --config FILE         resolved run configuration (env COVENANT_RUN_CONFIG,
                        default ${RUN_CONFIG_DIR}/${RUN_CONFIG_FILE})
  --hotkey-file FILE    sr25519 secret URI or seed of the peer's hotkey (env COVENANT_HOTKEY_FILE,
                        default ${HOTKEY_DIR}/${HOTKEY_FILE})
  --role ROLE           miner or validator (env COVENANT_ROLE)
  --nats-url URL        NATS server(s) (env COVENANT_NATS_URL, default: from the run configuration)
  --bus-auth hotkey|nkey
                        how to log in to the bus (env COVENANT_BUS_AUTH): hotkey signs the
                        server's nonce with the peer's hotkey (admission by chain identity);
                        nkey uses --nats-creds. Default: nkey when a credentials file is given
                        (flag, env or run configuration), else hotkey
  --bus-ca FILE         CA of the bus servers' TLS certificates (env COVENANT_BUS_CA,
                        default: the system's CAs when the servers ask for TLS)
  --nats-creds FILE     NATS user nkey seed or .creds file (env COVENANT_NATS_CREDS)
  --validator HOTKEY    validator whose selections to follow (env COVENANT_VALIDATOR)
  --metrics-port PORT   Prometheus metrics on :PORT/metrics (env COVENANT_METRICS_PORT or
                        COVENANT_METRICS_ADDR=host:port, default 9400; 0 picks a free port)
  --metrics-host HOST   address to listen on (default 0.0.0.0)
  --data-dir DIR        token shards (env COVENANT_DATA_DIR): a file:// source's directory
                        (default: its path), or where nats:// and https:// shards are cached
                        (default: $TMPDIR/covenant-data/RUN/HOTKEY)
  --data-ca FILE        CA of an https:// data source's server (env COVENANT_DATA_CA,
                        default: the system's CAs)
  --data-cache-bytes N  size bound of the shard cache (env COVENANT_DATA_CACHE_BYTES,
                        default 64 GiB; shards in use are kept beyond it)
  --until-round N       stop after round N (default: the run's last round)
  --chain on|off        register, commit the payload location and (validators) set weights on
                        the run's chain (env COVENANT_CHAIN, default on)
`;

const FLAGS: Record<string, { env?: string; key: keyof WorkerOptions }> = {
  "--config": { env: "COVENANT_RUN_CONFIG", key: "configFile" },
  "--hotkey-file": { env: "COVENANT_HOTKEY_FILE", key: "hotkeyFile" },
  "--role": { env: "COVENANT_ROLE", key: "role" },
  "--nats-url": { env: "COVENANT_NATS_URL", key: "natsUrl" },
  "--nats-creds": { env: "COVENANT_NATS_CREDS", key: "natsCredsFile" },
  "--bus-auth": { env: "COVENANT_BUS_AUTH", key: "busAuth" },
  "--bus-ca": { env: "COVENANT_BUS_CA", key: "busCa" },
  "--validator": { env: "COVENANT_VALIDATOR", key: "validator" },
  "--metrics-port": { env: "COVENANT_METRICS_PORT", key: "metricsPort" },
  "--metrics-host": { key: "metricsHost" },
  "--data-dir": { env: "COVENANT_DATA_DIR", key: "dataDir" },
  "--data-ca": { env: "COVENANT_DATA_CA", key: "dataCa" },
  "--data-cache-bytes": { env: "COVENANT_DATA_CACHE_BYTES", key: "dataCacheBytes" },
  "--until-round": { key: "untilRound" },
  "--chain": { env: "COVENANT_CHAIN", key: "chain" },
};

export type ParseResult =
  | { ok: true; options: WorkerOptions }
  | { ok: false; error: string }
  | { ok: "help" };

export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParseResult {
  const raw: Partial<Record<keyof WorkerOptions, string>> = {};
  for (const f of Object.values(FLAGS)) if (f.env && env[f.env]) raw[f.key] = env[f.env];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: "help" };
    const [name, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const flag = FLAGS[name];
    if (!flag) return { ok: false, error: `unknown argument ${JSON.stringify(arg)} (see --help)` };
    const value = inline ?? argv[++i];
    if (value === undefined) return { ok: false, error: `${name} needs a value` };
    raw[flag.key] = value;
  }
  // COVENANT_METRICS_ADDR (host:port), as the operator sets it in worker pods.
  const addr = env.COVENANT_METRICS_ADDR;
  if (addr && raw.metricsPort === undefined) {
    const at = addr.lastIndexOf(":");
    raw.metricsPort = addr.slice(at + 1);
    if (raw.metricsHost === undefined && at > 0) raw.metricsHost = addr.slice(0, at);
  }
  const role = raw.role;
  if (role !== "miner" && role !== "validator")
    return { ok: false, error: `--role must be miner or validator, got ${JSON.stringify(role ?? "")}` };
  const port = Number(raw.metricsPort ?? "9400");
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    return { ok: false, error: `--metrics-port ${JSON.stringify(raw.metricsPort)} is not a port number` };
  let untilRound: number | undefined;
  if (raw.untilRound !== undefined) {
    untilRound = Number(raw.untilRound);
    if (!Number.isSafeInteger(untilRound) || untilRound < 0)
      return { ok: false, error: `--until-round ${JSON.stringify(raw.untilRound)} is not a round number` };
  }
  let dataCacheBytes: number | undefined;
  if (raw.dataCacheBytes !== undefined) {
    dataCacheBytes = Number(raw.dataCacheBytes);
    if (!Number.isSafeInteger(dataCacheBytes) || dataCacheBytes < 0)
      return {
        ok: false,
        error: `--data-cache-bytes ${JSON.stringify(raw.dataCacheBytes)} is not a byte count`,
      };
  }
  const busAuth = raw.busAuth;
  if (busAuth !== undefined && busAuth !== "hotkey" && busAuth !== "nkey")
    return { ok: false, error: `--bus-auth must be hotkey or nkey, got ${JSON.stringify(busAuth)}` };
  const chain = raw.chain ?? "on";
  if (chain !== "on" && chain !== "off")
    return { ok: false, error: `--chain must be on or off, got ${JSON.stringify(chain)}` };
  const options: WorkerOptions = {
    chain: chain === "on",
    configFile: raw.configFile ?? `${RUN_CONFIG_DIR}/${RUN_CONFIG_FILE}`,
    hotkeyFile: raw.hotkeyFile ?? `${HOTKEY_DIR}/${HOTKEY_FILE}`,
    role,
    metricsPort: port,
    metricsHost: raw.metricsHost ?? "0.0.0.0",
  };
  if (raw.natsUrl) options.natsUrl = raw.natsUrl;
  if (raw.natsCredsFile) options.natsCredsFile = raw.natsCredsFile;
  if (busAuth) options.busAuth = busAuth;
  if (raw.busCa) options.busCa = raw.busCa;
  if (raw.validator) options.validator = raw.validator;
  if (raw.dataDir) options.dataDir = raw.dataDir;
  if (raw.dataCa) options.dataCa = raw.dataCa;
  if (dataCacheBytes !== undefined) options.dataCacheBytes = dataCacheBytes;
  if (untilRound !== undefined) options.untilRound = untilRound;
  return { ok: true, options };
}

/** How this worker logs in to the bus, decided from its options and the run configuration. */
export type BusLogin = { kind: "hotkey" } | { kind: "nkey"; credsFile: string };

/**
 * Pure. An explicit --bus-auth wins; without it a credentials file (flag, environment, or
 * the run configuration's transport.credentialsFile, which the operator sets when the run
 * names a credentials Secret) means nkey, as before admission by chain identity existed,
 * and no file means hotkey: a provider then needs only its hotkey Secret and the bus address.
 */
export function busLogin(
  opts: Pick<WorkerOptions, "busAuth" | "natsCredsFile">,
  cfg: Pick<ResolvedRunConfig, "transport">,
): { ok: true; login: BusLogin } | { ok: false; error: string } {
  const credsFile = opts.natsCredsFile ?? cfg.transport.credentialsFile;
  const kind = opts.busAuth ?? (credsFile ? "nkey" : "hotkey");
  if (kind === "hotkey") return { ok: true, login: { kind } };
  if (!credsFile)
    return {
      ok: false,
      error: "--bus-auth nkey needs a NATS credentials file (--nats-creds or COVENANT_NATS_CREDS)",
    };
  return { ok: true, login: { kind, credsFile } };
}

/** Checks the fields of a parsed run configuration the worker relies on; problems name the field. */
export function runConfigProblems(c: unknown): string[] {
  const p: string[] = [];
  const r = c as Partial<ResolvedRunConfig>;
  if (typeof r !== "object" || r === null) return ["the run configuration is not a JSON object"];
  if (r.kind !== "ResolvedRunConfig") p.push(`kind must be ResolvedRunConfig, got ${JSON.stringify(r.kind)}`);
  if (typeof r.run?.name !== "string") p.push("run.name is missing");
  if (!Number.isSafeInteger(r.rounds) || (r.rounds ?? 0) < 1) p.push("rounds must be a positive integer");
  if (!Number.isSafeInteger(r.innerSteps) || (r.innerSteps ?? 0) < 1)
    p.push("innerSteps must be a positive integer");
  if (!Number.isSafeInteger(r.roundDeadlineSeconds) || (r.roundDeadlineSeconds ?? 0) < 1)
    p.push("roundDeadlineSeconds must be a positive integer");
  if (typeof r.compression?.topK !== "number") p.push("compression.topK is missing");
  if (typeof r.aggregation?.gatherPeers !== "number") p.push("aggregation.gatherPeers is missing");
  if (typeof r.outer?.learningRate !== "number") p.push("outer.learningRate is missing");
  if (typeof r.data?.shards !== "number") p.push("data.shards is missing");
  if (typeof r.transport?.natsUrl !== "string") p.push("transport.natsUrl is missing");
  if (typeof r.checkpoints?.everyRounds !== "number") p.push("checkpoints.everyRounds is missing");
  if (r.epochs !== undefined) {
    const e = epochProblems(r.epochs);
    p.push(...e);
    // Every epoch's config must be one the worker can run, not only the base.
    if (e.length === 0)
      for (const epoch of r.epochs)
        for (const q of runConfigProblems({ ...r, epochs: undefined, ...epoch.config }))
          p.push(`epoch ${epoch.epoch}: ${q}`);
  }
  return p;
}

export type RunConfigResult = { ok: true; config: ResolvedRunConfig } | { ok: false; error: string };

/** Parses and checks the text of a run configuration file. */
export function parseRunConfig(text: string): RunConfigResult {
  let c: unknown;
  try {
    c = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const problems = runConfigProblems(c);
  if (problems.length) return { ok: false, error: problems.join("; ") };
  return { ok: true, config: c as ResolvedRunConfig };
}

/**
 * The config epochs a worker holds: those of the file it started with, brought up to date
 * from each re-read of the file (the kubelet refreshes the mounted ConfigMap). Pure.
 */
export class RunConfigEpochs {
  #epochs: ConfigEpoch[];

  constructor(readonly base: ResolvedRunConfig) {
    this.#epochs = configEpochs(base);
  }

  get epochs(): readonly ConfigEpoch[] {
    return this.#epochs;
  }

  /**
   * Takes the epochs of a freshly read config; answers the epochs that are new. Epochs the
   * worker already holds are kept (a re-read never takes one away, so rounds being replayed
   * keep their config); a config that lists none changes nothing.
   */
  update(next: ResolvedRunConfig): ConfigEpoch[] {
    if (!next.epochs?.length) return [];
    const known = new Map(this.#epochs.map((e) => [e.epoch, e]));
    const same = (a: ConfigEpoch | undefined, b: ConfigEpoch) =>
      a?.digest === b.digest && a.fromRound === b.fromRound;
    const added = next.epochs.filter((e) => !same(known.get(e.epoch), e));
    if (added.length === 0) return [];
    for (const e of next.epochs) known.set(e.epoch, e);
    this.#epochs = [...known.values()].sort((a, b) => a.epoch - b.epoch);
    return added;
  }

  /** The epoch in force for `round` and the full config of it. */
  at(round: number): { epoch: ConfigEpoch; config: ResolvedRunConfig } {
    const epoch = epochFor(this.#epochs, round);
    return { epoch, config: configOf(this.base, epoch) };
  }

  /** The full config of the epoch with this digest, if held. */
  byDigest(digest: string): ResolvedRunConfig | undefined {
    const e = this.#epochs.findLast((e) => e.digest === digest);
    return e ? configOf(this.base, e) : undefined;
  }
}

/** The local directory of a file:// data source, or undefined for other schemes. */
export function localDataDir(source: string): string | undefined {
  return source.startsWith("file://") ? decodeURIComponent(new URL(source).pathname) : undefined;
}
