/**
 * Configuration of `covenant-operator` from flags and environment (flags win). Pure: the
 * entry point passes process.argv and process.env; every bad value is a clear error.
 */
import { LOG_LEVELS, parseLogLevel, type LogLevel } from "../protocol/log.ts";
import { DEFAULT_RATE_LIMIT } from "./kube/ratelimit.ts";
import { ConfigError, parseDuration } from "../protocol/cli.ts";

export interface OperatorConfig {
  /** Path of a kubeconfig; undefined: in-cluster when running in a pod, else the default kubeconfig. */
  kubeconfig: string | undefined;
  /** Namespace to watch; undefined watches all namespaces. */
  namespace: string | undefined;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** `host:port` serving /metrics, /healthz and /readyz; "" disables it. */
  httpAddress: string;
  logLevel: LogLevel;
  /** Identity in the Lease; default the pod (host) name plus a random suffix. */
  identity: string | undefined;
  gpuResource: string;
  nodeNotReadyGraceMs: number;
  /** File holding the operator's NATS user nkey seed; undefined: run progress is not followed. */
  natsCreds: string | undefined;
  /** Follow each run's chain (registration, stake, weights) into peer and run status. */
  chain: boolean;
  /** Keep each run's membership on the bus (needs natsCreds); one operator per run. */
  membership: boolean;
  /** CA bundle to verify tls:// NATS servers with; undefined: the system's roots. */
  natsCa: string | undefined;
  /** Create and delete each run's stream and buckets (the run organiser's operator; needs natsCreds). */
  provisionBus: boolean;
  /** Copies of every stream and bucket this operator provisions (3 on the 3-server hub). */
  busReplicas: number;
  /** How long buckets of hotkeys gone from a run are kept; 0: the run's payload retention. */
  busDepartedGraceMs: number;
  /** Client-side rate limit of Kubernetes API requests (watches excepted); 0 disables. */
  kubeApiQps: number;
  /** Requests that may go out at once above kubeApiQps. */
  kubeApiBurst: number;
}

interface FlagSpec {
  key: keyof OperatorConfig;
  env: string;
  help: string;
  kind: "string" | "bool" | "duration" | "level" | "number";
  default: string;
}

export const FLAGS: Record<string, FlagSpec> = {
  kubeconfig: {
    key: "kubeconfig",
    env: "KUBECONFIG",
    kind: "string",
    default: "",
    help: "kubeconfig path (default: in-cluster, else ~/.kube/config)",
  },
  namespace: {
    key: "namespace",
    env: "COVENANT_WATCH_NAMESPACE",
    kind: "string",
    default: "",
    help: "namespace to watch (default: all)",
  },
  "leader-elect": {
    key: "leaderElect",
    env: "COVENANT_LEADER_ELECT",
    kind: "bool",
    default: "true",
    help: "elect a leader on a Lease before reconciling",
  },
  "leader-election-namespace": {
    key: "leaderElectionNamespace",
    env: "POD_NAMESPACE",
    kind: "string",
    default: "covenant-system",
    help: "namespace of the Lease",
  },
  "leader-election-id": {
    key: "leaderElectionId",
    env: "COVENANT_LEADER_ELECTION_ID",
    kind: "string",
    default: "covenant-operator",
    help: "name of the Lease",
  },
  "lease-duration": {
    key: "leaseDurationMs",
    env: "COVENANT_LEASE_DURATION",
    kind: "duration",
    default: "15s",
    help: "how long a lease is valid",
  },
  "renew-deadline": {
    key: "renewDeadlineMs",
    env: "COVENANT_RENEW_DEADLINE",
    kind: "duration",
    default: "10s",
    help: "leader gives up when it cannot renew for this long",
  },
  "retry-period": {
    key: "retryPeriodMs",
    env: "COVENANT_RETRY_PERIOD",
    kind: "duration",
    default: "2s",
    help: "interval between lease attempts",
  },
  "http-address": {
    key: "httpAddress",
    env: "COVENANT_HTTP_ADDRESS",
    kind: "string",
    default: ":8080",
    help: 'address of /metrics, /healthz, /readyz ("" disables)',
  },
  "log-level": {
    key: "logLevel",
    env: "COVENANT_LOG_LEVEL",
    kind: "level",
    default: "info",
    help: `JSON log level: ${LOG_LEVELS.join(", ")}`,
  },
  identity: {
    key: "identity",
    env: "POD_NAME",
    kind: "string",
    default: "",
    help: "leader-election identity (default: host name + random suffix)",
  },
  "gpu-resource": {
    key: "gpuResource",
    env: "COVENANT_GPU_RESOURCE",
    kind: "string",
    default: "nvidia.com/gpu",
    help: "extended resource of one GPU",
  },
  "node-not-ready-grace": {
    key: "nodeNotReadyGraceMs",
    env: "COVENANT_NODE_NOT_READY_GRACE",
    kind: "duration",
    default: "60s",
    help: "replace a worker whose node is NotReady this long",
  },
  "nats-creds": {
    key: "natsCreds",
    env: "COVENANT_NATS_CREDS",
    kind: "string",
    default: "",
    help: "file with the operator's NATS nkey seed; enables run progress (round, membership) from the bus",
  },
  "nats-ca": {
    key: "natsCa",
    env: "COVENANT_NATS_CA",
    kind: "string",
    default: "",
    help: "CA bundle (PEM) to verify tls:// NATS servers with",
  },
  "provision-bus": {
    key: "provisionBus",
    env: "COVENANT_PROVISION_BUS",
    kind: "bool",
    default: "false",
    help: "create each run's stream and buckets and delete them with the run (the run organiser's operator; needs --nats-creds)",
  },
  "bus-replicas": {
    key: "busReplicas",
    env: "COVENANT_BUS_REPLICAS",
    kind: "number",
    default: "1",
    help: "copies of every stream and bucket --provision-bus creates, 1..5 (3 on a 3-server hub)",
  },
  "bus-departed-grace": {
    key: "busDepartedGraceMs",
    env: "COVENANT_BUS_DEPARTED_GRACE",
    kind: "duration",
    default: "0",
    help: "keep buckets of hotkeys gone from the subnet this long (0: the run's payload retention)",
  },
  chain: {
    key: "chain",
    env: "COVENANT_CHAIN",
    kind: "bool",
    default: "true",
    help: "follow each run's subtensor chain (spec.chain) into peer and run status",
  },
  membership: {
    key: "membership",
    env: "COVENANT_MEMBERSHIP",
    kind: "bool",
    default: "true",
    help: "keep each run's membership (active peers, shard assignment) on the bus; one operator per run",
  },
  "kube-api-qps": {
    key: "kubeApiQps",
    env: "COVENANT_KUBE_API_QPS",
    kind: "number",
    default: String(DEFAULT_RATE_LIMIT.qps),
    help: "client-side limit of Kubernetes API requests per second, watches excepted (0: no limit)",
  },
  "kube-api-burst": {
    key: "kubeApiBurst",
    env: "COVENANT_KUBE_API_BURST",
    kind: "number",
    default: String(DEFAULT_RATE_LIMIT.burst),
    help: "Kubernetes API requests allowed at once above --kube-api-qps",
  },
};

