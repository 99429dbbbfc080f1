// A real Prometheus (Debian's package) on loopback, scraping targets the caller names.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { get } from "./http.ts";
import { systemBinary, tempDir } from "./paths.ts";
import { freePort } from "./ports.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

export interface ScrapeJob {
  job: string;
  /** host:port pairs. */
  targets: string[];
  metricsPath?: string;
}

export interface PrometheusOptions {
  /** host:port targets scraped under the job "test"; or whole jobs. */
  targets?: string[];
  jobs?: ScrapeJob[];
  scrapeIntervalSec?: number;
  /** Alerting/recording rule files to load. */
  ruleFiles?: string[];
  /** Also scrape the targets listed in this file_sd file (job "discovered"), re-read every second. */
  fileSd?: string;
}

export interface DiscoveredTarget {
  targets: string[];
  labels?: Record<string, string>;
}

/** Writes a file_sd target file atomically (Prometheus picks it up within a second). */
export function writeTargets(file: string, targets: DiscoveredTarget[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(targets));
  renameSync(tmp, file);
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** An instant query through the HTTP API. */
  query(promql: string): Promise<Sample[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: PrometheusOptions = {}): Promise<PrometheusServer> {
  const tmp = tempDir("prometheus");
  const port = await freePort();
  const interval = `${opts.scrapeIntervalSec ?? 1}s`;
  const jobs = [...(opts.jobs ?? []), ...(opts.targets ? [{ job: "test", targets: opts.targets }] : [])];
  const configFile = join(tmp.path, "prometheus.yml");
  writeFileSync(
    configFile,
    stringify({
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: [
        ...jobs.map((j) => ({
          job_name: j.job,
          metrics_path: j.metricsPath ?? "/metrics",
          static_configs: [{ targets: j.targets }],
        })),
        ...(opts.fileSd
          ? [{ job_name: "discovered", file_sd_configs: [{ files: [opts.fileSd], refresh_interval: "1s" }] }]
          : []),
      ],
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const proc = ManagedProcess.start({
    name: "prometheus",
    command: systemBinary("prometheus"),
    logFile: join(tmp.path, "prometheus.log"),
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(tmp.path, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-lifecycle",
      "--log.level=warn",
    ],
  });
  try {
    await proc.untilReady(
      waitFor("prometheus /-/ready", async () => (await get(`${url}/-/ready`)).status === 200, {
        timeoutMs: 60_000,
      }),
    );
  } catch (err) {
    tmp.remove();
    throw err;
  }
  return {
    url,
    async query(promql) {
      const res = await get(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = JSON.parse(res.body) as {
        status: string;
        error?: string;
        data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== "success") throw new Error(`query ${promql}: ${body.error ?? res.status}`);
      return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async stop() {
      await proc.stop();
      tmp.remove();
    },
  };
}
