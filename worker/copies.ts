// Copy detection, pure: which submissions of a round reuse what earlier submissions sent.
//
// Index overlap alone is both too strict and too lax: honest peers share many top-k indices
// (similar gradients), so the union of many honest payloads covers much of any later one,
// while a copier dodges a per-pair index threshold by moving indices or stitching pieces of
// several payloads. What honest peers never share is their *values*: every payload's values
// are its own 4-level per-tensor codebook (2-bit quantization, statistics from its own
// update), so two independent payloads practically never agree on them. A coordinate of a
// later payload counts as explained by the earlier ones when
//  - (value reuse) its exact value appears among an earlier payload's values of the same
//    tensor, at any index: verbatim copies, moved indices, whole tensors taken from others;
//  - (level map) at indices it shares with an earlier payload, its value is a function of
//    that payload's value (a group of >= minGroup shared coordinates with one earlier level
//    maps to one level of this payload, purity >= groupPurity): rescaled or re-quantized
//    copies and stitches of several payloads inside one tensor. Honest payloads spread each
//    earlier level over several of their own.
// The explained share of a payload's |value| mass, against ALL earlier submissions of the
// round together, is compared with the threshold; the later uploader (by the bus's stored
// time, the same for every cluster; stream sequence breaks ties) is the copier.
import type { Tensors } from "./kernels.ts";

export interface CopyParams {
  /** Share of a payload's |value| mass explained by earlier payloads that makes it a copy. */
  threshold: number;
  /** Smallest group of shared coordinates whose level map is trusted. */
  minGroup: number;
  /** Share of a group that must map to one level. */
  groupPurity: number;
}

export const defaultCopyParams: CopyParams = { threshold: 0.4, minGroup: 32, groupPurity: 0.99 };

/** One tensor of a payload: ascending kept indices and their (nonzero) values. */
interface SparseTensor {
  size: number;
  idx: Uint32Array;
  val: Float32Array;
}

export type Sparse = SparseTensor[];

/** The kept coordinates of a dense reconstruction (its nonzeros), tensor by tensor. */
export function sparsify(dense: Tensors): Sparse {
  return dense.map((t) => {
    let n = 0;
    for (let i = 0; i < t.length; i++) if (t[i] !== 0) n++;
    const idx = new Uint32Array(n);
    const val = new Float32Array(n);
    let o = 0;
    for (let i = 0; i < t.length; i++)
      if (t[i] !== 0) {
        idx[o] = i;
        val[o++] = t[i]!;
      }
    return { size: t.length, idx, val };
  });
}

/** Marks in `hit` the coordinates of `p` whose value is one of `e`'s values (any index). */
function valueReuse(p: SparseTensor, e: SparseTensor, hit: Uint8Array): void {
  if (e.val.length === 0) return;
  const values = new Set(e.val);
  for (let j = 0; j < p.val.length; j++) if (values.has(p.val[j]!)) hit[j] = 1;
}

/** Marks in `hit` the shared coordinates of `p` that follow a pure level map from `e`. */
function levelMap(p: SparseTensor, e: SparseTensor, o: CopyParams, hit: Uint8Array): void {
  // Where every coordinate is kept (1-D tensors go dense), sharing an index says nothing.
  if (p.idx.length === p.size || e.idx.length === e.size) return;
  // Shared coordinates grouped by e's value: positions in p and p's values.
  const groups = new Map<number, { at: number[]; counts: Map<number, number> }>();
  let i = 0;
  let j = 0;
  while (i < e.idx.length && j < p.idx.length) {
    if (e.idx[i]! === p.idx[j]!) {
      const w = e.val[i]!;
      let g = groups.get(w);
      if (!g) groups.set(w, (g = { at: [], counts: new Map() }));
      g.at.push(j);
      const v = p.val[j]!;
      g.counts.set(v, (g.counts.get(v) ?? 0) + 1);
      i++;
      j++;
    } else if (e.idx[i]! < p.idx[j]!) i++;
    else j++;
  }
  for (const g of groups.values()) {
    if (g.at.length < o.minGroup) continue;
    let best = 0;
    let top = 0;
    for (const [v, c] of g.counts) if (c > top) [best, top] = [v, c];
    if (top / g.at.length < o.groupPurity) continue;
    for (const at of g.at) if (p.val[at] === best) hit[at] = 1;
  }
}

/** Share of `p`'s |value| mass explained by the earlier payloads together, in [0, 1]. */
export function explainedShare(
  p: Sparse,
  earlier: readonly Sparse[],
  o: CopyParams = defaultCopyParams,
): number {
  let total = 0;
  let explained = 0;
  for (const [t, pt] of p.entries()) {
    const hit = new Uint8Array(pt.val.length);
    for (const e of earlier) {
      const et = e[t];
      if (!et) continue;
      valueReuse(pt, et, hit);
      levelMap(pt, et, o, hit);
    }
    for (let j = 0; j < pt.val.length; j++) {
      const m = Math.abs(pt.val[j]!);
      total += m;
      if (hit[j]) explained += m;
    }
  }
  return total > 0 ? explained / total : 0;
}

export interface Submission {
  hotkey: string;
  /** When the bus stored the announcement (every cluster reads the same). */
  storedMs: number;
  /** Stream sequence: the tie-break for equal times. */
  seq: number;
  payload: Sparse;
}

export interface CopyFinding {
  /** Share of the copier's mass explained by earlier submissions. */
  share: number;
  /** The earlier submitters, in upload order. */
  earlier: string[];
}

/**
 * Every submission's explained share against all earlier ones (copiers included: copying a
 * copy is copying), with the earlier submitters, in upload order.
 */
export function copyShares(
  subs: readonly Submission[],
  o: CopyParams = defaultCopyParams,
): Map<string, CopyFinding> {
  const sorted = [...subs].sort((a, b) => a.storedMs - b.storedMs || a.seq - b.seq);
  const out = new Map<string, CopyFinding>();
  for (let k = 0; k < sorted.length; k++) {
    const earlier = sorted.slice(0, k);
    out.set(sorted[k]!.hotkey, {
      share: explainedShare(
        sorted[k]!.payload,
        earlier.map((s) => s.payload),
        o,
      ),
      earlier: earlier.map((s) => s.hotkey),
    });
  }
  return out;
}

/** The copiers of the round: explained share at or above the threshold. */
export function findCopies(
  subs: readonly Submission[],
  o: CopyParams = defaultCopyParams,
): Map<string, CopyFinding> {
  return new Map([...copyShares(subs, o)].filter(([, f]) => f.share >= o.threshold));
}
