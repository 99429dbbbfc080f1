// A flow-level network: transfers share links by max-min fairness (what TCP flows converge to,
// roughly), rates recomputed whenever a transfer starts or ends. Packets are not simulated:
// a 2 GB payload is one flow, so a 72B round of a few hundred transfers costs milliseconds.

export interface Flow {
  id: number;
  path: readonly string[];
  bytes: number;
  remaining: number;
  rate: number;
  /** Added after the last byte: one-way latency of the path. */
  latency: number;
  done: (at: number) => void;
}

/** Max-min fair rates by progressive filling; links missing from `capacity` are unbounded. */
export function maxMinRates(flows: readonly Flow[], capacity: ReadonlyMap<string, number>): void {
  const left = new Map<string, number>();
  const open = new Set(flows);
  for (const f of flows) {
    f.rate = Infinity;
    for (const l of f.path) if (!left.has(l)) left.set(l, capacity.get(l) ?? Infinity);
  }
  while (open.size > 0) {
    const count = new Map<string, number>();
    for (const f of open) for (const l of f.path) count.set(l, (count.get(l) ?? 0) + 1);
    let bottleneck: string | undefined;
    let share = Infinity;
    for (const [l, n] of count) {
      const s = left.get(l)! / n;
      if (s < share) [share, bottleneck] = [s, l];
    }
    if (bottleneck === undefined) break; // the rest cross only unbounded links
    for (const f of [...open]) {
      if (!f.path.includes(bottleneck)) continue;
      f.rate = share;
      open.delete(f);
      for (const l of f.path) left.set(l, left.get(l)! - share);
    }
  }
}

/** A discrete-event clock with timers and flows; deterministic (ties broken by insertion order). */
export class Network {
  now = 0;
  readonly carried = new Map<string, number>();
  #timers: { at: number; seq: number; fn: () => void }[] = [];
  #flows: Flow[] = [];
  #seq = 0;
  #dirty = false;

  constructor(readonly capacity: ReadonlyMap<string, number>) {}

  at(time: number, fn: () => void): void {
    this.#timers.push({ at: Math.max(time, this.now), seq: this.#seq++, fn });
  }

  /** Starts a transfer now; `done` fires when its last byte has arrived plus the latency. */
  transfer(path: readonly string[], bytes: number, latency: number, done: (at: number) => void): void {
    for (const l of path) this.carried.set(l, (this.carried.get(l) ?? 0) + bytes);
    if (bytes <= 0) {
      this.at(this.now + latency, () => done(this.now));
      return;
    }
    this.#flows.push({ id: this.#seq++, path, bytes, remaining: bytes, rate: 0, latency, done });
    this.#dirty = true;
  }

  /** Runs until nothing is pending or `until` is passed. */
  run(until = Infinity): void {
    for (;;) {
      if (this.#dirty) {
        maxMinRates(this.#flows, this.capacity);
        this.#dirty = false;
      }
      let next = Infinity;
      for (const f of this.#flows) next = Math.min(next, this.now + f.remaining / f.rate);
      let timer = -1;
      for (let i = 0; i < this.#timers.length; i++) {
        const t = this.#timers[i]!;
        const best = this.#timers[timer];
        if (t.at <= next && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) timer = i;
      }
      const at = timer >= 0 ? this.#timers[timer]!.at : next;
      if (at === Infinity || at > until) return;
      const dt = at - this.now;
      this.now = at;
      const finished: Flow[] = [];
      for (const f of this.#flows) {
        f.remaining -= f.rate === Infinity ? f.remaining : f.rate * dt;
        // Relative tolerance: flows that end together must end in the same step.
        if (f.remaining <= f.bytes * 1e-9) finished.push(f);
      }
      if (finished.length > 0) {
        this.#flows = this.#flows.filter((f) => !finished.includes(f));
        this.#dirty = true;
        for (const f of finished) this.at(this.now + f.latency, () => f.done(this.now));
      }
      if (timer >= 0 && this.#timers[timer]!.at === at && finished.length === 0) {
        const [t] = this.#timers.splice(timer, 1);
        t!.fn();
      }
    }
  }
}
