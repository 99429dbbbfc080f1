// `node --import tsx scale/simulate.ts [--seed N] [--rounds N] [--png PATH]`: the simulator
// fed with scale/inputs.json; prints round time, utilisation and bytes per link for each
// case and both gather designs, beside the cost model, and plots utilisation against
// per-peer WAN bandwidth at 72B.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PRESET_SHAPES, parameterCount, type ModelPreset } from "../api/presets.ts";
import { checkpointBytesBound } from "../operator/bus/runspec.ts";
import {
  aggregateBytes,
  aggregateMemoryBytes,
  compressMemoryBytes,
  fromGbps,
  gpuSeconds,
  payloadBytesOfShape,
  roundCost,
  type GatherDesign,
  type PayloadFormat,
  type RoundSettings,
} from "./model.ts";
import { lineChart } from "./png.ts";
import { simulate, type SimConfig, type SimResult } from "./sim.ts";

const here = dirname(fileURLToPath(import.meta.url));

export interface Figure {
  value: number;
  unit: string;
  source: string;
}
export interface Case {
  name: string;
  preset: ModelPreset;
  peers: number;
  gather: number;
  innerSteps: number;
  /** Seconds, or the name of a figure. */
  stepSeconds: number | string;
  regions: number;
  rounds: number;
  backend: "gpu" | "cpu";
  latencySeconds?: number;
  wanGbps?: number;
  selectSeconds?: number | string;
}
export interface Inputs {
  figures: Record<string, Figure>;
  cases: Case[];
}

export function loadInputs(path = join(here, "inputs.json")): Inputs {
  const inputs = JSON.parse(readFileSync(path, "utf8")) as Inputs;
  for (const [name, f] of Object.entries(inputs.figures))
    if (!/^(measured|assumed): /.test(f.source))
      throw new Error(`figure ${name}: source must say measured or assumed`);
  return inputs;
}

/** Everything the model and the simulator need for one case and design. */
export function settingsFor(
  inputs: Inputs,
  c: Case,
  design: GatherDesign,
  over: { wanGbps?: number; format?: PayloadFormat } = {},
): { model: RoundSettings; sim: Omit<SimConfig, "seed" | "rounds"> } {
  const fig = (name: string) => {
    const f = inputs.figures[name];
    if (!f) throw new Error(`no figure ${name} in inputs`);
    return f.value;
  };
  const val = (v: number | string) => (typeof v === "string" ? fig(v) : v);
  const shape = PRESET_SHAPES[c.preset];
  const params = parameterCount(shape);
  const format = over.format ?? "sparse-f2";
  const payload = payloadBytesOfShape(shape, format);
  const wan = fromGbps(over.wanGbps ?? c.wanGbps ?? fig("peerWanGbps"));
  // The CPU rows use the measured CPU codec rates (bytes of fp32 delta per second); the GPU rows
  // the HBM floor at the assumed efficiency, expressed as figures gpuSeconds understands.
  const gpu =
    c.backend === "gpu"
      ? {
          hbmBytesPerSecond: fig("gpuHbmBytesPerSecond"),
          gpusPerPeer: fig("gpusPerPeer"),
          efficiency: fig("gpuKernelEfficiency"),
        }
      : { hbmBytesPerSecond: (fig("cpuCompressBytesPerSecond") * 12) / 4, gpusPerPeer: 1, efficiency: 1 };
  const model: RoundSettings = {
    params,
    format,
    payload,
    peers: c.peers,
    gather: c.gather,
    innerSteps: c.innerSteps,
    stepSeconds: val(c.stepSeconds),
    upBytesPerSecond: wan,
    downBytesPerSecond: wan,
    latencySeconds: c.latencySeconds ?? fig("intraRegionLatencySeconds"),
    selectSeconds: val(c.selectSeconds ?? "selectSeconds"),
    gpu,
    design,
    replicas: fig("replicas"),
    busEgressBytesPerSecond: fig("busServerEgressBytesPerSecond") * fig("replicas") * c.regions,
    busIngressBytesPerSecond: Infinity,
    aggregatorBytesPerSecond: fromGbps(fig("aggregatorWanGbps")),
    aggregateValueBits: 16,
    indexOverlap: 0,
    regions: c.regions,
  };
  const g = c.gather;
  const aggregate = aggregateBytes(params, g, undefined, model.aggregateValueBits, model.indexOverlap);
  const applySeconds =
    design === "a"
      ? gpuSeconds(aggregateMemoryBytes(params, payload, g), gpu)
      : gpuSeconds(aggregate + 8 * params, gpu);
  const cost = roundCost(model);
  const sim: Omit<SimConfig, "seed" | "rounds"> = {
    peers: c.peers,
    gather: g,
    innerSteps: c.innerSteps,
    stepSeconds: model.stepSeconds,
    payload,
    aggregate,
    design,
    compressSeconds: gpuSeconds(compressMemoryBytes(params, payload, format), gpu),
    aggregateSeconds: applySeconds,
    aggregatorSeconds: gpuSeconds(aggregateMemoryBytes(params, payload, g), gpu),
    selectSeconds: model.selectSeconds,
    // Room for a 50% straggler and the round's transfers; later payloads are left out.
    deadlineSeconds: 1.3 * cost.computeSeconds + (cost.roundSeconds - cost.computeSeconds),
    regions: c.regions,
    topology: "regional",
    peerUpBytesPerSecond: wan,
    peerDownBytesPerSecond: wan,
    serverEgressBytesPerSecond: fig("busServerEgressBytesPerSecond") * fig("replicas"),
    serverIngressBytesPerSecond: Infinity,
    interRegionBytesPerSecond: fromGbps(fig("interRegionGbps")),
    intraLatencySeconds: model.latencySeconds,
    interLatencySeconds: fig("interRegionLatencySeconds"),
    aggregatorBytesPerSecond: model.aggregatorBytesPerSecond,
    stragglers: {
      probability: fig("stragglerProbability"),
      slowdownMax: fig("stragglerSlowdownMax"),
      jitter: fig("computeJitter"),
      policy: "timebox",
    },
    churn: {
      leaveProbability: fig("leaveProbability"),
      checkpointBytes: checkpointBytesBound(shape),
      checkpointEveryRounds: fig("checkpointEveryRounds"),
      nullRounds: fig("nullRounds"),
    },
  };
  return { model, sim };
}

