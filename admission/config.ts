// Configuration of `covenant-admission` from flags and environment (flags win). Pure: the
// entry point passes process.argv and process.env; secrets are file paths, never values.
import { ConfigError, parseDuration } from "../protocol/cli.ts";
import { validateEndpoint } from "../protocol/chain/endpoint.ts";
import { parseLogLevel, type LogLevel } from "../protocol/log.ts";
import { checkRunId } from "../protocol/names.ts";
import { canonicalHotkey } from "./request.ts";

export { ConfigError };

export interface AdmissionConfig {
  /** NATS server URLs of the run's bus. */
  natsServers: string[];
  /** File with the callout user's nkey seed (a bare SU... seed or a .creds file). */
  natsCreds: string;
  /** PEM file of the CA that signed the NATS servers' certificates; undefined: system CAs / plain TCP. */
  natsCa: string | undefined;
  /** WebSocket JSON-RPC endpoint of a subtensor node. */
  chainEndpoint: string;
  netuid: number;
  run: string;
  /** File with the issuer account's nkey seed (SA...). */
  issuerSeedFile: string;
  /** Lifetime of an admission, whole seconds. */
  ttlSeconds: number;
  /** Deadline of one chain query, ms. */
  chainTimeoutMs: number;
  /** Hotkeys admitted as validators without a validator permit. */
  validators: string[];
  /** `host:port` of /metrics, /healthz, /readyz; "" disables. */
  httpAddress: string;
  logLevel: LogLevel;
}

interface Flag {
  env: string;
  default?: string;
  help: string;
}

export const FLAGS: Record<string, Flag> = {
  "nats-url": {
    env: "COVENANT_ADMISSION_NATS_URL",
    help: "NATS server URL(s) of the run's bus, comma-separated",
  },
  "nats-creds": {
    env: "COVENANT_ADMISSION_NATS_CREDS",
    help: "file with the callout user's NATS nkey seed (SU... or a .creds file)",
  },
  "nats-ca": {
    env: "COVENANT_ADMISSION_NATS_CA",
    default: "",
    help: "PEM CA bundle to verify the NATS servers (TLS)",
  },
  "chain-endpoint": {
    env: "COVENANT_ADMISSION_CHAIN_ENDPOINT",
    help: "subtensor WebSocket endpoint (ws:// or wss://)",
  },
  netuid: { env: "COVENANT_ADMISSION_NETUID", help: "the run's subnet" },
  run: { env: "COVENANT_ADMISSION_RUN", help: "the run id (its NATS account is covenant-<run>)" },
  "issuer-seed-file": {
    env: "COVENANT_ADMISSION_ISSUER_SEED_FILE",
    help: "file with the issuer account nkey seed (SA...), whose public key is auth_callout.issuer",
  },
  ttl: {
    env: "COVENANT_ADMISSION_TTL",
    default: "5m",
    help: "lifetime of an admission: a deregistered hotkey is disconnected within this long",
  },
  "chain-timeout": {
    env: "COVENANT_ADMISSION_CHAIN_TIMEOUT",
    default: "3s",
    help: "deadline of one chain query (keep under the server's authorization timeout)",
  },
  validators: {
    env: "COVENANT_ADMISSION_VALIDATORS",
    default: "",
    help: "hotkeys (comma-separated) admitted as validators without a validator permit",
  },
  "http-address": {
    env: "COVENANT_ADMISSION_HTTP_ADDRESS",
    default: ":8080",
    help: 'address of /metrics, /healthz, /readyz ("" disables)',
  },
  "log-level": {
    env: "COVENANT_LOG_LEVEL",
    default: "info",
    help: "JSON log level: debug, info, warn, error",
  },
};

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, f]) =>
      `  --${name.padEnd(18)} ${f.help} [env ${f.env}${f.default === undefined ? ", required" : `, default "${f.default}"`}]`,
  );
  return `Usage: covenant-admission [flags]\n\n${lines.join("\n")}\n  --help               print this help\n`;
}

export function parseAdmissionConfig(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): AdmissionConfig {
  const raw = new Map<string, string | undefined>();
  for (const [name, f] of Object.entries(FLAGS)) raw.set(name, env[f.env] ?? f.default);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument "${arg}": flags start with --`);
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!FLAGS[name]) throw new ConfigError(`unknown flag --${name} (see --help)`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`flag --${name} needs a value`);
    raw.set(name, value);
  }
  const need = (name: string): string => {
    const v = raw.get(name)?.trim();
    if (!v) throw new ConfigError(`--${name} is required (or env ${FLAGS[name]!.env})`);
    return v;
  };
  const list = (v: string | undefined) =>
    (v ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);

  const natsServers = list(need("nats-url"));
  for (const s of natsServers)
    if (!/^(nats|tls|wss?):\/\/[^\s/]+\/?$/.test(s) && !/^[^\s:/]+:\d+$/.test(s))
      throw new ConfigError(`--nats-url ${JSON.stringify(s)}: expected nats://host:port or tls://host:port`);
  const chainEndpoint = need("chain-endpoint");
  try {
    validateEndpoint(chainEndpoint);
  } catch (e) {
    throw new ConfigError(`--chain-endpoint: ${(e as Error).message}`);
  }
  const netuidText = need("netuid");
  const netuid = Number(netuidText);
  if (!/^\d+$/.test(netuidText) || netuid > 65535)
    throw new ConfigError(`--netuid ${netuidText}: expected 0..65535`);
  const run = need("run");
  try {
    checkRunId(run);
  } catch (e) {
    throw new ConfigError(`--run: ${(e as Error).message}`);
  }
  const ttlMs = parseDuration(need("ttl"), "--ttl");
  if (ttlMs < 1000 || ttlMs % 1000 !== 0)
    throw new ConfigError(
      `--ttl ${raw.get("ttl")}: a whole number of seconds, at least 1s (JWT expiry is in seconds)`,
    );
  const chainTimeoutMs = parseDuration(need("chain-timeout"), "--chain-timeout");
  if (chainTimeoutMs < 1) throw new ConfigError("--chain-timeout must be positive");
  const validators = list(raw.get("validators"));
  for (const v of validators)
    if (!canonicalHotkey(v))
      throw new ConfigError(`--validators: ${JSON.stringify(v)} is not an SS58 hotkey (prefix 42)`);
  const httpAddress = raw.get("http-address")?.trim() ?? "";
  if (httpAddress !== "" && !/^(\[[^\]]+\]|[^:]*):\d+$/.test(httpAddress))
    throw new ConfigError(`invalid --http-address "${httpAddress}": expected host:port or :port`);
  let logLevel: LogLevel;
  try {
    logLevel = parseLogLevel(raw.get("log-level"));
  } catch (e) {
    throw new ConfigError(`--log-level: ${(e as Error).message}`);
  }
  return {
    natsServers,
    natsCreds: need("nats-creds"),
    natsCa: raw.get("nats-ca")?.trim() || undefined,
    chainEndpoint,
    netuid,
    run,
    issuerSeedFile: need("issuer-seed-file"),
    ttlSeconds: ttlMs / 1000,
    chainTimeoutMs,
    validators,
    httpAddress,
    logLevel,
  };
}
