// Where the stack finds its binaries and puts its temporary state.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Directory of the pinned test binaries built by tools/build.sh. */
export const binDir = process.env.COVENANT_BIN ?? join(repoRoot, "bin");

/** Absolute path of a pinned binary; a clear error when it was not built. */
export function binary(name: string): string {
  const path = join(binDir, name);
  if (!existsSync(path)) {
    throw new Error(`${name} not found in ${binDir}: run \`make tools\` first`);
  }
  return path;
}

/** Absolute path of a system binary found on PATH or in the usual Debian places. */
export function systemBinary(name: string): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/sbin"]) {
    const path = join(dir, name);
    if (dir && existsSync(path)) return path;
  }
  throw new Error(`${name} not found on PATH: run \`make setup\` first`);
}

/** A fresh temporary directory; removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `covenant-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** argv that runs a TypeScript entry point with node through tsx, from any working directory. */
export function nodeTs(script: string): string[] {
  return [process.execPath, "--import", import.meta.resolve("tsx"), script];
}
