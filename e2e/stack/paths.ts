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

const liveTempDirs = new Set<string>();
let exitHookInstalled = false;

/** Whether temporary directories are kept for debugging (COVENANT_KEEP_TMP=1). */
export const keepTempDirs = (): boolean => Boolean(process.env.COVENANT_KEEP_TMP);

/**
 * A fresh temporary directory; removed by the returned function, or when this process exits
 * (normally, through process.exit, or from the stack's signal handlers) if it still exists.
 * COVENANT_KEEP_TMP=1 keeps it. Only a SIGKILL leaves one behind: scripts/check-leftovers.sh
 * reports those.
 */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  // Under `make test` the run's id goes into the name, so check-leftovers.sh can tell this
  // run's directories from those of a run beside it.
  const run = process.env.COVENANT_TEST_RUN;
  const path = mkdtempSync(join(tmpdir(), `covenant-${prefix}-${run ? `${run}-` : ""}`));
  liveTempDirs.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", removeTempDirs);
  }
  return {
    path,
    remove: () => {
      liveTempDirs.delete(path);
      if (!keepTempDirs()) rmSync(path, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** The temporary directories this process made and has not removed yet. */
export function openTempDirs(): string[] {
  return [...liveTempDirs];
}

/** Removes every temporary directory this process made and has not removed yet. */
export function removeTempDirs(): void {
  for (const path of liveTempDirs) {
    liveTempDirs.delete(path);
    if (keepTempDirs()) continue;
    try {
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // a server still writing into it; check-leftovers.sh reports what remains
    }
  }
}

/** argv that runs a TypeScript entry point with node through tsx, from any working directory. */
export function nodeTs(script: string): string[] {
  return [process.execPath, "--import", import.meta.resolve("tsx"), script];
}
