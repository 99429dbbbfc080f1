// A loss-per-round line chart as a self-contained SVG document: no fonts, scripts or
// stylesheets to fetch, a white background (readable on dark pages), axes with tick labels,
// a legend and a title. Pure: the same series and options give the same bytes.
//
// Rounds are whole numbers. Points whose round or loss is not finite (a validator round with
// no submissions reports NaN) are left out; the line breaks wherever a round is missing, and a
// point with no neighbour is drawn as a dot.

export interface LossPoint {
  round: number;
  loss: number;
}

export interface LossSeries {
  label: string;
  points: readonly LossPoint[];
  /** "main": a thick line with a marker at every point (the validator); "minor": a thin line (a miner). */
  weight?: "main" | "minor";
  /** A CSS colour; by default one from a fixed palette, by the series' position. */
  color?: string;
}

export interface LossChartOptions {
  title: string;
  /** A line under the title (what ran, where, when). */
  subtitle?: string;
  /** Lines of small print under the plot (what each series measures). */
  notes?: readonly string[];
  /** The run's length: the x axis spans at least rounds 0 to rounds - 1, so a chart drawn mid-run shows how far it got. */
  rounds?: number;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

/** Where the data is drawn, in SVG user units (also written as the `plot-area` rectangle). */
export interface PlotBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const MAIN_COLOR = "#111111";
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const LEGEND_WIDTH = 230;

/** Evenly spaced round numbers (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6, integer = false): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Decimals that tell ticks `step` apart. */
function decimals(ticks: readonly number[]): number {
  if (ticks.length < 2) return 0;
  const step = Math.abs(ticks[1]! - ticks[0]!);
  return Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A coordinate as SVG text: two decimals, no exponent, never NaN (callers map finite data only). */
function n(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 100) / 100) : "0";
}

const finite = (p: LossPoint) => Number.isFinite(p.round) && Number.isFinite(p.loss);

/** The plot's rectangle for a chart of this size: room for the title above, the legend on the right. */
export function plotBox(o: Pick<LossChartOptions, "width" | "height" | "subtitle" | "notes">): PlotBox {
  const width = o.width ?? 920;
  const height = o.height ?? 500;
  const top = o.subtitle ? 68 : 50;
  const bottom = 52 + 15 * (o.notes?.length ?? 0);
  const left = 66;
  return { left, top, width: width - left - LEGEND_WIDTH - 20, height: height - top - bottom };
}

