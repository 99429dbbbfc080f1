/** A bare JSON-RPC-over-WebSocket client for tests that need to send exactly the bytes they choose. */
import WebSocket from "ws";

export interface RawReply {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: string };
}

export class RawRpc {
  private nextId = 1;
  private constructor(private readonly ws: WebSocket) {}

  static async connect(url: string): Promise<RawRpc> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new RawRpc(ws);
  }

  /** Sends raw text and resolves with the next message that is not a subscription notification. */
  sendText(text: string): Promise<RawReply | RawReply[]> {
    return new Promise((resolve) => {
      const onMessage = (data: WebSocket.RawData) => {
        const msg = JSON.parse(data.toString()) as RawReply | RawReply[];
        if (!Array.isArray(msg) && (msg as { method?: string }).method) return;
        this.ws.off("message", onMessage);
        resolve(msg);
      };
      this.ws.on("message", onMessage);
      this.ws.send(text);
    });
  }

  async call(method: string, params: unknown[] = []): Promise<RawReply> {
    const id = this.nextId++;
    return (await this.sendText(JSON.stringify({ jsonrpc: "2.0", id, method, params }))) as RawReply;
  }

  /** Calls and returns the result, throwing on a JSON-RPC error. */
  async result<T>(method: string, params: unknown[] = []): Promise<T> {
    const r = await this.call(method, params);
    if (r.error) throw new Error(`${method}: ${r.error.code} ${r.error.message} ${r.error.data ?? ""}`);
    return r.result as T;
  }

  /** Sends without waiting for a reply. */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  onClose(fn: (code: number) => void): void {
    this.ws.once("close", (code) => fn(code));
  }

  close(): void {
    this.ws.close();
  }
}
