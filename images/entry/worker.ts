// Entry point of the worker image's bundle: the worker's main module, started the way the image
// starts it (images/entry/argv.ts first, so that its main guard sees the bundle as argv[1]).
import "./argv.ts";
import "../../worker/main.ts";
