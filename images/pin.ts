/**
 * Writes the digests of the built images (build/images/images.json) where the project pins
 * them: the chart's default operator image and the worker image of the examples.
 * `--check` writes nothing and fails when a pin differs from the build, like
 * `api/generate.ts --check`.
 *
 *   node --import tsx images/pin.ts [--check]
 *
 * Only the pinned lines change; comments and layout of the files stay as they are.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { imagesJsonPath, readImages, type ImageName, type ImageRecord } from "./digests.ts";

export const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");

export interface PinTarget {
  file: string;
  image: ImageName;
  kind: "chart-values" | "worker-image";
}

export const PIN_TARGETS: readonly PinTarget[] = [
  { file: "charts/covenant-operator/values.yaml", image: "covenant-operator", kind: "chart-values" },
  // The local example runs on CPU nodes; the production example on B200s.
  { file: "examples/local-tiny.yaml", image: "covenant-worker-cpu", kind: "worker-image" },
  { file: "examples/trainingrun.yaml", image: "covenant-worker-cuda", kind: "worker-image" },
];

const indentOf = (line: string): number => line.length - line.trimStart().length;
const isContent = (line: string): boolean => line.trim() !== "" && !line.trimStart().startsWith("#");

/**
 * values.yaml with `image.digest` set to the built digest. The top-level `image.repository` must
 * already name the built image's repository: the digest means nothing in another one.
 */
export function pinChartValues(text: string, record: ImageRecord): string {
  const repository = record.ref.split("@")[0]!;
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^image:\s*(#.*)?$/.test(l));
  if (start === -1) throw new Error("values.yaml: no top-level image: block");
  let digestLine = -1;
  let repo: string | undefined;
  let keyIndent = -1; // the indentation of image's own keys, not of anything nested deeper
  for (let i = start + 1; i < lines.length && (!isContent(lines[i]!) || indentOf(lines[i]!) > 0); i++) {
    if (!isContent(lines[i]!)) continue;
    if (keyIndent === -1) keyIndent = indentOf(lines[i]!);
    const m = /^(\s+)(repository|digest):(\s*)(.*?)(\s+#.*)?$/.exec(lines[i]!);
    if (!m || indentOf(lines[i]!) !== keyIndent) continue;
    if (m[2] === "repository") repo = m[4]!.replace(/^"(.*)"$/, "$1");
    else digestLine = i;
  }
  if (repo !== repository) {
    throw new Error(
      `values.yaml: image.repository is ${repo ?? "(none)"}, the built operator image is ${repository}`,
    );
  }
  if (digestLine === -1) throw new Error("values.yaml: image has no digest: line");
  lines[digestLine] = lines[digestLine]!.replace(
    /^(\s+digest:\s*)(?:"[^"]*"|'[^']*'|[^\s#]*)/,
    `$1"${record.digest}"`,
  );
  const out = lines.join("\n");
  const parsed = parse(out) as { image?: { digest?: string } };
  if (parsed.image?.digest !== record.digest)
    throw new Error("values.yaml: the digest did not land in image.digest");
  return out;
}

const WORKER_IMAGE = /^(\s+image:\s*)("?)[^\s"@]+@sha256:[0-9a-f]{64}\2(\s*(?:#.*)?)$/;

/** A manifest file with every `worker:`'s `image:` (pinned by digest) set to the built reference. */
export function pinWorkerImages(text: string, record: ImageRecord): string {
  const lines = text.split("\n");
  let pinned = 0;
  lines.forEach((line, i) => {
    const m = WORKER_IMAGE.exec(line);
    if (!m) return;
    // The image's parent key: the nearest line above that is indented less.
    let parent = i - 1;
    while (parent >= 0 && (!isContent(lines[parent]!) || indentOf(lines[parent]!) >= indentOf(line)))
      parent--;
    if (parent < 0 || !/^\s*worker:\s*(#.*)?$/.test(lines[parent]!)) return;
    lines[i] = `${m[1]}${m[2]}${record.ref}${m[2]}${m[3]}`;
    pinned++;
  });
  if (pinned === 0)
    throw new Error("no worker image pinned by digest (worker: image: repository@sha256:...)");
  const out = lines.join("\n");
  for (const doc of parseAllDocuments(out)) {
    const run = doc.toJS() as { kind?: string; spec?: { worker?: { image?: string } } } | null;
    if (run?.kind === "TrainingRun" && run.spec?.worker?.image !== record.ref) {
      throw new Error(`TrainingRun's spec.worker.image is ${run.spec?.worker?.image}, not ${record.ref}`);
    }
  }
  return out;
}

/** A file's text with its pin applied. */
export function pinned(target: PinTarget, text: string, record: ImageRecord): string {
  try {
    return target.kind === "chart-values" ? pinChartValues(text, record) : pinWorkerImages(text, record);
  } catch (e) {
    throw new Error(`${target.file}: ${(e as Error).message}`);
  }
}

/** Applies (or with check, compares) every pin; returns the files that differ(ed). */
export function pinAll(
  root: string,
  images: Partial<Record<ImageName, ImageRecord>>,
  check: boolean,
): { changed: string[]; missing: ImageName[] } {
  const changed: string[] = [];
  const missing: ImageName[] = [];
  for (const t of PIN_TARGETS) {
    const record = images[t.image];
    if (!record) {
      missing.push(t.image);
      continue;
    }
    const path = join(root, t.file);
    const before = readFileSync(path, "utf8");
    const after = pinned(t, before, record);
    if (after === before) continue;
    changed.push(`${t.file} (${t.image} ${record.digest})`);
    if (!check) writeFileSync(path, after);
  }
  return { changed, missing };
}

function main(): number {
  const check = process.argv.includes("--check");
  const { changed, missing } = pinAll(repoRoot, readImages(), check);
  for (const m of missing)
    process.stderr.write(`images/pin: ${imagesJsonPath()} has no ${m}: run \`make images\`\n`);
  if (check) {
    for (const c of changed)
      process.stderr.write(`images/pin: ${c} is not pinned; run \`make images-pin\`\n`);
    if (changed.length === 0 && missing.length === 0)
      process.stdout.write("images/pin: every pin matches the build\n");
    return changed.length > 0 || missing.length > 0 ? 1 : 0;
  }
  for (const c of changed) process.stdout.write(`images/pin: pinned ${c}\n`);
  if (changed.length === 0) process.stdout.write("images/pin: every pin already matches the build\n");
  return missing.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exit(main());
  } catch (e) {
    process.stderr.write(`images/pin: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
