/**
 * Packs the project's images from their staged layers (images/images.mk stages them) into OCI
 * archives, checks each archive as a runtime would, and records the digests:
 *
 *   build/images/<name>.oci.tar    the OCI layout as a tar (ctr images import, skopeo, podman load)
 *   build/images/<name>.digest     sha256:... of the manifest (what repository@sha256: names)
 *   build/images/images.json       {name: {digest, ref, name, archive}} for every archive present
 *
 *   node --import tsx images/build.ts --stage DIR --out DIR [--epoch SECONDS] IMAGE...
 *
 * The epoch defaults to IMAGES_SOURCE_DATE_EPOCH of images/versions.env; SOURCE_DATE_EPOCH in the
 * environment is deliberately not read, since CI systems set it to the commit time, which would
 * change the committed digests (docs/decisions/images-without-a-registry.md).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { imageSpecs, parseEnvFile, versionsFrom, type ImageSpec } from "./definitions.ts";
import { BlobStore } from "./oci/layer.ts";
import type { LayerBlob } from "./oci/layout.ts";
import { packImage, writeArchive } from "./oci/image.ts";
import { verifyArchive } from "./oci/verify.ts";
import type { ImageRecord } from "./digests.ts";

export const imagesDir = fileURLToPath(new URL(".", import.meta.url));
export const repoRoot = resolve(imagesDir, "..");

/** The image specs of this checkout, with versions.env and package.json's version. */
export function loadSpecs(root = repoRoot): { specs: ImageSpec[]; env: Record<string, string> } {
  const env = parseEnvFile(readFileSync(join(root, "images", "versions.env"), "utf8"));
  const project = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string })
    .version;
  return { specs: imageSpecs(versionsFrom(env, project)), env };
}

/** images.json after a build: the built images replace their entries; entries without an archive go. */
export function mergeRecords(
  previous: Record<string, ImageRecord>,
  built: Record<string, ImageRecord>,
  archiveExists: (archive: string) => boolean,
): Record<string, ImageRecord> {
  const merged: Record<string, ImageRecord> = {};
  for (const [name, r] of Object.entries({ ...previous, ...built }).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (built[name] || archiveExists(r.archive)) merged[name] = r;
  }
  return merged;
}

const MiB = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

function parseArgs(argv: string[]): { stage: string; out: string; epoch?: number; names: string[] } {
  let stage = "";
  let out = "";
  let epoch: number | undefined;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--stage") stage = argv[++i] ?? "";
    else if (a === "--out") out = argv[++i] ?? "";
    else if (a === "--epoch") epoch = Number(argv[++i]);
    else names.push(a);
  }
  if (!stage || !out || names.length === 0 || (epoch !== undefined && !Number.isInteger(epoch))) {
    throw new Error("usage: images/build.ts --stage DIR --out DIR [--epoch SECONDS] IMAGE...");
  }
  return { stage: resolve(stage), out: resolve(out), epoch, names };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { specs, env } = loadSpecs();
  const epoch = args.epoch ?? Number(env.IMAGES_SOURCE_DATE_EPOCH);
  const store = new BlobStore(join(args.out, "store"));
  const layerCache = new Map<string, Promise<LayerBlob>>();
  const built: Record<string, ImageRecord> = {};
  for (const name of args.names) {
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new Error(`no image ${name}; the images are ${specs.map((s) => s.name).join(", ")}`);
    const started = Date.now();
    const image = await packImage(
      {
        repository: spec.repository,
        tag: spec.tag,
        layers: spec.layers.map((l) => ({
          dir: join(args.stage, l.stage),
          createdBy: l.createdBy,
          tree: l.tree,
        })),
        runtime: spec.runtime,
      },
      store,
      epoch,
      layerCache,
    );
    const archive = join(args.out, `${name}.oci.tar`);
    await writeArchive(image, store, archive, epoch);
    const verified = verifyArchive(readFileSync(archive));
    if (verified.digest !== image.digest)
      throw new Error(`${archive}: digest ${verified.digest}, packed ${image.digest}`);
    writeFileSync(join(args.out, `${name}.digest`), `${image.digest}\n`);
    const rel = relative(repoRoot, archive);
    built[name] = {
      digest: image.digest,
      ref: `${spec.repository}@${image.digest}`,
      name: `${spec.repository}:${spec.tag}`,
      archive: rel,
    };
    const layers = image.layers.map((l, i) => `${spec.layers[i]!.stage} ${MiB(l.size)}`).join(", ");
    process.stdout.write(
      `${name}: ${image.digest}\n  ${rel}: ${MiB(statSync(archive).size)} (layers: ${layers}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  }
  const indexFile = join(args.out, "images.json");
  const previous = existsSync(indexFile)
    ? (JSON.parse(readFileSync(indexFile, "utf8")) as Record<string, ImageRecord>)
    : {};
  const merged = mergeRecords(previous, built, (a) => existsSync(resolve(repoRoot, a)));
  writeFileSync(indexFile, `${JSON.stringify(merged, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`images: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
