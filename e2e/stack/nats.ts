// A real nats-server with JetStream (file storage) on loopback.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { get } from "./http.ts";
import { binary, tempDir } from "./paths.ts";
import { freePort } from "./ports.ts";
import { ManagedProcess } from "./process.ts";
import { waitFor } from "./wait.ts";

export interface NatsOptions {
  /** Extra server configuration appended to the generated file (accounts, authorization, limits). */
  extraConfig?: string;
  /** Largest message payload in bytes (default 8 MiB). */
  maxPayload?: number;
}

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT of the monitoring endpoint (/varz, /jsz, /healthz). */
  monitorUrl: string;
  storeDir: string;
  configFile: string;
  process(): ManagedProcess;
  /** Stops and starts the server again on the same ports and storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const tmp = tempDir("nats");
  const [port, monitorPort] = [await freePort(), await freePort()];
  const storeDir = join(tmp.path, "jetstream");
  const configFile = join(tmp.path, "nats.conf");
  writeFileSync(
    configFile,
    [
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      `server_name: "covenant-local"`,
      `max_payload: ${opts.maxPayload ?? 8 * 1024 * 1024}`,
      "jetstream {",
      `  store_dir: "${storeDir}"`,
      "  max_memory_store: 256MB",
      "  max_file_store: 16GB",
      "}",
      opts.extraConfig ?? "",
    ].join("\n"),
  );
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  let current: ManagedProcess;
  const launch = async () => {
    current = ManagedProcess.start({
      name: "nats-server",
      command: binary("nats-server"),
      args: ["-c", configFile],
      logFile: join(tmp.path, "nats-server.log"),
    });
    // /healthz (without js-enabled-only) answers 200 only once JetStream has recovered every stream.
    await current.untilReady(
      waitFor(
        "nats-server JetStream health",
        async () => (await get(`${monitorUrl}/healthz`)).status === 200,
        {
          timeoutMs: 60_000,
        },
      ),
    );
  };
  try {
    await launch();
  } catch (err) {
    tmp.remove();
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    storeDir,
    configFile,
    process: () => current,
    async restart() {
      await current.stop();
      await launch();
    },
    async stop() {
      await current.stop();
      tmp.remove();
    },
  };
}
