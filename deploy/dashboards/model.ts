// A small model of Grafana dashboards: panels are data, the JSON is derived.
// Every panel's PromQL is checked against a real Prometheus by the tests.

export interface Target {
  expr: string;
  legend: string;
}

export interface Panel {
  title: string;
  description: string;
  kind: "timeseries" | "stat";
  unit: string;
  targets: Target[];
}

export interface Row {
  title: string;
  panels: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  /** Template variables: name -> label_values() query. */
  variables: Record<string, string>;
  rows: Row[];
}

const WIDTH = 24;
const PANEL_WIDTH = 8;
const PANEL_HEIGHT = 8;

/** Grafana's dashboard JSON (schema 39) for the model. */
export function toGrafana(d: Dashboard): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of d.rows) {
    panels.push({
      id: id++,
      type: "row",
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: WIDTH, x: 0, y },
    });
    y += 1;
    row.panels.forEach((p, i) => {
      const x = (i * PANEL_WIDTH) % WIDTH;
      if (i > 0 && x === 0) y += PANEL_HEIGHT;
      panels.push({
        id: id++,
        type: p.kind,
        title: p.title,
        description: p.description,
        datasource: { type: "prometheus", uid: "${datasource}" },
        gridPos: { h: PANEL_HEIGHT, w: PANEL_WIDTH, x, y },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        options:
          p.kind === "stat"
            ? { reduceOptions: { calcs: ["lastNotNull"] } }
            : { legend: { displayMode: "list" } },
        targets: p.targets.map((t, j) => ({
          refId: String.fromCharCode(65 + j),
          expr: t.expr,
          legendFormat: t.legend,
          datasource: { type: "prometheus", uid: "${datasource}" },
        })),
      });
    });
    y += PANEL_HEIGHT;
  }
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ["covenant"],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: "now-6h", to: "now" },
    refresh: "30s",
    templating: {
      list: [
        { name: "datasource", type: "datasource", query: "prometheus", label: "Data source" },
        ...Object.entries(d.variables).map(([name, query]) => ({
          name,
          type: "query",
          label: name,
          datasource: { type: "prometheus", uid: "${datasource}" },
          query: { query, refId: name },
          definition: query,
          includeAll: true,
          multi: true,
          refresh: 2,
        })),
      ],
    },
    panels,
  };
}

/** Every PromQL expression of a dashboard. */
export function expressions(d: Dashboard): string[] {
  return d.rows.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => t.expr)));
}

/** Metric names an expression reads (identifiers starting with covenant_). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bcovenant_[a-z0-9_]+/g) ?? [])];
}
