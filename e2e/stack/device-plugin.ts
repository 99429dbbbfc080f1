// A STAND-IN for a GPU device plugin (such as NVIDIA's): there are no GPUs on the test machines,
// so this advertises N fake `nvidia.com/gpu` devices to a real kubelet over the real device-plugin
// API (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1), and the kubelet, the scheduler and the pods
// account for them exactly as they would for real ones. Allocate hands a container the IDs of its
// devices in NVIDIA_VISIBLE_DEVICES (what NVIDIA's plugin sets) and nothing else: no device node,
// no driver, no CUDA. Named a stand-in wherever it appears (docs/testing.md, "Real nodes").
//
// The API is gRPC over a unix socket. gRPC is HTTP/2 with length-prefixed protobuf messages and a
// status in the trailers; the messages used here are a handful of strings, so node:http2 and the
// small protobuf codec below speak it without a gRPC library.
import { rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import {
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  connect as http2Connect,
  constants as h2,
  createServer,
} from "node:http2";

export interface DevicePluginOptions {
  /** The kubelet's device-plugin directory, holding its kubelet.sock (node.ts gives its own). */
  dir: string;
  /** Extended resource name; "nvidia.com/gpu" unless given. */
  resource?: string;
  /** How many devices to advertise. */
  count: number;
  /** The socket's file name in `dir`. */
  socketName?: string;
}

export interface DevicePluginStandIn {
  resource: string;
  /** The device IDs advertised: "gpu-0", "gpu-1", ... */
  devices: string[];
  /** Device IDs handed to containers so far, one entry per Allocate of one container. */
  allocations: string[][];
  /** Marks a device Unhealthy or Healthy again; the kubelet lowers or restores allocatable. */
  setHealthy(id: string, healthy: boolean): void;
  stop(): Promise<void>;
}

const API = "v1beta1";
const GRPC_OK = 0;
const GRPC_UNIMPLEMENTED = 12;

/**
 * Serves the device-plugin API on DIR/SOCKET and registers with the kubelet. (A kubelet that
 * restarts wipes its directory and waits for plugins to register again; the stack's nodes never
 * restart a kubelet, so the stand-in registers once.)
 */
export async function startDevicePlugin(opts: DevicePluginOptions): Promise<DevicePluginStandIn> {
  const resource = opts.resource ?? "nvidia.com/gpu";
  const socketName = opts.socketName ?? "covenant-gpu-stand-in.sock";
  const socket = join(opts.dir, socketName);
  const kubeletSocket = join(opts.dir, "kubelet.sock");
  const health = new Map<string, boolean>();
  for (let i = 0; i < opts.count; i++) health.set(`gpu-${i}`, true);
  const allocations: string[][] = [];
  const watchers = new Set<ServerHttp2Stream>();
  const sessions = new Set<ServerHttp2Session>();

  const listAndWatchResponse = () => message([...health].map(([id, ok]) => [1, device(id, ok)]));

  const handlers: Record<string, (request: Buffer, stream: ServerHttp2Stream) => Buffer | "stream"> = {
    GetDevicePluginOptions: () => message([]),
    ListAndWatch: (_request, stream) => {
      watchers.add(stream);
      stream.on("close", () => watchers.delete(stream));
      stream.write(frame(listAndWatchResponse()));
      return "stream";
    },
    // AllocateRequest { repeated ContainerAllocateRequest container_requests = 1 }, each
    // { repeated string devices_ids = 1 }; one response per container, in the same order.
    Allocate: (request) => {
      const containers = fields(request)
        .filter(([n]) => n === 1)
        .map(([, container]) => strings(container as Buffer, 1));
      allocations.push(...containers);
      return message(containers.map((ids) => [1, containerAllocateResponse(ids)]));
    },
    PreStartContainer: () => message([]),
  };

  const server: Http2Server = createServer();
  server.on("stream", (stream, headers) => dispatch(stream, headers, handlers));
  // Tracked so that stop() can drop them; a broken one is dropped at once.
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => session.destroy());
  });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, () => resolve());
  });
  // Like the stack's servers, a forgotten stand-in must not keep the test process alive.
  server.unref();
  try {
    await register(kubeletSocket, { version: API, endpoint: socketName, resource });
  } catch (err) {
    await closeServer(server, watchers, sessions);
    rmSync(socket, { force: true });
    throw err;
  }

  return {
    resource,
    devices: [...health.keys()],
    allocations,
    setHealthy(id, ok) {
      if (!health.has(id)) throw new Error(`device plugin stand-in: no device ${id}`);
      health.set(id, ok);
      for (const w of watchers) w.write(frame(listAndWatchResponse()));
    },
    async stop() {
      await closeServer(server, watchers, sessions);
      rmSync(socket, { force: true });
    },
  };
}

