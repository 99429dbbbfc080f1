// The cost of one round, per peer and for the bus, as pure functions of the run's settings.
//
// Why a closed-form model beside the simulator: it answers "what must be true" questions
// (what bandwidth gives 95% utilisation at 72B) by algebra, and the simulator is checked
// against it in the degenerate case (one region, no stragglers, no churn).
//
// Units: bytes, seconds, bytes per second. Nothing here reads a file; the figures and where
// each comes from (measured, with its source, or assumed) are in scale/inputs.json.
import type { ModelShape } from "../api/presets.ts";
import { parameterCount } from "../api/presets.ts";
import { llamaTensors, payloadBytes } from "../operator/bus/runspec.ts";

/**
 * What a peer sends per round.
 * - sparse-f1 / sparse-f2: SparseLoCo top-k with 2-bit values, 12-bit or Elias-Fano indices
 *   (docs/wire-format.md); exact lengths from the project's own layout;
 * - dense-fp32 / dense-bf16: the whole pseudo-gradient, as a dense baseline under the same
 *   gather rule (G selected payloads);
 * - diloco: DiLoCo's exchange, every peer's dense fp32 pseudo-gradient averaged (G = N: no
 *   selection, every peer needs every other peer's delta or an all-reduce of it).
 */
export type PayloadFormat = "sparse-f1" | "sparse-f2" | "dense-fp32" | "dense-bf16" | "diloco";
export const PAYLOAD_FORMATS: readonly PayloadFormat[] = [
  "sparse-f1",
  "sparse-f2",
  "dense-fp32",
  "dense-bf16",
  "diloco",
];

/** (a): every peer fetches the G selected payloads; (b): one aggregator publishes the aggregate. */
export type GatherDesign = "a" | "b";

export interface Compression {
  topK: number;
  /** Elements per chunk (64 x 64 tiles). */
  chunk: number;
}

export const REAL_RUN_COMPRESSION: Compression = { topK: 64, chunk: 4096 };

/** Exact payload length of a LLaMA shape in a format (sparse: the wire layout with short names). */
export function payloadBytesOfShape(
  shape: ModelShape,
  format: PayloadFormat,
  c = REAL_RUN_COMPRESSION,
): number {
  const p = parameterCount(shape);
  switch (format) {
    case "sparse-f1":
    case "sparse-f2":
      if (c.chunk !== 4096) throw new Error("exact sparse sizes follow the wire layout (64 x 64 tiles)");
      return payloadBytes(llamaTensors(shape), {
        topK: c.topK,
        valueBits: 2,
        wireFormat: format === "sparse-f1" ? 1 : 2,
      });
    default:
      return payloadBytesOfParams(p, format, c);
  }
}

/** Bits per kept value of a sparse format at chunk u and k (index bits + 2 value bits). */
export function bitsPerKept(format: "sparse-f1" | "sparse-f2", c = REAL_RUN_COMPRESSION): number {
  if (format === "sparse-f1") return 12 + 2;
  // Elias-Fano: l low bits + about 2 upper bits per index (docs/wire-format.md), rounded per chunk.
  const l = Math.floor(Math.log2(Math.floor(c.chunk / c.topK)));
  const indexBits = Math.ceil((c.topK * l + c.topK + ((c.chunk - 1) >> l) + 1) / 8) * 8;
  return indexBits / c.topK + 2;
}

/**
 * Payload length from a parameter count alone (every tensor chunked at `chunk`, headers
 * ignored): the hand-checkable form. Within 0.1% of the exact length at 72B.
 */
export function payloadBytesOfParams(
  params: number,
  format: PayloadFormat,
  c = REAL_RUN_COMPRESSION,
): number {
  switch (format) {
    case "sparse-f1":
    case "sparse-f2":
      return ((params / c.chunk) * c.topK * bitsPerKept(format, c)) / 8;
    case "dense-fp32":
    case "diloco":
      return 4 * params;
    case "dense-bf16":
      return 2 * params;
  }
}

/**
 * Density of the union of G top-k index sets. Peers' kept sets overlap more than chance (same
 * model, similar data), so independence is the upper bound; `overlap` in [0, 1) shrinks the
 * number of independent draws to 1 + (G - 1)(1 - overlap). Not measured yet: assumed 0.
 */
