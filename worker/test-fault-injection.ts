// TEST FAULT INJECTION ONLY. Turns a miner into one of the adversaries of the adversarial
// suite (e2e/adversarial): it trains on its own data like any miner, then corrupts its
// pseudo-gradient before compression. Off unless the environment variable
// COVENANT_TEST_FAULT_INJECTION is set; never set by the operator, the chart or the image.
// Values: sign-flip | noise | scale:F | zeros | lazy:STEPS | turn:ROUND:FAULT
// (honest before ROUND, then FAULT).
import type { Tensors } from "./kernels.ts";

export const FAULT_ENV = "COVENANT_TEST_FAULT_INJECTION";

export type Fault =
  | { kind: "sign-flip" }
  | { kind: "noise" }
  | { kind: "scale"; factor: number }
  | { kind: "zeros" }
  | { kind: "lazy"; steps: number }
  | { kind: "turn"; round: number; then: Fault };

export function parseFault(s: string | undefined): Fault | undefined {
  if (!s) return undefined;
  const [kind, a, ...rest] = s.split(":");
  if (kind === "sign-flip" || kind === "noise" || kind === "zeros") return { kind };
  if (kind === "scale" && Number.isFinite(Number(a))) return { kind, factor: Number(a) };
  if (kind === "lazy" && Number.isInteger(Number(a)) && Number(a) >= 1) return { kind, steps: Number(a) };
  if (kind === "turn" && Number.isInteger(Number(a))) {
    const then = parseFault(rest.join(":"));
    if (then && then.kind !== "turn") return { kind, round: Number(a), then };
  }
  throw new Error(`${FAULT_ENV}: unknown fault ${JSON.stringify(s)}`);
}

/** The fault in force for `round` (a turncoat is honest before its round). */
export function faultAt(f: Fault | undefined, round: number): Fault | undefined {
  if (f?.kind !== "turn") return f;
  return round >= f.round ? f.then : undefined;
}

/** Inner steps the faulty miner runs instead of H. */
export function stepsUnder(f: Fault | undefined, h: number): number {
  return f?.kind === "lazy" ? Math.min(h, f.steps) : h;
}

/** The corrupted pseudo-gradient (in place). Deterministic per round for the noise. */
export function corrupt(f: Fault | undefined, deltas: Tensors, round: number): void {
  if (!f) return;
  let seed = (round * 2654435761) >>> 0 || 1;
  const uniform = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) + 0.5) / 4294967296;
  };
  for (const d of deltas) {
    if (f.kind === "sign-flip") for (let i = 0; i < d.length; i++) d[i] = -d[i]!;
    else if (f.kind === "scale") for (let i = 0; i < d.length; i++) d[i] = d[i]! * f.factor;
    else if (f.kind === "zeros") d.fill(0);
    else if (f.kind === "noise") {
      // Gaussian noise with the norm of the honest update it replaces.
      let norm = 0;
      for (let i = 0; i < d.length; i++) norm += d[i]! * d[i]!;
      let n2 = 0;
      for (let i = 0; i < d.length; i++) {
        d[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
        n2 += d[i]! * d[i]!;
      }
      const k = n2 > 0 ? Math.sqrt(norm / n2) : 0;
      for (let i = 0; i < d.length; i++) d[i] = d[i]! * k;
    }
  }
}
