// Entry point of the operator image's bundle: the operator's main module, started the way the
// image starts it (images/entry/argv.ts first).
import "./argv.ts";
import "../../operator/main.ts";
