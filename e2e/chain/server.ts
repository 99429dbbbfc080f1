/**
 * The local chain's JSON-RPC 2.0 server over WebSocket: the subset of a subtensor node's
 * methods that clients use (connect, metadata, storage reads and subscriptions, heads,
 * runtime calls, fee queries, subtensor's own RPCs, extrinsic submission and status), under
 * the node's names and aliases and with its parameter forms, plus the test-only
 * `covenantTest_` namespace. rpc_methods lists them as a node does; e2e/chain/rpc-methods.test.ts
 * pins the list against the real node's sources. Malformed requests get the JSON-RPC error
 * codes (-32700, -32600, -32601, -32602) and never reach the chain.
 */
import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";
import { u8aToHex, hexToU8a, compactAddLength } from "@polkadot/util";
import { Chain, type Block } from "./chain.ts";
import { decodeExtrinsic, RpcError } from "./extrinsics.ts";
import type { DispatchInfo, Fee } from "./fees.ts";
import { neuronLite, neuronsLite } from "./neurons.ts";
import { bytesParam, hexParam, intParam, invalidParams, numParam, optHash, ss58Param } from "./params.ts";
import { cachedMetadataAt, METADATA_VERSIONS } from "./metadata-versions.ts";
import { priceExtrinsic, runtimeApiCall } from "./runtime-apis.ts";
import { SUBTENSOR_RPC, subtensorRpc } from "./subtensor-rpc.ts";
import { TEST_NAMESPACE, testHandlers } from "./testing.ts";

export interface ServerOptions {
  host?: string;
  port?: number;
  /** Largest accepted message in bytes. */
  maxPayload?: number;
  chainName?: string;
}

interface Conn {
  ws: WebSocket;
  subs: Map<string, () => void>;
}

type Handler = (params: unknown[], conn: Conn) => unknown;

/** Set COVENANT_CHAIN_TRACE=1 to print every request and reply (no secrets pass through here). */
const TRACE = process.env.COVENANT_CHAIN_TRACE === "1";
const PROPERTIES = { ss58Format: 42, tokenDecimals: 9, tokenSymbol: "TAO" };

export class ChainServer {
  private wss: WebSocketServer | undefined;
  private nextSub = 1;
  private readonly conns = new Set<Conn>();
  private readonly handlers: Record<string, Handler>;
  /** Requests answered with an error, by JSON-RPC code. */
  readonly errorCounts = new Map<number, number>();

  constructor(
    readonly chain: Chain,
    private readonly opts: ServerOptions = {},
  ) {
    this.handlers = this.buildHandlers();
  }

  async listen(): Promise<string> {
    const wss = new WebSocketServer({
      host: this.opts.host ?? "127.0.0.1",
      port: this.opts.port ?? 0,
      maxPayload: this.opts.maxPayload ?? 16 * 1024 * 1024,
    });
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    wss.on("connection", (ws) => {
      const conn: Conn = { ws, subs: new Map() };
      this.conns.add(conn);
      ws.on("message", (data, isBinary) => this.onMessage(conn, isBinary ? "" : data.toString()));
      ws.on("close", () => {
        for (const off of conn.subs.values()) off();
        this.conns.delete(conn);
      });
      ws.on("error", () => ws.terminate());
    });
    return this.url;
  }