/** The chart as an SVG document (UTF-8 text, starting with the XML declaration). */
export function lossChart(series: readonly LossSeries[], options: LossChartOptions): string {
  const width = options.width ?? 920;
  const height = options.height ?? 500;
  const box = plotBox(options);
  const points = series.map((s) => s.points.filter(finite).sort((a, b) => a.round - b.round));
  const all = points.flat();

  // Domains: rounds from 0 (or the first round drawn) to the run's last round; loss over the
  // data, widened to whole ticks, and to a unit span around a flat series.
  const roundLo = Math.min(0, ...all.map((p) => p.round));
  const roundHi = Math.max(roundLo + 1, (options.rounds ?? 0) - 1, ...all.map((p) => p.round));
  const xTicks = niceTicks(roundLo, roundHi, 8, true);
  let lossLo = all.length ? Math.min(...all.map((p) => p.loss)) : 0;
  let lossHi = all.length ? Math.max(...all.map((p) => p.loss)) : 1;
  if (lossHi - lossLo < 1e-9) {
    const pad = Math.max(Math.abs(lossLo) * 0.05, 0.5);
    lossLo -= pad;
    lossHi += pad;
  }
  const yTicks = niceTicks(lossLo, lossHi, 6);
  const [x0, x1] = [xTicks[0]!, xTicks.at(-1)!];
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const X = (round: number) => box.left + ((round - x0) / (x1 - x0)) * box.width;
  const Y = (loss: number) => box.top + box.height - ((loss - y0) / (y1 - y0)) * box.height;
  const bottom = box.top + box.height;
  const right = box.left + box.width;

  const out: string[] = [];
  const add = (s: string) => out.push(s);
  add(`<?xml version="1.0" encoding="UTF-8"?>`);
  add(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-label="${esc(options.title)}" font-family="${FONT}" font-size="12">`,
  );
  add(`<title>${esc(options.title)}</title>`);
  add(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  add(
    `<text class="title" x="${box.left}" y="26" font-size="16" font-weight="bold" fill="#111111">${esc(options.title)}</text>`,
  );
  if (options.subtitle)
    add(`<text class="subtitle" x="${box.left}" y="46" fill="#555555">${esc(options.subtitle)}</text>`);

  // Grid, ticks and tick labels.
  add(`<g class="grid" stroke="#e4e4e4" stroke-width="1">`);
  for (const t of yTicks) add(`<line x1="${n(box.left)}" y1="${n(Y(t))}" x2="${n(right)}" y2="${n(Y(t))}"/>`);
  for (const t of xTicks) add(`<line x1="${n(X(t))}" y1="${n(box.top)}" x2="${n(X(t))}" y2="${n(bottom)}"/>`);
  add(`</g>`);
  add(
    `<rect class="plot-area" x="${n(box.left)}" y="${n(box.top)}" width="${n(box.width)}" height="${n(box.height)}" fill="none" stroke="#888888"/>`,
  );
  const yd = decimals(yTicks);
  add(`<g class="y-ticks" text-anchor="end" fill="#333333">`);
  for (const t of yTicks)
    add(`<text x="${n(box.left - 6)}" y="${n(Y(t) + 4)}" data-value="${t}">${t.toFixed(yd)}</text>`);
  add(`</g>`);
  add(`<g class="x-ticks" text-anchor="middle" fill="#333333">`);
  for (const t of xTicks) add(`<text x="${n(X(t))}" y="${n(bottom + 16)}" data-value="${t}">${t}</text>`);
  add(`</g>`);
  add(
    `<text class="x-label" x="${n(box.left + box.width / 2)}" y="${n(bottom + 34)}" text-anchor="middle" fill="#111111">${esc(options.xLabel ?? "round")}</text>`,
  );
  add(
    `<text class="y-label" transform="translate(16 ${n(box.top + box.height / 2)}) rotate(-90)" text-anchor="middle" fill="#111111">${esc(options.yLabel ?? "loss")}</text>`,
  );
  for (const [i, line] of (options.notes ?? []).entries())
    add(
      `<text class="note" x="${box.left}" y="${n(bottom + 52 + 15 * i)}" font-size="11" fill="#555555">${esc(line)}</text>`,
    );

  // The series: minor ones first so the main line is drawn on top.
  const order = series
    .map((s, i) => i)
    .sort((a, b) => +(series[a]!.weight === "main") - +(series[b]!.weight === "main"));
  let minor = 0;
  const colors = series.map((s) =>
    s.color ? s.color : s.weight === "main" ? MAIN_COLOR : PALETTE[minor++ % PALETTE.length]!,
  );
  if (all.length === 0)
    add(
      `<text class="empty" x="${n(box.left + box.width / 2)}" y="${n(box.top + box.height / 2)}" text-anchor="middle" fill="#888888">no rounds yet</text>`,
    );
  for (const i of order) {
    const s = series[i]!;
    const pts = points[i]!;
    if (pts.length === 0) continue;
    const main = s.weight === "main";
    // A new subpath after a gap: a round missing from the series, or one left out as not finite.
    const broken = (a: LossPoint, b: LossPoint) => b.round - a.round > 1;
    let d = "";
    const alone: LossPoint[] = [];
    pts.forEach((p, k) => {
      const prev = pts[k - 1];
      const next = pts[k + 1];
      const starts = !prev || broken(prev, p);
      if (starts && (!next || broken(p, next))) alone.push(p);
      d += `${d ? " " : ""}${starts ? "M" : "L"}${n(X(p.round))},${n(Y(p.loss))}`;
    });
    add(
      `<path class="series${main ? " main" : ""}" data-label="${esc(s.label)}" d="${d}" fill="none" stroke="${esc(colors[i]!)}" ` +
        `stroke-width="${main ? 2.5 : 1.2}" stroke-linejoin="round" stroke-linecap="round"${main ? "" : ` stroke-opacity="0.85"`}/>`,
    );
    const dots = main ? pts : alone;
    if (dots.length) {
      add(`<g class="markers" fill="${esc(colors[i]!)}">`);
      for (const p of dots) add(`<circle cx="${n(X(p.round))}" cy="${n(Y(p.loss))}" r="${main ? 2.8 : 2}"/>`);
      add(`</g>`);
    }
  }

  // The legend, right of the plot, in the order given.
  const lx = right + 18;
  add(`<g class="legend" fill="#111111">`);
  for (const [i, s] of series.entries()) {
    const y = box.top + 8 + 20 * i;
    const main = s.weight === "main";
    const last = points[i]!.at(-1);
    const value = last ? ` ${last.loss.toFixed(3)}` : " (no data)";
    add(
      `<line x1="${lx}" y1="${y}" x2="${lx + 22}" y2="${y}" stroke="${esc(colors[i]!)}" stroke-width="${main ? 2.5 : 1.5}"/>`,
    );
    add(
      `<text x="${lx + 28}" y="${y + 4}">${esc(s.label)}<tspan fill="#666666">${esc(value)}</tspan></text>`,
    );
  }
  add(
    `<text x="${lx}" y="${box.top + 8 + 20 * series.length + 4}" font-size="11" fill="#666666">(last value)</text>`,
  );
  add(`</g>`);
  add(`</svg>`);
  return out.join("\n") + "\n";
}
