// The images a test node needs that no registry can give it here: the pause image (the sandbox
// the CRI starts first in every pod) and a tiny HTTP server for the stack's own tests. Each is one
// static C program (`gcc -static`, so no base image) alone in one layer, packed into an OCI
// archive by the project's own packer (images/oci), which `ctr images import` loads.
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { packImage, writeArchive } from "../../images/oci/image.ts";
import { BlobStore } from "../../images/oci/layer.ts";
import type { RuntimeConfig } from "../../images/oci/layout.ts";
import { repoRoot, tempDir } from "./paths.ts";

const run = promisify(execFile);

export interface LocalImage {
  /** What `ctr images import` names it, and what a pod's `image` says. */
  name: string;
  /** The same image by digest (repository@sha256:...), as the operator pins images. */
  ref: string;
  digest: string;
  /** The OCI archive. */
  archive: string;
}

export interface LocalImages {
  pause: LocalImage;
  testServer: LocalImage;
}

/** The sandbox image containerd's CRI is configured with (node.ts). */
export const PAUSE_IMAGE = { repository: "covenant.local/pause", tag: "1" } as const;
/** e2e/stack/testserver/testserver.c: answers GET with "ok PATH" on port 8080 (or argv[1]). */
export const TEST_SERVER_IMAGE = { repository: "covenant.local/testserver", tag: "1" } as const;

/** Nothing in these images depends on when they were built: every time stamp is the epoch. */
const EPOCH = 0;
/** The pause image's user in Kubernetes' own image; the test server's is the images' nonroot. */
const PAUSE_USER = "65535:65535";
const TEST_SERVER_USER = "65532:65532";

let built: Promise<LocalImages> | undefined;

/**
 * Builds both images once per process into a temporary directory (removed when the process
 * exits); each node imports the same archives. Compiling and packing take about a second.
 */
export function localImages(): Promise<LocalImages> {
  built ??= buildLocalImages(tempDir("local-images").path);
  // A failed build is not remembered: the next caller tries again and sees the error itself.
  built.catch(() => (built = undefined));
  return built;
}

export async function buildLocalImages(dir: string): Promise<LocalImages> {
  const store = new BlobStore(join(dir, "store"));
  const pause = await staticImage(dir, store, "pause", join(repoRoot, "e2e/stack/pause/pause.c"), {
    ...PAUSE_IMAGE,
    runtime: runtime(PAUSE_USER, ["/pause"], "Sandbox process of the covenant test nodes' pods"),
  });
  const testServer = await staticImage(
    dir,
    store,
    "testserver",
    join(repoRoot, "e2e/stack/testserver/testserver.c"),
    {
      ...TEST_SERVER_IMAGE,
      runtime: runtime(TEST_SERVER_USER, ["/testserver"], "HTTP test server of the covenant test stack"),
    },
  );
  return { pause, testServer };
}

function runtime(user: string, entrypoint: string[], description: string): RuntimeConfig {
  return {
    user,
    entrypoint,
    env: ["PATH=/"],
    workingDir: "/",
    labels: { "org.opencontainers.image.description": description },
  };
}

/** Compiles one C file statically into ROOT/NAME and packs ROOT as the image's single layer. */
async function staticImage(
  dir: string,
  store: BlobStore,
  program: string,
  source: string,
  image: { repository: string; tag: string; runtime: RuntimeConfig },
): Promise<LocalImage> {
  const root = join(dir, `${program}-root`);
  mkdirSync(root, { recursive: true });
  await run("gcc", [
    "-static",
    "-s",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-o",
    join(root, program),
    source,
  ]);
  const packed = await packImage(
    { ...image, layers: [{ dir: root, createdBy: `gcc -static ${source.slice(repoRoot.length + 1)}` }] },
    store,
    EPOCH,
  );
  const archive = join(dir, `${program}.oci.tar`);
  await writeArchive(packed, store, archive, EPOCH);
  return {
    name: `${image.repository}:${image.tag}`,
    ref: `${image.repository}@${packed.digest}`,
    digest: packed.digest,
    archive,
  };
}
