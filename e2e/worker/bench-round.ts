// Per-round overhead of the protocol for 3 miners and a validator: everything a round
// costs besides the inner steps (compress, sign, put, announce, validator checks and
// scoring, selection, gather, aggregate). Prints a Markdown table.
//   node --import tsx e2e/worker/bench-round.ts [rounds, default 12]
import { setTimeout as sleep } from "node:timers/promises";
import { metricValue, startLocalRun } from "./harness.ts";

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? "12");
  const run = await startLocalRun({
    run: "bench-round",
    miners: ["Alice", "Bob", "Carol"],
    validator: "Val",
    rounds,
    innerSteps: 8,
    shards: 16,
    tokensPerShard: 10_000,
    sequenceLength: 32,
    roundDeadlineSeconds: 60,
    checkpointEvery: 1000,
  });
  try {
    const watch = await run.bus.connect("operator", "bench");
    const val = await run.start("Val");
    const miners = await Promise.all(["Alice", "Bob", "Carol"].map((m) => run.start(m)));
    const stamp = async (round: number) => {
      for (;;) {
        const m = await watch.lastMessage(watch.names.selection(round, run.identity("Val").hotkey));
        if (m) return m.storedMs;
        if (!val.proc.running) throw new Error(`validator exited:\n${val.proc.logTail()}`);
        await sleep(50);
      }
    };
    // Round 0 includes process start; measure from its selection to the last one.
    const first = await stamp(0);
    const sums = new Map<number, number[]>();
    // Metrics are read just before the last round closes (processes exit after it).
    const penultimate = await stamp(rounds - 2);
    for (const [i, m] of miners.entries()) {
      const text = await run.metrics(m.metricsPort);
      sums.set(i, [
        metricValue(text, "covenant_worker_inner_step_seconds_sum"),
        metricValue(text, "covenant_worker_compress_seconds_sum"),
        metricValue(text, "covenant_worker_gather_seconds_sum"),
        metricValue(text, "covenant_worker_aggregate_seconds_sum"),
        // Rounds trained so far: inner steps observed / steps per round.
        metricValue(text, "covenant_worker_inner_step_seconds_count") / 8,
      ]);
    }
    const measured = rounds - 2;
    const wall = (penultimate - first) / 1000 / measured;
    const avg = (k: number) => [...sums.values()].reduce((a, s) => a + s[k]! / s[4]!, 0) / sums.size;
    const inner = avg(0);
    await watch.close();
    console.log(
      `| rounds | wall s/round | inner steps s/round | overhead s/round | compress s | gather s | aggregate s |`,
    );
    console.log(`|---|---|---|---|---|---|---|`);
    console.log(
      `| ${measured} | ${wall.toFixed(3)} | ${inner.toFixed(3)} | ${(wall - inner).toFixed(3)} | ${avg(1).toFixed(4)} | ${avg(2).toFixed(4)} | ${avg(3).toFixed(4)} |`,
    );
  } finally {
    await run.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
