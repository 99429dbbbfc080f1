/** Test helpers of the runtime (not used by the operator itself). */
import type { Clock } from "./ratelimit.ts";

/** A clock that only moves when told to; `sleep` moves it by the time slept, at once. */
export class FakeClock implements Clock {
  t = 0;
  /** Every sleep asked for, in milliseconds. */
  readonly slept: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.slept.push(ms);
    this.t += ms;
  }
}
