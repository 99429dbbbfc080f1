/**
 * Starts a local chain in this process: genesis, block production and the JSON-RPC server on
 * a loopback port. `stop()` closes the server and the block timer; `restart()` brings the
 * same chain back on the same port (for tests of clients that reconnect).
 */
import { Chain } from "./chain.ts";
import { buildGenesis, type GenesisOptions } from "./genesis.ts";
import { loadRuntime } from "./runtime.ts";
import { ChainServer } from "./server.ts";

export interface LocalChainOptions extends GenesisOptions {
  blockTimeMs?: number;
  host?: string;
  port?: number;
  /** Largest JSON-RPC message accepted, in bytes. */
  maxPayload?: number;
}

export interface LocalChain {
  readonly url: string;
  readonly chain: Chain;
  readonly server: ChainServer;
  /** Closes connections and stops making blocks; the state is kept. */
  pause(): Promise<void>;
  /** Serves the same chain again on the same port and resumes blocks. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalChain(o: LocalChainOptions): Promise<LocalChain> {
  const rt = loadRuntime();
  const genesis = await buildGenesis(o);
  const chain = new Chain(rt, { blockTimeMs: o.blockTimeMs ?? 250, genesis });
  let server = new ChainServer(chain, {
    host: o.host ?? "127.0.0.1",
    port: o.port ?? 0,
    maxPayload: o.maxPayload,
  });
  const url = await server.listen();
  const port = Number(new URL(url).port);
  chain.start();
  const handle: LocalChain = {
    url,
    chain,
    get server() {
      return server;
    },
    async pause() {
      chain.stop();
      await server.close();
    },
    async restart() {
      await server.close();
      server = new ChainServer(chain, { host: o.host ?? "127.0.0.1", port, maxPayload: o.maxPayload });
      await server.listen();
      chain.start();
    },
    async stop() {
      chain.stop();
      await server.close();
    },
  };
  return handle;
}
