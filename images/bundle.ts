/**
 * Compiles the operator, the worker and the admission service into one ES module each (esbuild),
 * with the license texts of every package inside, into the staging directories of their image
 * layers:
 *
 *   <stage>/operator-app/app/covenant-operator.mjs        the bundle, executable (#!/usr/local/bin/node)
 *   <stage>/operator-app/app/THIRD-PARTY-LICENSES.txt     the bundled packages and their licenses
 *   <stage>/operator-app/usr/local/bin/covenant-operator  -> ../../../app/covenant-operator.mjs
 *   (and the same for the worker; the admission service, a second layer of the operator image,
 *   names its license file after itself so that it does not hide the operator's)
 *
 *   node --import tsx images/bundle.ts STAGE_DIR PROD_DIR [COMMAND...]   (default: all)
 *
 * PROD_DIR holds the production dependencies only (`npm ci --omit=dev` of the same lock file,
 * images/images.mk makes it): the project's imports of packages are resolved there, never in the
 * development node_modules, so an optional dependency that only development installs (debug's
 * supports-color, for one) stays out exactly as it would in a production install.
 *
 * Why a bundle (docs/decisions/images-without-a-registry.md): the production node_modules weigh
 * 235 MB for about 5 MB of code that runs; tsx (a devDependency) would have to come along to run
 * .ts files and would want to write its cache.
 */
import { build, type Metafile, type Plugin } from "esbuild";
import { isBuiltin } from "node:module";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface AppBundle {
  /** Staging directory name, also the layer's name in images/definitions.ts. */
  stage: string;
  /** Entry module, relative to the repository root. */
  entry: string;
  /** The command's name: /usr/local/bin/<name> and /app/<name>.mjs. */
  command: string;
  /**
   * The license file's name in /app: THIRD-PARTY-LICENSES.txt for an image's own command, a name
   * of its own for a bundle that shares an image with another (its layer would hide the other's).
   */
  licenses: string;
}

export const APP_BUNDLES: readonly AppBundle[] = [
  {
    stage: "operator-app",
    entry: "images/entry/operator.ts",
    command: "covenant-operator",
    licenses: "THIRD-PARTY-LICENSES.txt",
  },
  {
    stage: "worker-app",
    entry: "images/entry/worker.ts",
    command: "covenant-worker",
    licenses: "THIRD-PARTY-LICENSES.txt",
  },
  // The run's admission service, in the operator image (docs/decisions/admission-in-chart.md).
  {
    stage: "admission-app",
    entry: "images/entry/admission.ts",
    command: "covenant-admission",
    licenses: "THIRD-PARTY-LICENSES.covenant-admission.txt",
  },
];

/** The shebang and a `require` for the CommonJS packages that esbuild wraps into the ES module. */
export const BANNER = [
  "#!/usr/local/bin/node",
  'import { createRequire as __covenantCreateRequire } from "node:module";',
  "const require = __covenantCreateRequire(import.meta.url);",
].join("\n");

/**
 * package-lock.json's key of the package a file belongs to ("node_modules/a/node_modules/b"),
 * from its path relative to the production tree; null for the project's own files.
 */
export function lockKeyOf(pathInProdTree: string): string | null {
  const m = /^(node_modules\/(?:.*\/node_modules\/)?(?:@[^/]+\/)?[^/]+)\//.exec(pathInProdTree);
  return m ? m[1]! : null;
}

/**
 * Resolves imports of packages as a production install would. The project's own imports resolve
 * in the production tree, and must: a package only development installs is an error. A
 * package's import that a production install would not satisfy (the lookup walks up out of the
 * tree into the development node_modules, or finds nothing) stays a runtime import, which fails
 * there exactly as it would with `npm ci --omit=dev`: debug's optional supports-color is one.
 * Each such import is recorded in `leftOut`.
 */
export function productionResolution(prodRoot: string, leftOut: Set<string>): Plugin {
  const inTree = (p: string): boolean => !relative(prodRoot, p).startsWith("..");
  return {
    name: "production-node-modules",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === "production-node-modules" || isBuiltin(args.path)) return undefined;
        const fromProject = !args.importer.split("/").includes("node_modules");
        const r = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: fromProject ? prodRoot : args.resolveDir,
          pluginData: "production-node-modules",
        });
        const found = r.errors.length === 0 && (r.external || inTree(r.path));
        if (found)
          return { path: r.path, external: r.external, namespace: r.namespace, sideEffects: r.sideEffects };
        if (fromProject) {
          return {
            errors: [{ text: `${args.path} is not a production dependency (package.json "dependencies")` }],
          };
        }
        leftOut.add(`${args.path} (imported by ${relative(prodRoot, args.importer)})`);
        return { path: args.path, external: true };
      });
    },
  };
}

export interface LockPackage {
  version?: string;
  license?: string;
  dev?: boolean;
}

export interface BundledPackage {
  key: string;
  name: string;
  version: string;
  license: string;
}

