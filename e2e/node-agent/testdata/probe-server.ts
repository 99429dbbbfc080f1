// A container stand-in for node-agent tests: serves /readyz and /info (what it was
// given: its config file, node name and arguments) on the address in LISTEN_ADDR.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const [host, port] = (process.env.LISTEN_ADDR ?? "127.0.0.1:0").split(":");
const info = {
  config: readFileSync(process.env.CONFIG_FILE ?? "/nonexistent", "utf8"),
  secretBytes: readFileSync(process.env.SECRET_FILE ?? "/nonexistent").length,
  node: process.env.NODE_NAME,
  args: process.argv.slice(2),
};
const server = createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(req.url === "/info" ? JSON.stringify(info) : "{}");
});
server.listen(Number(port), host);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