export function unionDensity(g: number, density: number, overlap = 0): number {
  const draws = 1 + (g - 1) * (1 - overlap);
  return 1 - Math.pow(1 - density, draws);
}

/**
 * Bytes of the aggregate of G sparse payloads, as design (b) publishes it: a bitmap of the
 * union's coordinates (1 bit per parameter: at ~27% density a bitmap is within 20% of the
 * entropy) plus `valueBits` per kept coordinate (16: bf16 means, as exact as the outer step
 * needs; 2: requantised, lossy and outside SparseLoCo's error feedback), never more than the
 * dense bf16 update it stands for.
 */
export function aggregateBytes(
  params: number,
  g: number,
  c = REAL_RUN_COMPRESSION,
  valueBits = 16,
  overlap = 0,
): number {
  const u = unionDensity(g, c.topK / c.chunk, overlap);
  return Math.min((params * (1 + valueBits * u)) / 8, 2 * params);
}

export interface GpuFigures {
  /** HBM bytes per second of one GPU. */
  hbmBytesPerSecond: number;
  /** GPUs of one peer sharing the work (FSDP shards). */
  gpusPerPeer: number;
  /** Fraction of the HBM floor the kernels reach. */
  efficiency: number;
}

/** Seconds to move `bytes` through a peer's GPUs' memory at the given efficiency. */
export function gpuSeconds(bytes: number, gpu: GpuFigures): number {
  return bytes / (gpu.hbmBytesPerSecond * gpu.gpusPerPeer * gpu.efficiency);
}

/**
 * Bytes the codec moves in GPU memory (the floor of kernels/BENCHMARKS.md): compress reads
 * delta and e, writes e and the payload; decode-aggregate reads G payloads and reads and
 * writes theta. Dense formats only cast delta into the payload.
 */
export function compressMemoryBytes(params: number, payload: number, format: PayloadFormat): number {
  return format.startsWith("sparse") ? 12 * params + payload : 4 * params + payload;
}
export function aggregateMemoryBytes(params: number, payload: number, g: number): number {
  return g * payload + 8 * params;
}

export interface RoundSettings {
  params: number;
  format: PayloadFormat;
  /** Payload bytes (exact from the shape where known; payloadBytesOfParams otherwise). */
  payload: number;
  peers: number;
  gather: number;
  innerSteps: number;
  stepSeconds: number;
  /** Per-peer WAN bandwidth, each direction. */
  upBytesPerSecond: number;
  downBytesPerSecond: number;
  /** One-way latency paid once per transfer stage (upload, download). */
  latencySeconds: number;
  /** Validator's time from the last upload to its selection (scoring is one round behind). */
  selectSeconds: number;
  /** GPU seconds to compress, and to decode-aggregate G payloads (or apply the aggregate). */
  gpu: GpuFigures;
  design: GatherDesign;
  /** Bus: copies of every object (R3), the bus's own egress and ingress capacity (Infinity: unbounded). */
  replicas: number;
  busEgressBytesPerSecond: number;
  busIngressBytesPerSecond: number;
  /** Design (b): the aggregator's WAN bandwidth each way, and its aggregate's value bits. */
  aggregatorBytesPerSecond: number;
  aggregateValueBits: number;
  indexOverlap: number;
  /** Regions, peers spread evenly; payloads mirrored once into every region (docs/bus-regions.md). */
  regions: number;
}

export interface RoundCost {
  /** Per peer, per round. */
  uploadBytes: number;
  downloadBytes: number;
  /** Aggregate bytes (design b; 0 in a). */
  aggregate: number;
  /** Bus: bytes it holds for one round (every copy), takes in from clients, sends to clients. */
  busStoredBytes: number;
  busInBytes: number;
  busOutBytes: number;
  /** Bytes between servers of a cluster (replication) and between regions (mirrors). */
  busReplicationBytes: number;
  crossRegionBytes: number;
  compressSeconds: number;
  aggregateSeconds: number;
  computeSeconds: number;
  uploadSeconds: number;
  downloadSeconds: number;
  /** Design (b): the aggregator's stage between selection and the aggregate's publication. */
  aggregatorSeconds: number;
  roundSeconds: number;
  utilisation: number;
}

/**
 * One round with no overlap of communication and compute (as the real run: train, compress,
 * upload, wait for the selection, gather, aggregate). Every peer is alike, so the round time
 * is one peer's critical path.
 */
