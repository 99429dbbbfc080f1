// Runs covenant-operator as a child process (the real entry point) under a given kubeconfig.
import { join } from "node:path";
import { repoRoot } from "../stack/paths.ts";
import { freePort } from "../stack/ports.ts";
import { ManagedProcess } from "../stack/process.ts";
import { get } from "../stack/http.ts";
import { waitFor } from "../stack/wait.ts";

export interface OperatorProcess {
  process: ManagedProcess;
  url: string;
  identity: string;
}

export async function startOperator(opts: {
  kubeconfigPath: string;
  dir: string;
  identity: string;
  args?: string[];
  /** Wait until /readyz answers 200 (a leader with synced caches); default true. */
  waitReady?: boolean;
}): Promise<OperatorProcess> {
  const port = await freePort();
  const proc = ManagedProcess.start({
    name: `covenant-operator ${opts.identity}`,
    command: process.execPath,
    args: [
      "--import",
      "tsx",
      join(repoRoot, "operator/main.ts"),
      `--kubeconfig=${opts.kubeconfigPath}`,
      `--http-address=127.0.0.1:${port}`,
      "--leader-election-namespace=covenant-system",
      `--identity=${opts.identity}`,
      "--log-level=debug",
      ...(opts.args ?? []),
    ],
    logFile: join(opts.dir, `operator-${opts.identity}.log`),
    cwd: repoRoot,
  });
  const url = `http://127.0.0.1:${port}`;
  await proc.untilReady(
    waitFor(
      `operator ${opts.identity} ${opts.waitReady === false ? "/healthz" : "/readyz"}`,
      async () => (await get(`${url}${opts.waitReady === false ? "/healthz" : "/readyz"}`)).status === 200,
      { timeoutMs: 60_000, intervalMs: 200 },
    ),
  );
  return { process: proc, url, identity: opts.identity };
}