const GB = 1e9;
const fmt = (n: number, d = 1) => n.toFixed(d);

export function tableRow(
  c: Case,
  design: GatherDesign,
  r: SimResult,
  modelRound: number,
  modelUtil: number,
): string {
  const p = r.perRound;
  return `| ${c.name} | ${design} | ${c.peers}/${c.gather}/${c.regions} | ${fmt(modelRound)} | ${fmt(100 * modelUtil)} | ${fmt(r.roundSeconds)} | ${fmt(100 * r.utilisation)} | ${fmt(p.peerUp / GB, 3)} | ${fmt(p.peerDown / GB, 2)} | ${fmt(p.serverOut / GB, 1)} | ${fmt(p.crossRegion / GB, 1)} | ${fmt(p.aggregator / GB, 1)} | ${r.leaves}/${r.joins} | ${r.lateUploads} | ${fmt(r.stepsLost / (c.rounds * c.peers), 2)} |`;
}

export const TABLE_HEAD = [
  "| case | design | N/G/regions | model round s | model util % | sim round s | sim util % | peers up GB/round | peers down GB/round | servers out GB/round | cross-region GB/round | aggregator GB/round | leaves/joins | late uploads | steps lost/peer-round |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];

function main(argv: string[]): void {
  const arg = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
  };
  const seed = Number(arg("--seed", "1"));
  const roundsOverride = argv.includes("--rounds") ? Number(arg("--rounds", "0")) : undefined;
  const pngPath = arg("--png", join(here, "..", "docs", "images", "scale-72b-utilisation.png"));
  const inputs = loadInputs();
  console.log(`seed ${seed}; inputs scale/inputs.json; payloads in format 2 (Elias-Fano, 2-bit values)\n`);
  console.log(TABLE_HEAD.join("\n"));
  for (const c of inputs.cases) {
    for (const design of ["a", "b"] as const) {
      const { model, sim } = settingsFor(inputs, c, design);
      const cost = roundCost(model);
      const r = simulate({ ...sim, seed, rounds: roundsOverride ?? c.rounds });
      console.log(tableRow(c, design, r, cost.roundSeconds, cost.utilisation));
    }
  }

  // Utilisation against per-peer WAN bandwidth, 72B, both designs (simulated and modelled).
  const c72 = inputs.cases.find((c) => c.preset === "llama3-72b")!;
  const xs = [1, 2, 5, 10, 20, 50, 100];
  const series = (["a", "b"] as const).flatMap((design, i) => {
    const sim = xs.map((x) => {
      const s = settingsFor(inputs, c72, design, { wanGbps: x }).sim;
      return [x, simulate({ ...s, seed, rounds: 12 }).utilisation] as const;
    });
    const mod = xs.map(
      (x) => [x, roundCost(settingsFor(inputs, c72, design, { wanGbps: x }).model).utilisation] as const,
    );
    const colors = [
      [
        [31, 119, 180],
        [120, 170, 220],
      ],
      [
        [214, 39, 40],
        [240, 140, 140],
      ],
    ] as const;
    return [
      { label: `(${design.toUpperCase()}) SIMULATED`, color: colors[i]![0], points: sim },
      { label: `(${design.toUpperCase()}) MODEL`, color: colors[i]![1], points: mod },
    ];
  });
  console.log("\n72B utilisation vs per-peer WAN (Gbit/s), simulated:");
  console.log(`| Gbit/s | ${xs.join(" | ")} |\n|---|${xs.map(() => "---").join("|")}|`);
  for (const s of series)
    console.log(`| ${s.label} | ${s.points.map(([, y]) => fmt(100 * y)).join(" | ")} |`);
  mkdirSync(dirname(pngPath), { recursive: true });
  writeFileSync(
    pngPath,
    lineChart({
      title: "72B ROUND: COMPUTE UTILISATION VS PEER WAN",
      xLabel: "PEER WAN GBIT/S (LOG)",
      yLabel: "UTILISATION %",
      xTicks: xs,
      yMin: 0.6,
      yMax: 1,
      yTicks: [0.6, 0.7, 0.8, 0.9, 0.95, 1],
      format: (y) => `${Math.round(y * 100)}%`,
      series,
    }),
  );
  console.log(`\nplot: ${pngPath}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