export function roundCost(s: RoundSettings): RoundCost {
  const g = s.format === "diloco" ? s.peers : s.gather;
  const compressSeconds = gpuSeconds(compressMemoryBytes(s.params, s.payload, s.format), s.gpu);
  const computeSeconds = s.innerSteps * s.stepSeconds;
  // Uploads share the bus's ingress; each copy beyond the first is a write between servers.
  const uploadSeconds =
    Math.max(s.payload / s.upBytesPerSecond, (s.peers * s.payload) / s.busIngressBytesPerSecond) +
    s.latencySeconds;
  const busReplicationBytes = s.peers * s.payload * (s.replicas - 1);
  // Every payload crosses into each other region once; the aggregate likewise in (b).
  let crossRegionBytes = s.peers * s.payload * (s.regions - 1);
  let downloadBytes: number;
  let aggregate = 0;
  let aggregatorSeconds = 0;
  let aggregateSeconds: number;
  let busOutBytes: number;
  let busStoredBytes = s.peers * s.payload * s.replicas;
  if (s.design === "a" || !s.format.startsWith("sparse")) {
    downloadBytes = g * s.payload;
    busOutBytes = s.peers * downloadBytes;
    aggregateSeconds = gpuSeconds(aggregateMemoryBytes(s.params, s.payload, g), s.gpu);
  } else {
    aggregate = aggregateBytes(
      s.params,
      g,
      { topK: REAL_RUN_COMPRESSION.topK, chunk: REAL_RUN_COMPRESSION.chunk },
      s.aggregateValueBits,
      s.indexOverlap,
    );
    downloadBytes = aggregate;
    busOutBytes = g * s.payload + s.peers * aggregate;
    busStoredBytes += aggregate * s.replicas;
    crossRegionBytes += aggregate * (s.regions - 1);
    // The aggregator fetches G payloads, aggregates (on its own GPUs, same figures), publishes.
    aggregatorSeconds =
      (g * s.payload) / s.aggregatorBytesPerSecond +
      s.latencySeconds +
      gpuSeconds(aggregateMemoryBytes(s.params, s.payload, g), s.gpu) +
      aggregate / s.aggregatorBytesPerSecond +
      s.latencySeconds;
    // A peer reads the aggregate and reads and writes theta once.
    aggregateSeconds = gpuSeconds(aggregate + 8 * s.params, s.gpu);
  }
  const downloadSeconds =
    Math.max(downloadBytes / s.downBytesPerSecond, busOutBytes / s.busEgressBytesPerSecond) +
    s.latencySeconds;
  const roundSeconds =
    computeSeconds +
    compressSeconds +
    uploadSeconds +
    s.selectSeconds +
    aggregatorSeconds +
    downloadSeconds +
    aggregateSeconds;
  return {
    uploadBytes: s.payload,
    downloadBytes,
    aggregate,
    busStoredBytes,
    busInBytes: s.peers * s.payload + (aggregate > 0 ? aggregate : 0),
    busOutBytes,
    busReplicationBytes,
    crossRegionBytes,
    compressSeconds,
    aggregateSeconds,
    computeSeconds,
    uploadSeconds,
    downloadSeconds,
    aggregatorSeconds,
    roundSeconds,
    utilisation: computeSeconds / roundSeconds,
  };
}

/**
 * The symmetric per-peer WAN bandwidth at which a round reaches `target` utilisation (bus
 * unbounded), or Infinity when the fixed costs alone exceed the budget. Solves
 * (upload + download bytes) / bw = budget - fixed; for (b) only the peer's own transfers
 * scale with bw (the aggregator's link is its own input).
 */
export function bandwidthFor(target: number, s: RoundSettings): number {
  const base = roundCost({
    ...s,
    upBytesPerSecond: Infinity,
    downBytesPerSecond: Infinity,
    busEgressBytesPerSecond: Infinity,
    busIngressBytesPerSecond: Infinity,
  });
  const budget = base.computeSeconds / target - base.computeSeconds;
  const fixed = base.roundSeconds - base.computeSeconds;
  if (fixed >= budget) return Infinity;
  return (base.uploadBytes + base.downloadBytes) / (budget - fixed);
}

/** Gbit/s <-> bytes per second, for tables. */
export const gbps = (bytesPerSecond: number): number => (bytesPerSecond * 8) / 1e9;
export const fromGbps = (gbit: number): number => (gbit * 1e9) / 8;
