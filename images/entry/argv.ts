// First module of each bundled entry point (see images/bundle.ts). The worker's main module runs
// main() only when its own URL is argv[1]; in the image it starts through the PATH name
// /usr/local/bin/covenant-worker (a link to the bundle, which is what the operator's worker pods
// run), so argv[1] is made the bundle's own path before that module is evaluated. Only
// meaningful inside a bundle, where every module's import.meta.url is the bundle's.
import { fileURLToPath } from "node:url";

process.argv[1] = fileURLToPath(import.meta.url);