/**
 * The packages whose files are in a bundle, by their lock entries. Inputs are paths relative to
 * the production tree; a package file from anywhere else (the development node_modules), an
 * unknown package or a dev-only one fails: none of them would exist in a production install.
 */
export function bundledPackages(
  inputs: readonly string[],
  lockPackages: Readonly<Record<string, LockPackage>>,
): BundledPackage[] {
  const keys = new Set<string>();
  for (const input of inputs) {
    const key = lockKeyOf(input);
    if (key) keys.add(key);
    else if (input.split("/").includes("node_modules")) {
      throw new Error(`bundle: ${input} comes from outside the production dependencies`);
    }
  }
  const out: BundledPackage[] = [];
  for (const key of [...keys].sort()) {
    const lock = lockPackages[key];
    if (!lock) throw new Error(`bundle: ${key} is not in package-lock.json; run npm ci`);
    if (lock.dev) throw new Error(`bundle: ${key} is a devDependency only, yet the bundle imports it`);
    const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    out.push({ key, name, version: lock.version ?? "?", license: lock.license ?? "UNKNOWN" });
  }
  return out;
}

/** The license files of a package directory (LICENSE, LICENCE, COPYING, NOTICE, any case and extension). */
function licenseFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^(licen[cs]e|copying|notice)([.-].*)?$/i.test(f))
    .sort();
}

/** THIRD-PARTY-LICENSES.txt: each bundled package with its license texts. */
export function licensesText(
  image: string,
  packages: readonly BundledPackage[],
  readLicenses: (p: BundledPackage) => { file: string; text: string }[],
): string {
  const parts = [
    `Third-party packages compiled into ${image} (images/bundle.ts), with their license texts.\n`,
  ];
  for (const p of packages) {
    parts.push(`${"=".repeat(78)}\n${p.name}@${p.version} (${p.license})\n`);
    const texts = readLicenses(p);
    if (texts.length === 0)
      parts.push(`(the package ships no license file; its package.json says ${p.license})\n`);
    for (const t of texts) parts.push(`--- ${t.file}\n${t.text.trimEnd()}\n`);
  }
  return parts.join("\n");
}

async function bundleOne(
  app: AppBundle,
  stageRoot: string,
  prodRoot: string,
  lockPackages: Record<string, LockPackage>,
): Promise<void> {
  const dir = join(stageRoot, app.stage);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "app"), { recursive: true });
  mkdirSync(join(dir, "usr/local/bin"), { recursive: true });
  const outfile = join(dir, "app", `${app.command}.mjs`);
  const leftOut = new Set<string>();
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: [app.entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    banner: { js: BANNER },
    // Readable code and names in stack traces; licenses go to their own file.
    minify: false,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    plugins: [productionResolution(prodRoot, leftOut)],
  });
  if (result.errors.length > 0) throw new Error(`bundle: ${app.entry} failed`);
  chmodSync(outfile, 0o755);
  symlinkSync(`../../../app/${app.command}.mjs`, join(dir, "usr/local/bin", app.command));

  const inputs = Object.keys((result.metafile as Metafile).inputs).map((i) =>
    relative(prodRoot, resolve(repoRoot, i)),
  );
  const packages = bundledPackages(inputs, lockPackages);
  const text = licensesText(app.command, packages, (p) =>
    licenseFiles(join(prodRoot, p.key)).map((file) => ({
      file,
      text: readFileSync(join(prodRoot, p.key, file), "utf8"),
    })),
  );
  writeFileSync(join(dir, "app", app.licenses), text);
  process.stdout.write(`bundle: ${app.command}.mjs, ${packages.length} packages\n`);
  for (const l of [...leftOut].sort())
    process.stdout.write(`  left as a runtime import, as production installs lack it: ${l}\n`);
}

async function main(): Promise<void> {
  const [stageRoot, prodRoot, ...commands] = process.argv.slice(2);
  if (!stageRoot || !prodRoot) throw new Error("usage: images/bundle.ts STAGE_DIR PROD_DIR [COMMAND...]");
  const unknown = commands.filter((c) => !APP_BUNDLES.some((a) => a.command === c));
  if (unknown.length > 0) {
    throw new Error(
      `bundle: no ${unknown.join(", ")}; the commands are ${APP_BUNDLES.map((a) => a.command).join(", ")}`,
    );
  }
  const apps = commands.length === 0 ? APP_BUNDLES : APP_BUNDLES.filter((a) => commands.includes(a.command));
  const prod = resolve(prodRoot);
  if (!existsSync(join(prod, "node_modules")))
    throw new Error(`bundle: ${prod}/node_modules is missing (make images-prod-deps)`);
  // The lock file the tree was installed from: it marks dev-only packages, which must not appear.
  const lockFile = join(prod, "package-lock.json");
  const lock = JSON.parse(readFileSync(lockFile, "utf8")) as { packages: Record<string, LockPackage> };
  for (const app of apps) await bundleOne(app, resolve(stageRoot), prod, lock.packages);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
