// Follows one run on the gradient bus: the validators' selections (one subject per
// round and validator), the peers' announcements and heartbeats, and the membership the
// workers adopt. Reads only.
import { DeliverPolicy, jetstream, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseMembership } from "../../protocol/membership.ts";
import { busNames, stateKeys } from "../../protocol/names.ts";
import { verifySelection } from "../../protocol/selection.ts";
import { emptyBusProgress, parseRunSubject, type BusProgress } from "./plan.ts";

export class BusProgressWatcher {
  readonly progress: BusProgress = emptyBusProgress();
  #messages: ConsumerMessages | undefined;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #stopped = false;
  /** True once the messages stored before the watcher started have all been read. */
  caughtUp = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly run: string,
    private readonly onChange: () => void,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    const names = busNames(this.run);
    const js = jetstream(this.nc);
    // The last message of every selection, announcement and heartbeat subject first, then
    // new ones as they land.
    const consumer = await js.consumers.get(names.stream, {
      filter_subjects: [
        `covenant.${this.run}.round.*.selection.*`,
        `covenant.${this.run}.round.*.submit.*`,
        names.heartbeatAll,
      ],
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    if ((await consumer.info()).num_pending === 0) this.caughtUp = true;
    this.#messages = await consumer.consume();
    void this.#follow(this.#messages, (m) => this.#onMessage(m));
    const kv = await new Kvm(js).open(names.stateBucket);
    this.#watch = await kv.watch({ key: stateKeys.membership });
    void this.#follow(this.#watch, (e) => {
      if (e.operation !== "PUT") return;
      try {
        this.progress.membership = parseMembership(e.string());
        this.onChange();
      } catch (err) {
        this.onError(err);
      }
    });
  }

  #onMessage(m: JsMsg): void {
    if (!this.caughtUp && m.info.pending === 0) {
      this.caughtUp = true;
      this.onChange();
    }
    const p = this.progress;
    const s = parseRunSubject(m.subject, this.run);
    if (!s) return;
    const storedMs = Number(m.info.timestampNanos) / 1e6;
    if (s.kind === "heartbeat") {
      p.heartbeats.set(s.hotkey, Math.max(p.heartbeats.get(s.hotkey) ?? 0, storedMs));
      // A heartbeat matters at once only from a peer that may be joining.
      if (!p.membership?.members.includes(s.hotkey)) this.onChange();
      return;
    }
    if (s.kind === "submit") {
      if (s.round > (p.submitted.get(s.hotkey) ?? -1)) p.submitted.set(s.hotkey, s.round);
      return;
    }
    // Selections are signed by the validator the subject names; one that does not verify
    // counts for nothing.
    const v = verifySelection(m.data, { run: this.run, round: s.round, validator: s.hotkey });
    if (!v.ok) {
      this.onError(new Error(`selection of round ${s.round} from ${s.hotkey}: ${v.detail}`));
      return;
    }
    for (const pick of v.value.selected)
      if (s.round > (p.selected.get(pick.hotkey) ?? -1)) p.selected.set(pick.hotkey, s.round);
    if (s.round <= (p.lastSelectedRound ?? -1)) return;
    p.previousSelectedAt = p.lastSelectedAt;
    p.lastSelectedRound = s.round;
    p.lastSelectedAt = new Date(storedMs);
    this.onChange();
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
