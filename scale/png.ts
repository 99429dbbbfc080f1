// A dependency-free PNG line chart: RGB pixels, one IDAT through node:zlib, a 3x5 pixel font
// for the labels. Enough for the simulator's plot, so `make simulate` needs nothing installed.
import { deflateSync } from "node:zlib";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** PNG bytes of an RGB image (3 bytes per pixel, rows top to bottom). */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// 3x5 glyphs, rows top to bottom, 3 bits each (4 = left column).
const FONT: Record<string, number[]> = {
  "0": [7, 5, 5, 5, 7],
  "1": [2, 6, 2, 2, 7],
  "2": [7, 1, 7, 4, 7],
  "3": [7, 1, 7, 1, 7],
  "4": [5, 5, 7, 1, 1],
  "5": [7, 4, 7, 1, 7],
  "6": [7, 4, 7, 5, 7],
  "7": [7, 1, 1, 1, 1],
  "8": [7, 5, 7, 5, 7],
  "9": [7, 5, 7, 1, 7],
  ".": [0, 0, 0, 0, 2],
  "%": [5, 1, 2, 4, 5],
  "/": [1, 1, 2, 4, 4],
  "(": [2, 4, 4, 4, 2],
  ")": [2, 1, 1, 1, 2],
  "-": [0, 0, 7, 0, 0],
  ":": [0, 2, 0, 2, 0],
  " ": [0, 0, 0, 0, 0],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [7, 4, 4, 4, 7],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [7, 4, 5, 5, 7],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [7, 5, 5, 5, 7],
  P: [7, 5, 7, 4, 4],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
};

export type Rgb = readonly [number, number, number];

export class Canvas {
  readonly rgb: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgb = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.rgb.set(c, (y * this.width + x) * 3);
  }
  /** A line `thick` pixels wide (DDA: simple, good enough at chart scale). */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thick = 1): void {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let dx = 0; dx < thick; dx++) for (let dy = 0; dy < thick; dy++) this.set(x + dx, y + dy, c);
    }
  }
  text(x: number, y: number, s: string, c: Rgb, scale = 2): void {
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT[" "]!;
      g.forEach((row, ry) => {
        for (let rx = 0; rx < 3; rx++)
          if (row & (4 >> rx))
            for (let a = 0; a < scale; a++)
              for (let b = 0; b < scale; b++) this.set(x + rx * scale + a, y + ry * scale + b, c);
      });
      x += 4 * scale;
    }
  }
  png(): Buffer {
    return encodePng(this.width, this.height, this.rgb);
  }
}

export interface Series {
  label: string;
  color: Rgb;
  points: readonly (readonly [number, number])[];
}

/** A line chart with a log-scale x axis (bandwidth spans two decades) and a linear y axis. */
export function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  xTicks: readonly number[];
  yMin: number;
  yMax: number;
  yTicks: readonly number[];
  series: readonly Series[];
  format: (y: number) => string;
}): Buffer {
  const [w, h] = [800, 500];
  const [left, right, top, bottom] = [80, 20, 50, 60];
  const cv = new Canvas(w, h);
  const [x0, x1] = [Math.log10(o.xTicks[0]!), Math.log10(o.xTicks[o.xTicks.length - 1]!)];
  const px = (x: number) => left + ((Math.log10(x) - x0) / (x1 - x0)) * (w - left - right);
  const py = (y: number) => h - bottom - ((y - o.yMin) / (o.yMax - o.yMin)) * (h - top - bottom);
  const grey: Rgb = [200, 200, 200];
  const black: Rgb = [0, 0, 0];
  for (const t of o.xTicks) {
    cv.line(px(t), top, px(t), h - bottom, grey);
    cv.text(px(t) - 8, h - bottom + 8, String(t), black);
  }
  for (const t of o.yTicks) {
    cv.line(left, py(t), w - right, py(t), grey);
    cv.text(8, py(t) - 5, o.format(t), black);
  }
  cv.line(left, h - bottom, w - right, h - bottom, black, 2);
  cv.line(left, top, left, h - bottom, black, 2);
  cv.text(left, 12, o.title, black, 3);
  cv.text(w / 2 - 80, h - 24, o.xLabel, black);
  cv.text(8, top - 18, o.yLabel, black);
  o.series.forEach((s, i) => {
    for (let k = 1; k < s.points.length; k++) {
      const [a, b] = [s.points[k - 1]!, s.points[k]!];
      cv.line(px(a[0]), py(Math.max(o.yMin, a[1])), px(b[0]), py(Math.max(o.yMin, b[1])), s.color, 3);
    }
    // Legend in the lower right, where utilisation curves (rising to the right) do not go.
    const ly = h - bottom - 20 - (o.series.length - i) * 18;
    cv.line(w - right - 260, ly + 4, w - right - 230, ly + 4, s.color, 3);
    cv.text(w - right - 222, ly, s.label, black);
  });
  return cv.png();
}
