// Loads one of the kernels' N-API addons once, from kernels/build/ or from the path an
// environment variable names, with an error that says how to build it.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface AddonSpec {
  /** What the addon is, for the error message ("codec", "engine"). */
  what: string;
  /** Environment variable that overrides the path. */
  envVar: string;
  /** Path under kernels/build/. */
  buildPath: string;
}

/** A lazy loader: the addon is required on the first call, then kept. */
export function addonLoader<T>(spec: AddonSpec): () => T {
  let native: T | undefined;
  return () => {
    if (native) return native;
    const override = process.env[spec.envVar];
    const here = path.dirname(fileURLToPath(import.meta.url));
    const file = override ? path.resolve(override) : path.join(here, "..", "build", spec.buildPath);
    try {
      native = createRequire(import.meta.url)(file) as T;
    } catch (e) {
      throw new Error(
        `cannot load the ${spec.what} addon ${file} (${(e as Error).message}); build it with \`make kernels-build\``,
      );
    }
    return native;
  };
}
