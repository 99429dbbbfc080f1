// Writes the Grafana dashboards of the Helm chart from their models.
//   generate.ts          write charts/covenant-operator/dashboards/*.json
//   generate.ts --check  fail when a written file differs from its model
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dashboards, dashboardDir } from "./index.ts";
import { toGrafana } from "./model.ts";

const check = process.argv.includes("--check");
let stale = 0;
for (const d of dashboards) {
  const file = join(dashboardDir, `${d.uid}.json`);
  const text = `${JSON.stringify(toGrafana(d), null, 2)}\n`;
  if (check) {
    let current = "";
    try {
      current = readFileSync(file, "utf8");
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      console.error(`${file} is stale: run \`make generate\``);
      stale++;
    }
  } else {
    writeFileSync(file, text);
  }
}
process.exit(stale ? 1 : 0);