export { ConfigError, parseDuration };

function parseBool(value: string, what: string): boolean {
  const v = value.trim().toLowerCase();
  if (["true", "1", "yes"].includes(v)) return true;
  if (["false", "0", "no"].includes(v)) return false;
  throw new ConfigError(`invalid ${what} "${value}": expected true or false`);
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, f]) => `  --${name.padEnd(27)} ${f.help} [env ${f.env}, default "${f.default}"]`,
  );
  return `Usage: covenant-operator [flags]\n\n${lines.join("\n")}\n  --help                        print this help\n`;
}

/** Parses flags (`--name=value`, `--name value`, `--bool`, `--no-bool`) over environment variables. */
export function parseConfig(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): OperatorConfig {
  const raw = new Map<string, string>();
  for (const [name, f] of Object.entries(FLAGS)) {
    const fromEnv = env[f.env];
    raw.set(name, fromEnv !== undefined ? fromEnv : f.default);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument "${arg}": flags start with --`);
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined && name.startsWith("no-") && FLAGS[name.slice(3)]?.kind === "bool") {
      name = name.slice(3);
      value = "false";
    }
    const spec = FLAGS[name];
    if (!spec) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (value === undefined) {
      if (spec.kind === "bool") value = "true";
      else {
        value = argv[++i];
        if (value === undefined) throw new ConfigError(`flag --${name} needs a value`);
      }
    }
    raw.set(name, value);
  }
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(FLAGS)) {
    const v = raw.get(name) as string;
    const what = `--${name}`;
    if (f.kind === "bool") out[f.key] = parseBool(v, what);
    else if (f.kind === "duration") out[f.key] = parseDuration(v, what);
    else if (f.kind === "level") {
      try {
        out[f.key] = parseLogLevel(v);
      } catch (e) {
        throw new ConfigError(`${what}: ${(e as Error).message}`);
      }
    } else if (f.kind === "number") {
      const n = v.trim() === "" ? NaN : Number(v);
      if (!Number.isFinite(n)) throw new ConfigError(`invalid ${what} "${v}": expected a number`);
      out[f.key] = n;
    } else out[f.key] = v;
  }
  const c = out as unknown as OperatorConfig;
  c.kubeconfig = c.kubeconfig || undefined;
  c.namespace = c.namespace || undefined;
  c.identity = c.identity || undefined;
  c.natsCreds = c.natsCreds || undefined;
  c.natsCa = c.natsCa || undefined;
  if (c.provisionBus && !c.natsCreds)
    throw new ConfigError("--provision-bus needs --nats-creds (the operator's user of the runs' accounts)");
  if (!(Number.isInteger(c.busReplicas) && c.busReplicas >= 1 && c.busReplicas <= 5))
    throw new ConfigError(`--bus-replicas ${c.busReplicas}: must be a whole number from 1 to 5`);
  if (c.namespace?.includes(",")) {
    throw new ConfigError(
      `--namespace "${c.namespace}": one namespace or all (empty); lists are not supported yet`,
    );
  }
  if (c.leaderElect && !(c.retryPeriodMs < c.renewDeadlineMs && c.renewDeadlineMs < c.leaseDurationMs)) {
    throw new ConfigError("leader election needs --retry-period < --renew-deadline < --lease-duration");
  }
  if (c.kubeApiQps < 0) throw new ConfigError(`--kube-api-qps ${c.kubeApiQps}: must be >= 0 (0: no limit)`);
  if (!(Number.isInteger(c.kubeApiBurst) && c.kubeApiBurst >= 1)) {
    throw new ConfigError(`--kube-api-burst ${c.kubeApiBurst}: must be a whole number >= 1`);
  }
  if (c.httpAddress !== "" && !/^(\[[^\]]+\]|[^:]*):\d+$/.test(c.httpAddress)) {
    throw new ConfigError(`invalid --http-address "${c.httpAddress}": expected host:port or :port`);
  }
  return c;
}
