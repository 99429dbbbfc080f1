// The digests of the images `make images` built, from build/images/images.json, for whatever
// needs to run them: end-to-end tests that pin a TrainingRun's worker image, images/pin.ts.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** One built image. */
export interface ImageRecord {
  /** sha256:... of the image manifest. */
  digest: string;
  /** repository@digest: the reference a pod spec or a TrainingRun pins. */
  ref: string;
  /** repository:tag, the name `ctr images import` gives it. */
  name: string;
  /** The OCI archive, relative to the repository root. */
  archive: string;
}

export const IMAGE_NAMES = ["covenant-operator", "covenant-worker-cpu", "covenant-worker-cuda"] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");

/** build/images/images.json of a checkout. */
export function imagesJsonPath(root = repoRoot): string {
  return join(root, "build", "images", "images.json");
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses images.json, rejecting an entry whose digest or reference is malformed. */
export function parseImages(text: string): Partial<Record<ImageName, ImageRecord>> {
  const raw = JSON.parse(text) as Record<string, Partial<ImageRecord>>;
  const out: Partial<Record<ImageName, ImageRecord>> = {};
  for (const [name, r] of Object.entries(raw)) {
    if (!(IMAGE_NAMES as readonly string[]).includes(name)) continue;
    if (
      !r.digest ||
      !DIGEST.test(r.digest) ||
      r.ref !== `${r.ref?.split("@")[0]}@${r.digest}` ||
      !r.name ||
      !r.archive
    ) {
      throw new Error(`images.json: entry ${name} is malformed: ${JSON.stringify(r)}`);
    }
    out[name as ImageName] = { digest: r.digest, ref: r.ref, name: r.name, archive: r.archive };
  }
  return out;
}

/** The built images, or an empty record when `make images` has not run. */
export function readImages(file = imagesJsonPath()): Partial<Record<ImageName, ImageRecord>> {
  return existsSync(file) ? parseImages(readFileSync(file, "utf8")) : {};
}

/** One built image; throws with the command that builds it when it is missing. */
export function builtImage(name: ImageName, file = imagesJsonPath()): ImageRecord {
  const r = readImages(file)[name];
  if (!r) throw new Error(`${file} has no ${name}: build the images with \`make images\``);
  return r;
}

/**
 * Arguments of `ctr` that import a built image into containerd under both of its names:
 * repository:tag (from the archive's index) and repository@digest (--digests with the repository
 * as --base-name), which is how the chart and a TrainingRun name it, and what the kubelet asks
 * containerd's CRI plugin for. Add `-n k8s.io` (and `--address`) before them.
 */
export function ctrImportArgs(record: ImageRecord, root = repoRoot): string[] {
  const repository = record.ref.slice(0, record.ref.lastIndexOf("@"));
  return ["images", "import", "--base-name", repository, "--digests", join(root, record.archive)];
}
