// `make demo`: the whole system on this machine and a real training run end to end.
// A TrainingRun of llama3-tiny with three miners and a validator is applied with
// kubectl; the operator provisions the run's stream and buckets on the run's hub (three
// nats-servers in a JetStream cluster with TLS) and creates the worker pods; a node agent
// runs them as local processes on fake B200 nodes; the workers log in to the hub by their
// hotkey (the admission service admits hotkeys registered on the local chain), fetch their
// shards of text found on this machine from a nats:// bucket, and exchange SparseLoCo
// payloads. Progress is printed as it happens: one line per round (the validator's loss,
// each miner's training loss, the selection, the bytes sent) in place of the workers' own
// per-round lines, which go with everything else to build/demo/demo.log. The loss per round
// is drawn to build/demo/loss.svg, redrawn as rounds close (demo/loss-chart.ts).
// Every server listens on 127.0.0.1 only and is stopped on exit.
//
//   --rounds N        rounds to train (default 30)
//   --once            stop everything when the run completes (default: keep it up until Ctrl-C)
//   --verbose         print every worker line as well
//   --single-server   one nats-server with static per-peer nkey users and file:// data
//                     instead of the hub
import { appendFileSync, copyFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { lossChart } from "./demo/loss-chart.ts";
import { parseWorkerLine, RunProgress } from "./demo/progress.ts";
import { repoRoot } from "./stack/paths.ts";
import { startSystem } from "./system.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const once = process.argv.includes("--once");
const verbose = process.argv.includes("--verbose");
const rounds = arg("--rounds", 30);
const bus = process.argv.includes("--single-server") ? "single" : "hub";
const miners = 3;
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;

const demoDir = join(repoRoot, "build", "demo");
mkdirSync(demoDir, { recursive: true });
const logFile = join(demoDir, "demo.log");
const chartFile = join(demoDir, "loss.svg");
const shown = (path: string) => relative(process.cwd(), path) || path;
writeFileSync(logFile, "");
/** A line for the person watching, and for the log. */
const say = (line: string) => {
  const out = `${elapsed()}  ${line}\n`;
  appendFileSync(logFile, out);
  process.stdout.write(out);
};

// The rounds as the workers report them: a compact line per round once the validator has
// closed it and every miner has reported it (or 2 s later), and the loss chart redrawn.
const progress = new RunProgress(rounds);
const waiting = new Map<number, NodeJS.Timeout>();
let finished = false;
let runSpec: { preset?: string; innerSteps?: number; sequences?: number; shards?: number } = {};
const closeRound = (round: number) => {
  clearTimeout(waiting.get(round));
  waiting.delete(round);
  say(progress.summary(round));
  drawChart(finished);
};
const workerLine = (line: string) => {
  const e = parseWorkerLine(line);
  if (e) progress.record(e);
  if (verbose || !e) say(line);
  else appendFileSync(logFile, `${elapsed()}  ${line}\n`);
  if (e?.kind === "validated") {
    clearTimeout(waiting.get(e.round));
    if (progress.reported(e.round) >= miners) closeRound(e.round);
    else
      waiting.set(
        e.round,
        setTimeout(() => closeRound(e.round), 2_000),
      );
  } else if (e?.kind === "trained" && waiting.has(e.round) && progress.reported(e.round) >= miners)
    closeRound(e.round);
};
const flushRounds = () => {
  for (const round of [...waiting.keys()].sort((a, b) => a - b)) closeRound(round);
};

/** The last summaries, the chart as the run ended, and where it is (once). */
function finishChart() {
  if (finished) return;
  finished = true;
  flushRounds();
  if (progress.validatedRounds === 0) return;
  drawChart(true);
  say(`loss chart: ${shown(chartFile)}`);
}

/** Writes the chart (whole, then renamed into place: a viewer never reads half a file). */
function drawChart(final: boolean) {
  if (progress.validatedRounds === 0) return;
  const done = progress.validatedRounds;
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  const svg = lossChart(progress.series(), {
    title: `Loss per round: ${runSpec.preset ?? "the run's model"}, ${miners} miners and a validator, ${rounds} rounds`,
    subtitle:
      `make demo on ${availableParallelism()} CPU cores (${bus === "hub" ? "3-server hub" : "single nats-server"}), ${when} UTC: ` +
      `${done} of ${rounds} rounds in ${elapsed().trim()}${final ? "" : " (running)"}`,
    notes: [
      `validator: loss of the run's weights on ${runSpec.sequences ?? "its"} sequences sampled from all ${runSpec.shards ?? "the"} shards, before the round's update`,
      `miners (training): mean loss of their ${runSpec.innerSteps ?? "inner"} inner steps on their own shards, from the round's starting weights`,
    ],
    rounds,
    xLabel: "round",
    yLabel: "cross-entropy loss (nats per token)",
  });
  writeFileSync(`${chartFile}.tmp`, svg);
  renameSync(`${chartFile}.tmp`, chartFile);
}

const system = await startSystem({
  run: "demo",
  miners,
  rounds,
  innerSteps: 8,
  roundDeadlineSeconds: 20,
  bus,
  say: (line) => (line.startsWith("[") ? workerLine(line) : say(line)),
});
let stopping = false;
const shutdown = async (code: number) => {
  if (stopping) return;
  stopping = true;
  finishChart();
  say("stopping everything");
  await system.stop();
  process.exit(code);
};
process.once("SIGINT", () => void shutdown(0));
process.once("SIGTERM", () => void shutdown(0));

const kubeconfig = join(demoDir, "kubeconfig");
copyFileSync(system.kube.kubeconfigPath, kubeconfig);
say(`the system is up. In another terminal:

      export KUBECONFIG=${kubeconfig} PATH=${join(repoRoot, "bin")}:$PATH
      kubectl get trainingruns,covenantpeers,pods -o wide
      kubectl describe trainingrun demo
      curl -s '${system.prom.url}/api/v1/query?query=covenant_worker_loss'${
        system.hub
          ? `
      curl -s ${system.hub.admission.url}/metrics | grep covenant_admission_decisions_total`
          : ""
      }

    Progress: a line per round once the validator has closed it (every worker line is in
    ${shown(logFile)}); the loss per round is drawn to ${shown(chartFile)} as rounds close.
`);

// The run's status as the operator writes it, whenever it changes.
let last = "";
let lossFirst: number | undefined;
for (;;) {
  await new Promise((r) => setTimeout(r, 2_000));
  system.refreshTargets();
  const run = await system.readRun().catch(() => undefined);
  const s = run?.status;
  if (run)
    runSpec = {
      preset: run.spec.model.preset,
      innerSteps: run.spec.innerSteps,
      sequences: run.spec.validator?.sequences,
      shards: run.spec.data.shards,
    };
  const line = `TrainingRun demo: phase ${s?.phase ?? "-"}, round ${s?.round ?? 0}/${rounds}, ready peers ${s?.readyPeers ?? 0}/${s?.peers ?? 0}, membership epoch ${s?.membershipEpoch ?? "-"}`;
  if (line !== last) {
    say(line);
    last = line;
  }
  // The miners' gauge only (the validator's stays 0: it trains nothing), as last scraped (the
  // series go stale as soon as the pods end), left out while 0 (no round trained yet).
  const loss = await system.prom
    .query('avg(last_over_time(covenant_worker_loss{role="miner"}[10m]) > 0)')
    .catch(() => []);
  if (lossFirst === undefined && loss[0] && loss[0].value > 0) lossFirst = loss[0].value;
  if (s?.phase === "Completed") {
    flushRounds();
    const lossLast = loss[0]?.value;
    const validator = progress.validatorLoss();
    say(
      `the run completed ${rounds} rounds in ${elapsed().trim()}` +
        (validator ? `; validator loss ${validator.first.toFixed(3)} -> ${validator.last.toFixed(3)}` : "") +
        (lossFirst !== undefined && lossLast !== undefined
          ? `; mean miner loss, first and last scraped by Prometheus: ${lossFirst.toFixed(3)} -> ${lossLast.toFixed(3)}`
          : ""),
    );
    finishChart();
    if (once) await shutdown(0);
    say("everything stays up for you to explore; Ctrl-C stops it");
    await new Promise(() => {});
  }
}
