// Follows one run on the gradient bus: the validators' selections (one subject per
// round and validator) and the membership the workers adopt. Reads only.
import { DeliverPolicy, jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/transport-node";
import { busNames, stateKeys } from "../protocol/names.ts";
import { selectionRound, type BusProgress } from "./plan.ts";

export class BusProgressWatcher {
  readonly progress: BusProgress = {};
  #messages: ConsumerMessages | undefined;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly run: string,
    private readonly onChange: () => void,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    const names = busNames(this.run);
    const js = jetstream(this.nc);
    // The last message of every selection subject first, then new ones as they land.
    const consumer = await js.consumers.get(names.stream, {
      filter_subjects: [`covenant.${this.run}.round.*.selection.*`],
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    this.#messages = await consumer.consume();
    void this.#follow(this.#messages, (m) => {
      const round = selectionRound(m.subject, this.run);
      if (round === undefined || round <= (this.progress.lastSelectedRound ?? -1)) return;
      this.progress.previousSelectedAt = this.progress.lastSelectedAt;
      this.progress.lastSelectedRound = round;
      this.progress.lastSelectedAt = new Date(Number(m.info.timestampNanos) / 1e6);
      this.onChange();
    });
    const kv = await new Kvm(js).open(names.stateBucket);
    this.#watch = await kv.watch({ key: stateKeys.membership });
    void this.#follow(this.#watch, (e) => {
      if (e.operation !== "PUT") return;
      try {
        const m = JSON.parse(e.string()) as { epoch?: unknown; members?: unknown };
        if (
          typeof m.epoch === "number" &&
          Array.isArray(m.members) &&
          m.members.every((x) => typeof x === "string")
        ) {
          this.progress.membership = { epoch: m.epoch, members: m.members as string[] };
          this.onChange();
        }
      } catch (err) {
        this.onError(err);
      }
    });
  }

  async #follow<T>(it: AsyncIterable<T>, each: (x: T) => void): Promise<void> {
    try {
      for await (const x of it) each(x);
    } catch (err) {
      if (!this.#stopped) this.onError(err);
    }
  }

  stop(): void {
    this.#stopped = true;
    void this.#messages?.close();
    this.#watch?.stop();
  }
}
