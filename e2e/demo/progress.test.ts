import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { consoleLog } from "../../worker/log.ts";
import { repoRoot } from "../stack/paths.ts";
import { parseWorkerLine, RunProgress } from "./progress.ts";

/** A line as the demo receives it: the worker's own log line (its real logger), prefixed with the pod's peer. */
function workerLine(peer: string, role: string, msg: string): string {
  const out = new PassThrough();
  consoleLog(`[${role} 5GYWwqru]`, out).info(msg);
  return `[${peer}] ${String(out.read()).trimEnd()}`;
}

test("reads the per-round lines of miners and the validator", () => {
  assert.deepEqual(
    parseWorkerLine(
      workerLine("miner-1", "miner", "round 4: trained 8 steps, loss 4.3215, 1024 tokens, sent 6840 bytes"),
    ),
    { kind: "trained", peer: "miner-1", round: 4, loss: 4.3215, tokens: 1024, bytes: 6840 },
  );
  assert.deepEqual(
    parseWorkerLine(
      workerLine(
        "validator",
        "validator",
        "round 4: 3 submissions, selected 2, loss 5.7864, refused 5Gxx:late, weights fb7731959e8f",
      ),
    ),
    { kind: "validated", peer: "validator", round: 4, submissions: 3, selected: 2, loss: 5.7864 },
  );
  const none = parseWorkerLine(
    workerLine("validator", "validator", "round 0: 0 submissions, selected 0, loss NaN, weights 14fe"),
  );
  assert.ok(none?.kind === "validated" && Number.isNaN(none.loss));
  assert.equal(
    parseWorkerLine(
      workerLine("miner-2", "miner", "round 4: applied 3 payloads from 3 peers, weights fb7731959e8f"),
    )?.kind,
    "applied",
  );
  assert.equal(
    parseWorkerLine(workerLine("validator", "validator", "round 4: ratings 5GYWwqru=1.000e+0/2.000e-2"))
      ?.kind,
    "ratings",
  );
  for (const other of [
    workerLine("miner-1", "miner", "joined run demo at round 0 (weights 14fe183f6d68)"),
    workerLine("validator", "validator", "round 4: not aggregating 5GYWwqru: copy"),
    "TrainingRun demo: phase Training, round 3/30, ready peers 4/4, membership epoch 3",
    "[miner-1] not a log line round 1: trained 8 steps, loss 1, 2 tokens, sent 3 bytes",
  ])
    assert.equal(parseWorkerLine(other), undefined, other);
});

test("the worker still writes the lines this reads (worker/main.ts)", () => {
  // When this fails, the worker's per-round lines changed: change the patterns in progress.ts too.
  const src = readFileSync(join(repoRoot, "worker", "main.ts"), "utf8");
  for (const part of [
    "`round ${round}: trained ${rc.innerSteps} steps, loss ${rep.loss.toFixed(4)}, ${rep.tokens} tokens, sent ${rep.payloadBytes} bytes`",
    "`round ${round}: ${rep.submissions} submissions, selected ${rep.selected}, loss ${rep.lossBefore.toFixed(4)}`",
    "`round ${round}: applied ${sel.selected.length} payloads",
  ])
    assert.ok(src.includes(part), part);
});

test("a compact line per round and the chart's series", () => {
  const p = new RunProgress(30);
  const feed = (peer: string, role: string, msg: string) => {
    const e = parseWorkerLine(workerLine(peer, role, msg));
    assert.ok(e, msg);
    p.record(e);
  };
  feed("miner-10", "miner", "round 0: trained 8 steps, loss 5.5000, 1024 tokens, sent 2048 bytes");
  feed("miner-2", "miner", "round 0: trained 8 steps, loss 5.4000, 1024 tokens, sent 2048 bytes");
  feed("validator", "validator", "round 0: 1 submissions, selected 1, loss 5.9000, weights aa");
  feed("miner-2", "miner", "round 1: trained 8 steps, loss 4.9000, 1024 tokens, sent 3072 bytes");
  // A round reported twice (a worker that caught up) counts once, as last reported.
  feed("miner-2", "miner", "round 1: trained 8 steps, loss 4.8000, 1024 tokens, sent 3072 bytes");
  feed("validator", "validator", "round 1: 1 submissions, selected 1, loss 5.2000, weights bb");
  assert.equal(
    p.summary(0),
    "round  0 ( 1/30): validator loss 5.9000 | miners 5.4000 5.5000 | selected 1 of 1 | sent 4.0 KiB",
  );
  assert.equal(
    p.summary(1),
    "round  1 ( 2/30): validator loss 5.2000 | miners 4.8000 - | selected 1 of 1 | sent 3.0 KiB",
  );
  assert.equal(p.validatedRounds, 2);
  assert.deepEqual(p.validatorLoss(), { first: 5.9, last: 5.2 });
  assert.deepEqual(p.series(), [
    {
      label: "validator",
      weight: "main",
      points: [
        { round: 0, loss: 5.9 },
        { round: 1, loss: 5.2 },
      ],
    },
    {
      label: "miner-2 (training)",
      points: [
        { round: 0, loss: 5.4 },
        { round: 1, loss: 4.8 },
      ],
    },
    { label: "miner-10 (training)", points: [{ round: 0, loss: 5.5 }] },
  ]);
});
