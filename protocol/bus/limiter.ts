// Back-pressure and deadlines for bus operations: a byte budget shared by all
// transfers of a client (a transfer waits while too many bytes are in flight), and
// a timeout that names what timed out.

export class ByteBudget {
  #inFlight = 0;
  #waiters: { bytes: number; wake: () => void }[] = [];

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)
      throw new Error(`byte budget ${maxBytes} must be a positive integer`);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Waits until `bytes` fit (a transfer larger than the budget runs alone), then holds them. */
  async acquire(bytes: number): Promise<() => void> {
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#inFlight += bytes;
    } else {
      // #drain adds the bytes when it wakes this waiter.
      await new Promise<void>((wake) => this.#waiters.push({ bytes, wake }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= bytes;
      this.#drain();
    };
  }

  /** Holds `bytes` around `fn`. */
  async with<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(bytes);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #fits(bytes: number): boolean {
    return this.#inFlight === 0 || this.#inFlight + bytes <= this.maxBytes;
  }

  #drain(): void {
    // First come, first served: a large transfer is not starved by small ones.
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const w = this.#waiters.shift()!;
      this.#inFlight += w.bytes;
      w.wake();
    }
  }
}

export class TimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what} timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** Rejects with a TimeoutError naming `what` when `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
