// covenant-admission (admission/main.ts) as its own process, as the tests, the hub fixture
// and the admission benchmark start it: one place for its flags and its readiness wait.
import { join } from "node:path";
import { get } from "../stack/http.ts";
import { nodeTs, repoRoot } from "../stack/paths.ts";
import { freePort } from "../stack/ports.ts";
import { ManagedProcess } from "../stack/process.ts";
import { waitFor } from "../stack/wait.ts";

export interface AdmissionProcessOptions {
  run: string;
  /** The bus's client URL(s), comma-separated for a cluster. */
  natsUrl: string;
  /** The bus's CA file when its client port has TLS. */
  caFile?: string;
  /** The callout user's seed file. */
  calloutFile: string;
  /** The issuer account's seed file (signs the users it admits). */
  issuerFile: string;
  chainEndpoint: string;
  netuid: number;
  /** Lifetime of an admission, e.g. "300s" (the service's default when absent). */
  ttl?: string;
  /** Where its log goes (admission.log). */
  dir: string;
  /** How long to wait for /readyz (a loaded machine takes a while to start node and reach the chain). */
  readyTimeoutMs?: number;
}

export interface AdmissionService {
  proc: ManagedProcess;
  /** http://127.0.0.1:PORT of its /metrics, /healthz, /readyz. */
  url: string;
  metrics(): Promise<string>;
}

/** Starts the service and waits until /readyz says it is connected to bus and chain; stops it if it never is. */
export async function startAdmissionService(o: AdmissionProcessOptions): Promise<AdmissionService> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const [node, ...pre] = nodeTs(join(repoRoot, "admission/main.ts"));
  const proc = ManagedProcess.start({
    name: "covenant-admission",
    command: node!,
    args: [
      ...pre,
      `--nats-url=${o.natsUrl}`,
      ...(o.caFile ? [`--nats-ca=${o.caFile}`] : []),
      `--nats-creds=${o.calloutFile}`,
      `--chain-endpoint=${o.chainEndpoint}`,
      `--netuid=${o.netuid}`,
      `--run=${o.run}`,
      `--issuer-seed-file=${o.issuerFile}`,
      `--http-address=127.0.0.1:${port}`,
      ...(o.ttl ? [`--ttl=${o.ttl}`] : []),
    ],
    logFile: join(o.dir, "admission.log"),
  });
  try {
    await proc.untilReady(
      waitFor("admission /readyz", async () => (await get(`${url}/readyz`)).status === 200, {
        timeoutMs: o.readyTimeoutMs ?? 60_000,
      }),
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { proc, url, metrics: async () => (await get(`${url}/metrics`)).body };
}
