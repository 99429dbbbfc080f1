// Entry point of the admission service's bundle (in the operator image): the service's main
// module, started the way the image starts it (images/entry/argv.ts first, like the others).
import "./argv.ts";
import "../../admission/main.ts";
