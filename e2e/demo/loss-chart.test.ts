import assert from "node:assert/strict";
import { test } from "node:test";
import { lossChart, niceTicks, plotBox, type LossSeries } from "./loss-chart.ts";

interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

/**
 * A strict reader for the XML subset the chart writes: a declaration, elements, quoted
 * attributes, text with the five escapes or character references. Throws on anything else
 * (an unclosed or misnested tag, a raw `<` or `&`, a duplicate attribute, two roots).
 */
function parseXml(src: string): Element {
  let i = 0;
  const decl = /^<\?xml [^?]*\?>\s*/.exec(src);
  if (decl) i = decl[0].length;
  const root: Element = { name: "#document", attrs: {}, children: [], text: "" };
  const stack: Element[] = [root];
  const checkText = (t: string) => {
    if (/<|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(t))
      throw new Error(`bad text ${JSON.stringify(t)}`);
  };
  while (i < src.length) {
    const lt = src.indexOf("<", i);
    const text = src.slice(i, lt < 0 ? src.length : lt);
    checkText(text);
    stack.at(-1)!.text += text;
    if (lt < 0) break;
    const gt = src.indexOf(">", lt);
    if (gt < 0) throw new Error("unterminated tag");
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const open = stack.pop()!;
      if (open.name !== tag.slice(1)) throw new Error(`</${tag.slice(1)}> closes <${open.name}>`);
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z][\w:-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*$/.exec(body);
    if (!m) throw new Error(`bad tag <${tag}>`);
    const el: Element = { name: m[1]!, attrs: {}, children: [], text: "" };
    for (const a of m[2]!.matchAll(/([A-Za-z_:][\w:.-]*)="([^"]*)"/g)) {
      if (a[1]! in el.attrs) throw new Error(`duplicate attribute ${a[1]}`);
      checkText(a[2]!);
      el.attrs[a[1]!] = a[2]!;
    }
    stack.at(-1)!.children.push(el);
    if (!selfClosing) stack.push(el);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack.at(-1)!.name}>`);
  if (root.text.trim() !== "") throw new Error("text outside the root");
  if (root.children.length !== 1) throw new Error(`${root.children.length} root elements`);
  return root.children[0]!;
}

function all(el: Element, pred: (e: Element) => boolean): Element[] {
  return [...(pred(el) ? [el] : []), ...el.children.flatMap((c) => all(c, pred))];
}
const byClass = (root: Element, cls: string) =>
  all(root, (e) => (e.attrs.class ?? "").split(" ").includes(cls));
const textOf = (el: Element): string => el.text + el.children.map(textOf).join("");

/** The subpaths of a path's `d`, each a list of [x, y]. */
function subpaths(d: string): [number, number][][] {
  const out: [number, number][][] = [];
  for (const m of d.matchAll(/([ML])(-?[\d.]+),(-?[\d.]+)/g)) {
    if (m[1] === "M") out.push([]);
    out.at(-1)!.push([Number(m[2]), Number(m[3])]);
  }
  return out;
}

/** The loss a y coordinate stands for, read off the y axis' tick labels. */
function lossAt(root: Element, y: number): number {
  const ticks = byClass(root, "y-ticks")[0]!.children.map((t) => ({
    value: Number(t.attrs["data-value"]),
    y: Number(t.attrs.y) - 4,
  }));
  const [a, b] = [ticks[0]!, ticks.at(-1)!];
  return a.value + ((y - a.y) / (b.y - a.y)) * (b.value - a.value);
}

const validator: LossSeries = {
  label: "validator",
  weight: "main",
  points: [5.6, 5.1, 4.7, 4.4, 4.2].map((loss, round) => ({ round, loss })),
};
const miner: LossSeries = {
  label: "miner-1",
  points: [4.3, 4.0, 3.9, 3.6, 3.5].map((loss, round) => ({ round, loss })),
};

test("one well-formed <svg> root with a title, both axis labels, ticks and a legend entry per series", () => {
  const svg = lossChart([validator, miner], {
    title: "llama3-tiny <3 miners> & a validator",
    subtitle: "2026-12-01",
    notes: ["what each line measures"],
    rounds: 30,
    xLabel: "round",
    yLabel: "loss (nats per token)",
  });
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg '));
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
  const root = parseXml(svg);
  assert.equal(root.name, "svg");
  assert.equal(root.attrs.xmlns, "http://www.w3.org/2000/svg");
  assert.match(root.attrs.viewBox!, /^0 0 \d+ \d+$/);
  assert.equal(textOf(byClass(root, "title")[0]!), "llama3-tiny &#60;3 miners&#62; &#38; a validator");
  assert.equal(textOf(byClass(root, "x-label")[0]!), "round");
  assert.equal(textOf(byClass(root, "y-label")[0]!), "loss (nats per token)");
  assert.ok(byClass(root, "subtitle").length === 1 && byClass(root, "note").length === 1);
  assert.ok(byClass(root, "y-ticks")[0]!.children.length >= 3);
  // The x axis spans the whole run (rounds 0 to 29) though only 5 rounds have data.
  const xt = byClass(root, "x-ticks")[0]!.children.map((t) => Number(textOf(t)));
  assert.equal(xt[0], 0);
  assert.ok(xt.at(-1)! >= 29 && xt.every((v) => Number.isInteger(v)));
  const legend = byClass(root, "legend")[0]!.children.filter((c) => c.name === "text");
  assert.match(textOf(legend[0]!), /^validator 4\.200/);
  assert.match(textOf(legend[1]!), /^miner-1 3\.500/);
});

test("a path per series whose points map the data into the plot box, the lowest loss lowest", () => {
  const svg = lossChart([validator, miner], { title: "t", rounds: 5 });
  const root = parseXml(svg);
  const paths = all(root, (e) => e.name === "path");
  assert.deepEqual(paths.map((p) => p.attrs["data-label"]).sort(), ["miner-1", "validator"]);
  const rect = byClass(root, "plot-area")[0]!.attrs;
  const box = { x: Number(rect.x), y: Number(rect.y), w: Number(rect.width), h: Number(rect.height) };
  assert.deepEqual(
    { x: box.x, y: box.y, w: box.w, h: box.h },
    (({ left, top, width, height }) => ({ x: left, y: top, w: width, h: height }))(plotBox({})),
  );
  for (const series of [validator, miner]) {
    const path = paths.find((p) => p.attrs["data-label"] === series.label)!;
    const [pts, ...rest] = subpaths(path.attrs.d!);
    assert.equal(rest.length, 0);
    assert.equal(pts!.length, series.points.length);
    for (const [k, [x, y]] of pts!.entries()) {
      assert.ok(x >= box.x && x <= box.x + box.w && y >= box.y && y <= box.y + box.h, `${x},${y} outside`);
      // Rounds left to right, evenly; losses read back off the axis within a coordinate's rounding.
      if (k > 0) assert.ok(Math.abs(x - pts![k - 1]![0] - (pts![1]![0] - pts![0]![0])) < 0.02);
      assert.ok(Math.abs(lossAt(root, y) - series.points[k]!.loss) < 0.01, `${lossAt(root, y)}`);
    }
    // Losses fall, so the line goes down the page: y grows.
    assert.ok(pts!.every(([, y], k) => k === 0 || y > pts![k - 1]![1]));
  }
  // The lowest loss of all (the miner's last) is the lowest point drawn, the highest the highest.
  const ys = paths.flatMap((p) =>
    subpaths(p.attrs.d!)
      .flat()
      .map(([, y]) => y),
  );
  const minerLast = subpaths(paths.find((p) => p.attrs["data-label"] === "miner-1")!.attrs.d!)[0]!.at(-1)!;
  assert.equal(Math.max(...ys), minerLast[1]);
  const validatorFirst = subpaths(paths.find((p) => p.attrs["data-label"] === "validator")!.attrs.d!)[0]![0]!;
  assert.equal(Math.min(...ys), validatorFirst[1]);
  // The main series has a marker per point.
  assert.equal(byClass(root, "markers").flatMap((g) => g.children).length, validator.points.length);
});

test("NaN and infinite losses are left out and break the line; a lone point is a dot", () => {
  const gappy: LossSeries = {
    label: "validator",
    weight: "main",
    points: [
      { round: 0, loss: NaN },
      { round: 1, loss: 5 },
      { round: 2, loss: 4.5 },
      { round: 3, loss: NaN },
      { round: 4, loss: 4 },
      { round: 5, loss: Infinity },
      { round: 7, loss: 3.8 },
      { round: 8, loss: 3.7 },
    ],
  };
  const lone: LossSeries = { label: "miner-2", points: [{ round: 3, loss: 4.1 }] };
  const svg = lossChart([gappy, lone], { title: "gaps", rounds: 10 });
  assert.doesNotMatch(svg, /NaN|Infinity/);
  const root = parseXml(svg);
  const paths = all(root, (e) => e.name === "path");
  const d = (label: string) => paths.find((p) => p.attrs["data-label"] === label)!.attrs.d!;
  assert.deepEqual(
    subpaths(d("validator")).map((s) => s.length),
    [2, 1, 2],
  );
  assert.equal(subpaths(d("miner-2")).length, 1);
  // The lone miner point gets a dot of its own (the main series has dots anyway).
  const dots = byClass(root, "markers").map((g) => g.children.length);
  assert.deepEqual(dots.sort(), [1, 5]);
});

test("a single point, a flat series, no data at all: still a chart with finite coordinates", () => {
  for (const series of [
    [{ label: "validator", weight: "main" as const, points: [{ round: 0, loss: 5.5 }] }],
    [{ label: "flat", points: [0, 1, 2].map((round) => ({ round, loss: 3 })) }],
    [{ label: "none", points: [] }],
    [{ label: "not finite", points: [{ round: 0, loss: NaN }] }],
    [],
  ]) {
    const svg = lossChart(series, { title: "edge", rounds: 1 });
    assert.doesNotMatch(svg, /NaN|Infinity/, JSON.stringify(series));
    const root = parseXml(svg);
    assert.equal(root.name, "svg");
    const withData = series.filter((s) => s.points.some((p) => Number.isFinite(p.loss)));
    assert.equal(all(root, (e) => e.name === "path").length, withData.length);
    if (withData.length === 0) assert.equal(byClass(root, "empty").length, 1);
    for (const p of all(root, (e) => e.name === "path"))
      for (const [x, y] of subpaths(p.attrs.d!).flat()) assert.ok(Number.isFinite(x) && Number.isFinite(y));
  }
});

test("the same input gives the same bytes", () => {
  const o = { title: "t", subtitle: "s", rounds: 30 };
  assert.equal(lossChart([validator, miner], o), lossChart([validator, miner], o));
});

test("nice ticks cover the range with 1, 2 or 5 steps", () => {
  assert.deepEqual(niceTicks(0, 29, 8, true), [0, 5, 10, 15, 20, 25, 30]);
  assert.deepEqual(niceTicks(0, 4, 8, true), [0, 1, 2, 3, 4]);
  assert.deepEqual(niceTicks(3.46, 5.71, 6), [3, 3.5, 4, 4.5, 5, 5.5, 6]);
  assert.deepEqual(niceTicks(0, 0, 10, true), [0, 1]);
  assert.deepEqual(niceTicks(0.1, 0.3, 2), [0.1, 0.2, 0.3]);
});

test("the parser in this test refuses what is not well-formed", () => {
  for (const bad of [
    "<svg><g></svg>",
    "<svg></svg><svg></svg>",
    "<svg>a < b</svg>",
    "<svg>AT&T</svg>",
    '<svg a="1" a="2"/>',
    "<svg><path d=x/></svg>",
  ])
    assert.throws(() => parseXml(bad), Error, bad);
  assert.equal(parseXml('<svg a="1"><g>x &amp; y</g></svg>').children[0]!.text, "x &amp; y");
});