/** Routes one gRPC call: /v1beta1.DevicePlugin/METHOD with one request message. */
function dispatch(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  handlers: Record<string, (request: Buffer, stream: ServerHttp2Stream) => Buffer | "stream">,
): void {
  stream.on("error", () => stream.destroy());
  const method = /^\/v1beta1\.DevicePlugin\/(\w+)$/.exec(String(headers[h2.HTTP2_HEADER_PATH]))?.[1];
  const handler = method ? handlers[method] : undefined;
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => {
    stream.respond(
      { [h2.HTTP2_HEADER_STATUS]: 200, [h2.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc" },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () =>
      stream.sendTrailers({ "grpc-status": String(handler ? GRPC_OK : GRPC_UNIMPLEMENTED) }),
    );
    if (!handler) return void stream.end();
    const reply = handler(unframe(Buffer.concat(chunks))[0] ?? Buffer.alloc(0), stream);
    if (reply !== "stream") stream.end(frame(reply));
  });
}

/** Calls the kubelet's Registration/Register; throws with the kubelet's message if it refuses. */
async function register(
  kubeletSocket: string,
  req: { version: string; endpoint: string; resource: string },
): Promise<void> {
  const session: ClientHttp2Session = http2Connect("http://localhost", {
    createConnection: () => netConnect(kubeletSocket),
  });
  try {
    const status = await new Promise<{ code: string; message: string }>((resolve, reject) => {
      session.once("error", reject);
      const call = session.request({
        [h2.HTTP2_HEADER_METHOD]: "POST",
        [h2.HTTP2_HEADER_PATH]: "/v1beta1.Registration/Register",
        [h2.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        te: "trailers",
      });
      let code = "";
      let msg = "";
      const read = (h: IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) code = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) msg = decodeURIComponent(String(h["grpc-message"]));
      };
      call.on("response", read); // a call that fails at once puts its status here
      call.on("trailers", read);
      call.on("data", () => {});
      call.on("error", reject);
      call.on("close", () => resolve({ code, message: msg }));
      call.setTimeout(10_000, () => call.close(h2.NGHTTP2_CANCEL));
      call.end(
        frame(
          message([
            [1, req.version],
            [2, req.endpoint],
            [3, req.resource],
            [4, message([])],
          ]),
        ),
      );
    });
    if (status.code !== String(GRPC_OK)) {
      throw new Error(
        `kubelet refused the device plugin (grpc-status ${status.code || "none"}): ${status.message}`,
      );
    }
  } finally {
    session.close();
  }
}

/** Stops serving: ends the ListAndWatch streams and drops the kubelet's connections. */
async function closeServer(
  server: Http2Server,
  watchers: Set<ServerHttp2Stream>,
  sessions: Set<ServerHttp2Session>,
): Promise<void> {
  if (!server.listening) return;
  for (const w of watchers) w.close();
  watchers.clear();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // close() waits for open sessions; the kubelet reconnects when it wants to.
  for (const s of sessions) s.destroy();
  sessions.clear();
  await closed;
}

// ---- the messages, gRPC framing and the protobuf wire format, as far as they are needed -----

/** Device { string ID = 1; string health = 2 } */
function device(id: string, healthy: boolean): Buffer {
  return message([
    [1, id],
    [2, healthy ? "Healthy" : "Unhealthy"],
  ]);
}

/** ContainerAllocateResponse { map<string, string> envs = 1 }: a map entry is { key = 1; value = 2 }. */
function containerAllocateResponse(ids: string[]): Buffer {
  const env = message([
    [1, "NVIDIA_VISIBLE_DEVICES"],
    [2, ids.join(",")],
  ]);
  return message([[1, env]]);
}

/** A gRPC message on the wire: uncompressed flag, 4-byte big-endian length, the bytes. */
function frame(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function unframe(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 5 <= data.length; ) {
    const length = data.readUInt32BE(at + 1);
    out.push(data.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return out;
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

/** A message of length-delimited fields (strings and nested messages: all these messages use). */
function message(fieldsOf: [number, string | Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, value] of fieldsOf) {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    parts.push(varint(n * 8 + 2), varint(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

/** The fields of a message: length-delimited ones as bytes, varints as numbers, others skipped. */
function fields(msg: Buffer): [number, Buffer | number][] {
  const out: [number, Buffer | number][] = [];
  let at = 0;
  const readVarint = (): number => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const b = msg[at++];
      if (b === undefined) throw new Error("protobuf: truncated varint");
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
  };
  while (at < msg.length) {
    const key = readVarint();
    const n = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        out.push([n, readVarint()]);
        break;
      case 2: {
        const length = readVarint();
        out.push([n, msg.subarray(at, at + length)]);
        at += length;
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${key % 8}`);
    }
  }
  return out;
}

function strings(msg: Buffer, n: number): string[] {
  return fields(msg)
    .filter(([f, v]) => f === n && Buffer.isBuffer(v))
    .map(([, v]) => (v as Buffer).toString("utf8"));
}