  get url(): string {
    const a = this.wss?.address() as AddressInfo | undefined;
    if (!a) throw new Error("server is not listening");
    return `ws://${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const wss = this.wss;
    if (!wss) return;
    this.wss = undefined;
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  methods(): string[] {
    return Object.keys(this.handlers)
      .filter((m) => !m.startsWith(`${TEST_NAMESPACE}_`))
      .sort();
  }

  private onMessage(conn: Conn, text: string): void {
    if (TRACE) process.stderr.write(`chain <- ${text.slice(0, 300)}\n`);
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.send(conn, this.errorReply(null, new RpcError(-32700, "Parse error")));
      return;
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) {
        this.send(conn, this.errorReply(null, new RpcError(-32600, "Invalid request")));
        return;
      }
      const replies = msg.map((m) => this.handle(conn, m)).filter((r) => r !== undefined);
      if (replies.length) this.send(conn, replies);
      return;
    }
    const reply = this.handle(conn, msg);
    if (reply !== undefined) this.send(conn, reply);
  }

  private handle(conn: Conn, m: unknown): object | undefined {
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      return this.errorReply(null, new RpcError(-32600, "Invalid request"));
    }
    const req = m as Record<string, unknown>;
    const id = req.id;
    const validId =
      id === undefined ||
      id === null ||
      typeof id === "string" ||
      (typeof id === "number" && Number.isFinite(id));
    if (req.jsonrpc !== "2.0" || typeof req.method !== "string" || !validId) {
      return this.errorReply(validId ? (id ?? null) : null, new RpcError(-32600, "Invalid request"));
    }
    const params = req.params === undefined ? [] : req.params;
    const handler = Object.hasOwn(this.handlers, req.method) ? this.handlers[req.method] : undefined;
    if (!handler) return this.errorReply(id ?? null, new RpcError(-32601, "Method not found"));
    if (!Array.isArray(params)) return this.errorReply(id ?? null, invalidParams("params must be an array"));
    try {
      const result = handler(params, conn);
      return id === undefined
        ? undefined
        : { jsonrpc: "2.0", id, result: result === undefined ? null : result };
    } catch (e) {
      const err = e instanceof RpcError ? e : new RpcError(-32603, "Internal error", (e as Error).message);
      return this.errorReply(id ?? null, err);
    }
  }

  private errorReply(id: unknown, e: RpcError): object {
    this.errorCounts.set(e.code, (this.errorCounts.get(e.code) ?? 0) + 1);
    const error: Record<string, unknown> = { code: e.code, message: e.message };
    if (e.data !== undefined) error.data = e.data;
    return { jsonrpc: "2.0", id, error };
  }

  private send(conn: Conn, payload: unknown): void {
    if (TRACE) process.stderr.write(`chain -> ${JSON.stringify(payload).slice(0, 300)}\n`);
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify(payload));
  }

  private notify(conn: Conn, method: string, subscription: string, result: unknown): void {
    this.send(conn, { jsonrpc: "2.0", method, params: { subscription, result } });
  }

  private subscribe(conn: Conn, method: string, start: (emit: (r: unknown) => void) => () => void): string {
    const id = `sub-${this.nextSub++}`;
    const off = start((r) => this.notify(conn, method, id, r));
    conn.subs.set(id, off);
    return id;
  }

  private unsubscribe(conn: Conn, params: unknown[]): boolean {
    const id = params[0];
    if (typeof id !== "string") throw invalidParams("subscription id must be a string");
    const off = conn.subs.get(id);
    if (!off) return false;
    off();
    conn.subs.delete(id);
    return true;
  }

  private block(hash: unknown): Block {
    const h = optHash(hash);
    const b = this.chain.blockAt(h);
    if (!b) throw new RpcError(4003, "Client error", `Unknown block ${h}`);
    return b;
  }

  private storageAt(hash: unknown) {
    const b = this.block(hash);
    if (!b.storage || !b.state)
      throw new RpcError(4003, "Client error", `State already discarded for ${b.hash}`);
    return { block: b, storage: b.storage, state: b.state };
  }

  private onBlocks(emit: (b: Block) => void): () => void {
    this.chain.on("block", emit);
    return () => this.chain.off("block", emit);
  }

  private buildHandlers(): Record<string, Handler> {
    const chain = this.chain;
    const rt = chain.rt;
    const header = (b: Block) => {
      const j = b.header.toJSON() as Record<string, unknown>;
      return { ...j, number: "0x" + b.number.toString(16) };
    };
    const runtimeVersion: Handler = ([hash]) => {
      this.block(hash);
      return rt.version;
    };
    const unsub: Handler = (p, c) => this.unsubscribe(c, p);
    // chain_getHeader and chain_getBlock answer null for a block the node does not know.
    const known = (hash: unknown) => chain.blockAt(optHash(hash));
    const blockHash = (n: unknown) => {
      const num = intParam(n, "block number", 0, 2 ** 32 - 1);
      return chain.blockAt(num)?.hash ?? null;
    };
    const h: Record<string, Handler> = {
      // As a node lists them (sc-rpc-server): every method and alias, sorted, without a version.
      rpc_methods: () => ({ methods: this.methods() }),
      system_chain: () => this.opts.chainName ?? "Covenant Local Subtensor",
      system_name: () => "covenant-local-subtensor",
      system_version: () => "0.1.0",
      system_chainType: () => "Development",
      system_properties: () => PROPERTIES,
      system_health: () => ({ peers: 0, isSyncing: false, shouldHavePeers: false }),
      system_peers: () => [],
      system_nodeRoles: () => ["Authority"],
      system_syncState: () => ({
        startingBlock: 0,
        currentBlock: chain.best.number,
        highestBlock: chain.best.number,
      }),
      system_accountNextIndex: ([who]) => chain.view().nextNonce(ss58Param(who, "account")),
      // A number or 0x-hex block number, or a list of them (ListOrValue<NumberOrHex>).
      chain_getBlockHash: ([n]) => {
        if (n === undefined || n === null) return chain.best.hash;
        return Array.isArray(n) ? n.map(blockHash) : blockHash(n);
      },
      chain_getHeader: ([hash]) => {
        const b = known(hash);
        return b ? header(b) : null;
      },
      chain_getBlock: ([hash]) => {
        const b = known(hash);
        return b ? { block: { header: header(b), extrinsics: b.extrinsics }, justifications: null } : null;
      },
      chain_getFinalizedHead: () => chain.finalized.hash,
      state_getRuntimeVersion: runtimeVersion,
      state_subscribeRuntimeVersion: (_p, c) =>
        this.subscribe(c, "state_runtimeVersion", (emit) => {
          setImmediate(() => emit(rt.version));
          return () => undefined;
        }),
      state_unsubscribeRuntimeVersion: unsub,
      // A node answers with the runtime's default metadata, V14; V15/V16 come through state_call.
      state_getMetadata: ([hash]) => {
        this.block(hash);
        return u8aToHex(cachedMetadataAt(rt.metadataBytes, 14)!);
      },
      state_getStorage: ([key, hash]) => this.storageAt(hash).storage.get(bytesParam(key, "key")) ?? null,
      state_getStorageHash: ([key, hash]) => {
        const v = this.storageAt(hash).storage.get(bytesParam(key, "key"));
        return v === undefined ? null : u8aToHex(rt.registry.hash(hexToU8a(v)));
      },
      state_getStorageSize: ([key, hash]) => {
        const v = this.storageAt(hash).storage.get(bytesParam(key, "key"));
        return v === undefined ? null : (v.length - 2) / 2;
      },
      state_queryStorageAt: ([keys, hash]) => {
        if (!Array.isArray(keys)) throw invalidParams("keys must be an array of hex keys");
        const { block, storage } = this.storageAt(hash);
        const ks = keys.map((k, i) => bytesParam(k, `keys[${i}]`));
        return [{ block: block.hash, changes: ks.map((k) => [k, storage.get(k) ?? null]) }];
      },
      state_getKeysPaged: ([prefix, count, startKey, hash]) => {
        const p = prefix === null || prefix === undefined ? "0x" : bytesParam(prefix, "prefix");
        const n = numParam(count, "count", 1, 1000);
        const start = startKey === null || startKey === undefined ? "" : hexParam(startKey, "startKey");
        const { storage } = this.storageAt(hash);
        return [...storage.keys()]
          .filter((k) => k.startsWith(p) && k > start)
          .sort()
          .slice(0, n);
      },
      state_getKeys: ([prefix, hash]) => {
        const p = bytesParam(prefix, "prefix");
        return [...this.storageAt(hash).storage.keys()].filter((k) => k.startsWith(p)).sort();
      },
      state_subscribeStorage: ([keys], c) => {
        if (!Array.isArray(keys) || keys.length === 0)
          throw invalidParams("keys must be a non-empty array of hex keys");
        const ks = keys.map((k, i) => bytesParam(k, `keys[${i}]`));
        return this.subscribe(c, "state_storage", (emit) => {
          const last = new Map<string, string | null>();
          const send = (b: Block, all: boolean) => {
            const changes: [string, string | null][] = [];
            for (const k of ks) {
              const v = b.storage?.get(k) ?? null;
              if (all || last.get(k) !== v) changes.push([k, v]);
              last.set(k, v);
            }
            if (changes.length) emit({ block: b.hash, changes });
          };
          setImmediate(() => send(chain.best, true));
          return this.onBlocks((b) => send(b, false));
        });
      },
      state_unsubscribeStorage: unsub,
      state_call: ([method, data, hash]) => {
        if (typeof method !== "string") throw invalidParams("method must be a string");
        const input = hexToU8a(bytesParam(data ?? "0x", "data"));
        const { state } = this.storageAt(hash);
        return u8aToHex(this.runtimeCall(method, input, state, this.storageAt(hash).block.number));
      },
      chain_subscribeNewHeads: (_p, c) => this.subscribe(c, "chain_newHead", (emit) => this.headSub(emit)),
      chain_unsubscribeNewHeads: unsub,
      chain_subscribeAllHeads: (_p, c) => this.subscribe(c, "chain_allHead", (emit) => this.headSub(emit)),
      chain_unsubscribeAllHeads: unsub,
      chain_subscribeFinalizedHeads: (_p, c) =>
        this.subscribe(c, "chain_finalizedHead", (emit) => this.headSub(emit, true)),
      chain_unsubscribeFinalizedHeads: unsub,
      payment_queryInfo: ([ext, hash]) => {
        const { info, fee } = this.feeQuery(ext, hash, "Unable to query dispatch info.");
        return {
          weight: {
            ref_time: Number(info.totalWeight.refTime),
            proof_size: Number(info.totalWeight.proofSize),
          },
          class: info.class.toLowerCase(),
          partialFee: fee.partialFee.toString(),
        };
      },
      payment_queryFeeDetails: ([ext, hash]) => {
        const { fee } = this.feeQuery(ext, hash, "Unable to query fee details.");
        const f = fee.inclusionFee;
        return {
          inclusionFee: f
            ? {
                baseFee: Number(f.baseFee),
                lenFee: Number(f.lenFee),
                adjustedWeightFee: Number(f.adjustedWeightFee),
              }
            : null,
        };
      },
      author_submitExtrinsic: ([ext]) => chain.submit(ext).hash,
      author_pendingExtrinsics: () => chain.pending(),
      author_submitAndWatchExtrinsic: ([ext], c) => {
        const checked = chain.submit(ext);
        const id = this.subscribe(c, "author_extrinsicUpdate", (emit) => {
          let included: string | undefined;
          const onIncluded = (tx: string, blockHash: string) => {
            if (tx !== checked.hash) return;
            included = blockHash;
            emit({ inBlock: blockHash });
          };
          // Finality trails the best block by one, as with a finality gadget.
          const onBlock = (b: Block) => {
            if (!included || b.header.parentHash.toHex() !== included) return;
            emit({ finalized: included });
            stop();
          };
          const onDropped = (tx: string) => {
            if (tx !== checked.hash) return;
            emit("dropped");
            stop();
          };
          const stop = () => {
            chain.off("block", onBlock);
            chain.off("included", onIncluded);
            chain.off("dropped", onDropped);
          };
          setImmediate(() => emit("ready"));
          chain.on("included", onIncluded);
          chain.on("block", onBlock);
          chain.on("dropped", onDropped);
          return stop;
        });
        return id;
      },
      author_unwatchExtrinsic: unsub,
    };
    for (const [name, m] of Object.entries(SUBTENSOR_RPC)) {
      h[name] = (params) =>
        subtensorRpc(m, params, (api, input, hash) => {
          const { block, state } = this.storageAt(hash);
          return this.runtimeCall(api, input, state, block.number);
        });
    }
    // The aliases a node registers for the same methods (`aliases = [...]` of the RPC traits).
    for (const [alias, target] of Object.entries(ALIASES)) h[alias] = h[target]!;
    for (const [name, fn] of Object.entries(testHandlers)) {
      h[`${TEST_NAMESPACE}_${name}`] = (params) => fn(chain, params);
    }
    return h;
  }

  /** The fee of an extrinsic given as bytes, as payment_queryInfo computes it (length = all bytes given). */
  private feeQuery(ext: unknown, hash: unknown, what: string): { info: DispatchInfo; fee: Fee } {
    const bytes = bytesParam(ext, "extrinsic");
    this.storageAt(hash);
    let decoded;
    try {
      decoded = decodeExtrinsic(this.chain.rt, bytes);
    } catch (e) {
      throw new RpcError(2, what, e instanceof RpcError ? e.data : (e as Error).message);
    }
    try {
      return priceExtrinsic(this.chain.rt, decoded, (bytes.length - 2) / 2, "query_info");
    } catch (e) {
      throw new RpcError(1, what, e instanceof RpcError ? e.data : (e as Error).message);
    }
  }

  private headSub(emit: (r: unknown) => void, finalized = false): () => void {
    const header = (b: Block) => ({ ...(b.header.toJSON() as object), number: "0x" + b.number.toString(16) });
    const pick = (b: Block) => (finalized ? (this.chain.blockAt(b.number - 1) ?? b) : b);
    setImmediate(() => emit(header(finalized ? this.chain.finalized : this.chain.best)));
    return this.onBlocks((b) => emit(header(pick(b))));
  }

  private runtimeCall(
    method: string,
    input: Uint8Array,
    state: Block["state"] & object,
    block: number,
  ): Uint8Array {
    const rt = this.chain.rt;
    const u16 = (bytes: Uint8Array, at: number) => {
      if (bytes.length < at + 2)
        throw new RpcError(4003, "Client error", `Execution failed: Could not decode input of ${method}`);
      return bytes[at]! | (bytes[at + 1]! << 8);
    };
    switch (method) {
      case "Core_version":
        return rt.registry.createType("RuntimeVersion", rt.version).toU8a();
      case "Metadata_metadata_versions":
        return rt.registry.createType("Vec<u32>", [...METADATA_VERSIONS]).toU8a();
      case "Metadata_metadata_at_version": {
        if (input.length !== 4)
          throw new RpcError(
            4003,
            "Client error",
            "Execution failed: Could not decode input of Metadata_metadata_at_version",
          );
        const v = input[0]! | (input[1]! << 8) | (input[2]! << 16) | (input[3]! << 24);
        const md = cachedMetadataAt(rt.metadataBytes, v);
        return md ? new Uint8Array([1, ...compactAddLength(md)]) : new Uint8Array([0]);
      }
      case "Metadata_metadata":
        return compactAddLength(cachedMetadataAt(rt.metadataBytes, 14)!);
      case "AccountNonceApi_account_nonce": {
        if (input.length !== 32)
          throw new RpcError(
            4003,
            "Client error",
            "Execution failed: Could not decode input of AccountNonceApi_account_nonce",
          );
        const who = u8aToHex(input);
        return rt.registry.createType("u32", state.accounts.get(who)?.nonce ?? 0).toU8a();
      }
      case "NeuronInfoRuntimeApi_get_neurons_lite":
        if (input.length !== 2)
          throw new RpcError(4003, "Client error", `Execution failed: Could not decode input of ${method}`);
        return neuronsLite(rt, state, u16(input, 0));
      case "NeuronInfoRuntimeApi_get_neuron_lite":
        if (input.length !== 4)
          throw new RpcError(4003, "Client error", `Execution failed: Could not decode input of ${method}`);
        return neuronLite(rt, state, u16(input, 0), u16(input, 2));
      default: {
        const out = runtimeApiCall(rt, state, method, input, BigInt(block));
        if (out) return out;
        throw new RpcError(4003, "Client error", `Execution failed: Exported method ${method} is not found`);
      }
    }
  }
}

/**
 * Alias to method, as the node's RPC traits declare them: chain and state in
 * paritytech/polkadot-sdk substrate/client/rpc-api/src/{chain,state}/mod.rs, account_nextIndex
 * in substrate/utils/frame/rpc/system/src/lib.rs.
 */
export const ALIASES: Record<string, string> = {
  chain_getHead: "chain_getBlockHash",
  chain_getFinalisedHead: "chain_getFinalizedHead",
  subscribe_newHead: "chain_subscribeNewHeads",
  chain_subscribeNewHead: "chain_subscribeNewHeads",
  unsubscribe_newHead: "chain_unsubscribeNewHeads",
  chain_unsubscribeNewHead: "chain_unsubscribeNewHeads",
  chain_subscribeFinalisedHeads: "chain_subscribeFinalizedHeads",
  chain_unsubscribeFinalisedHeads: "chain_unsubscribeFinalizedHeads",
  state_callAt: "state_call",
  state_getKeysPagedAt: "state_getKeysPaged",
  state_getStorageAt: "state_getStorage",
  state_getStorageHashAt: "state_getStorageHash",
  state_getStorageSizeAt: "state_getStorageSize",
  chain_getRuntimeVersion: "state_getRuntimeVersion",
  chain_subscribeRuntimeVersion: "state_subscribeRuntimeVersion",
  chain_unsubscribeRuntimeVersion: "state_unsubscribeRuntimeVersion",
  account_nextIndex: "system_accountNextIndex",
};

export { Chain };
