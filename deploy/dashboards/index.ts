import { fileURLToPath } from "node:url";
import { operatorDashboard } from "./operator.ts";
import { runDashboard } from "./run.ts";
import type { Dashboard } from "./model.ts";

export const dashboards: Dashboard[] = [operatorDashboard, runDashboard];

export const dashboardDir = fileURLToPath(
  new URL("../../charts/covenant-operator/dashboards", import.meta.url),
);
