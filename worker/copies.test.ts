import assert from "node:assert/strict";
import { test } from "node:test";
import { explainedShare, findCopies, sparsify } from "./copies.ts";
import type { Sparse, Submission } from "./copies.ts";

// Payloads built the way SparseLoCo builds them: per chunk the top-k coordinates by
// magnitude, then per tensor 2-bit quantization (4 bins around the mean, a codebook of the
// mean value of each bin). Honest peers see one common gradient plus their own noise.

const CHUNK = 256;
const K = 16;
const SIZES = [4096, 4096, 2048];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

/** Top-k per chunk of a dense tensor: the kept positions. */
function topk(t: Float32Array): number[] {
  const kept: number[] = [];
  for (let c = 0; c < t.length; c += CHUNK) {
    const ids = Array.from({ length: CHUNK }, (_, i) => c + i).sort(
      (a, b) => Math.abs(t[b]!) - Math.abs(t[a]!),
    );
    kept.push(...ids.slice(0, K));
  }
  return kept.sort((a, b) => a - b);
}

/** 2-bit quantization of the values at `kept` (per tensor), as a dense reconstruction. */
function quantize(size: number, kept: number[], values: number[]): Float32Array {
  const n = values.length;
  const shift = values.reduce((a, b) => a + b, 0) / n;
  const c = values.map((v) => v - shift);
  const sigma = Math.sqrt(c.reduce((a, b) => a + b * b, 0) / (n - 1));
  const scale = (6 * sigma) / 4;
  const code = c.map((x) => Math.min(3, Math.max(0, Math.round(x / scale + 2))));
  const sums = [0, 0, 0, 0];
  const counts = [0, 0, 0, 0];
  code.forEach((q, i) => {
    sums[q]! += c[i]!;
    counts[q]!++;
  });
  const book = sums.map((s, q) => (counts[q] ? s / counts[q]! : 0));
  const out = new Float32Array(size);
  kept.forEach((at, i) => (out[at] = book[code[i]!]! + shift || 1e-9));
  return out;
}

const common = SIZES.map((n, t) => {
  const r = rng(1000 + t);
  return Float32Array.from({ length: n }, () => gauss(r));
});

/** An honest payload: the common gradient plus `noise` x its own, top-k, quantized. */
function honest(seed: number, noise = 1): Float32Array[] {
  const r = rng(seed);
  return common.map((g) => {
    const mine = g.map((x) => x + noise * gauss(r));
    const kept = topk(mine);
    return quantize(
      mine.length,
      kept,
      kept.map((i) => mine[i]!),
    );
  });
}

/** Re-encodes a dense reconstruction (scaled by `factor`) through top-k and quantization. */
function reencode(dense: Float32Array[], factor = 1): Float32Array[] {
  return dense.map((t) => {
    const kept = topk(t);
    return quantize(
      t.length,
      kept,
      kept.map((i) => t[i]! * factor),
    );
  });
}

const sub = (hotkey: string, storedMs: number, dense: Float32Array[], seq = storedMs): Submission => ({
  hotkey,
  storedMs,
  seq,
  payload: sparsify(dense),
});

test("independent honest payloads are not copies, even against many earlier ones together", () => {
  // noise 1: peers' updates correlate about 0.7. (At about 0.9 the level map starts to see
  // honest peers as copies of each other: docs/security.md, limits.)
  for (const noise of [1, 2]) {
    const subs = Array.from({ length: 12 }, (_, i) => sub(`h${i}`, i, honest(i + 1, noise)));
    const shares = subs.map((s, k) =>
      explainedShare(
        s.payload,
        subs.slice(0, k).map((e) => e.payload),
      ),
    );
    // Measured: at most about 0.15 with 12 strongly correlated peers; the threshold is 0.4.
    assert.ok(Math.max(...shares) < 0.25, `noise ${noise}: honest shares ${shares.map((x) => x.toFixed(3))}`);
    assert.equal(findCopies(subs).size, 0);
  }
});

test("a verbatim copy is the later uploader's, by stored time then sequence", () => {
  const a = honest(1);
  const copies = findCopies([sub("copier", 20, a), sub("orig", 10, a), sub("other", 15, honest(2))]);
  assert.deepEqual([...copies.keys()], ["copier"]);
  assert.equal(copies.get("copier")!.share, 1);
  // Same stored time: the stream sequence decides.
  assert.deepEqual([...findCopies([sub("x", 5, a, 2), sub("y", 5, a, 1)]).keys()], ["x"]);
});

test("a copy with most indices moved is caught by its reused values", () => {
  const a = honest(1);
  const r = rng(7);
  const moved = a.map((t) => {
    const out = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) {
      if (t[i] === 0) continue;
      // 80% of the kept values go to another free position of the same chunk.
      let at = i;
      if (r() < 0.8) {
        const base = i - (i % CHUNK);
        do at = base + Math.floor(r() * CHUNK);
        while (t[at] !== 0 || out[at] !== 0);
      }
      out[at] = t[i]!;
    }
    return out;
  });
  const s = [sub("h", 1, a), sub("h2", 2, honest(2)), sub("moved", 3, moved)];
  assert.deepEqual([...findCopies(s).keys()], ["moved"]);
});

test("a rescaled, re-quantized copy is caught by its level map", () => {
  const a = honest(1);
  const s = [sub("h", 1, a), sub("h2", 2, honest(2)), sub("scaled", 3, reencode(a, 1.37))];
  const f = findCopies(s);
  assert.deepEqual([...f.keys()], ["scaled"]);
  assert.ok(f.get("scaled")!.share > 0.9);
});

test("a payload stitched from several honest peers is caught against them together", () => {
  const peers = [honest(1), honest(2), honest(3)];
  // Each chunk from a different peer; the stitch is re-quantized as one payload.
  const stitched = reencode(
    SIZES.map((n, t) => {
      const out = new Float32Array(n);
      for (let c = 0; c < n; c += CHUNK) {
        const from = peers[(c / CHUNK) % peers.length]![t]!;
        out.set(from.subarray(c, c + CHUNK), c);
      }
      return out;
    }),
  );
  const earlier = peers.map((p, i) => sub(`h${i}`, i, p));
  // Against any one peer it is explained by a third at most: under the threshold.
  for (const e of earlier) assert.ok(explainedShare(sparsify(stitched), [e.payload]) < 0.4);
  const f = findCopies([...earlier, sub("stitch", 9, stitched)]);
  assert.deepEqual([...f.keys()], ["stitch"]);
  assert.ok(f.get("stitch")!.share > 0.5, `share ${f.get("stitch")!.share}`);
});

test("an empty (all-zero) payload explains nothing and is not a copy", () => {
  const zeros: Sparse = sparsify(SIZES.map((n) => new Float32Array(n)));
  assert.equal(explainedShare(zeros, [sparsify(honest(1))]), 0);
});
