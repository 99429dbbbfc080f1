// The API server refuses bad TrainingRuns and CovenantPeers with a message naming the
// field: the CRD schemas and CEL rules generated from api at work. Changes of a live
// run that would split its peers are refused with the reason; the others are accepted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { immutableRule } from "../../api/changes.ts";
import { makePeer, makeRun, type PeerBuilder, type RunBuilder } from "../../operator/controllers/testing.ts";
import { join } from "node:path";
import { startKube, type KubeStack } from "../stack/kube.ts";
import { repoRoot } from "../stack/paths.ts";
import { apiCode, apiMessage, installCrds, kubectl, readManifests } from "./cluster.ts";

interface Case {
  name: string;
  object: KubernetesObject;
  /** Regular expression the refusal message must match: it names the field. */
  field: RegExp;
  /** What the message must not say (a misleading bound). */
  not?: RegExp;
}

const run = (f: (b: RunBuilder) => RunBuilder) => f(makeRun("bad-run")).obj() as unknown as KubernetesObject;
const peer = (f: (b: PeerBuilder) => PeerBuilder) =>
  f(makePeer("bad-peer")).obj() as unknown as KubernetesObject;

const CASES: Case[] = [
  { name: "rounds is a string", object: run((b) => b.set("spec.rounds", "ten")), field: /spec\.rounds/ },
  { name: "rounds is zero", object: run((b) => b.rounds(0)), field: /spec\.rounds/ },
  { name: "rounds beyond the bound", object: run((b) => b.rounds(5_000_000)), field: /spec\.rounds/ },
  { name: "rounds missing", object: run((b) => b.set("spec.rounds", undefined)), field: /spec\.rounds/ },
  { name: "innerSteps zero", object: run((b) => b.set("spec.innerSteps", 0)), field: /spec\.innerSteps/ },
  {
    name: "innerSteps too many",
    object: run((b) => b.set("spec.innerSteps", 20000)),
    field: /spec\.innerSteps/,
  },
  { name: "unknown model preset", object: run((b) => b.preset("gpt-5")), field: /spec\.model\.preset/ },
  {
    name: "hidden not divisible by heads",
    object: run((b) => b.set("spec.model.hidden", 100).set("spec.model.heads", 3)),
    field: /spec\.model\.hidden/,
  },
  {
    name: "heads not divisible by kvHeads",
    object: run((b) => b.set("spec.model.heads", 8).set("spec.model.kvHeads", 3)),
    field: /spec\.model\.kvHeads/,
  },
  {
    name: "image without digest",
    object: run((b) => b.image("covenant/worker:latest")),
    field: /spec\.worker\.image/,
  },
  {
    name: "image with a short digest",
    object: run((b) => b.image("covenant/worker@sha256:abc123")),
    field: /spec\.worker\.image/,
  },
  {
    name: "odd top-k",
    object: run((b) => b.set("spec.compression.topK", 63)),
    field: /spec\.compression\.topK/,
  },
  {
    name: "top-k larger than a tile",
    object: run((b) => b.set("spec.compression.chunk", 8).set("spec.compression.topK", 66)),
    field: /spec\.compression\.topK/,
  },
  {
    name: "value bits 3",
    object: run((b) => b.set("spec.compression.valueBits", 3)),
    field: /spec\.compression\.valueBits/,
  },
  {
    name: "wire format 7",
    object: run((b) => b.set("spec.compression.wireFormat", 7)),
    field: /spec\.compression\.wireFormat/,
  },
  {
    name: "error-feedback decay above 1",
    object: run((b) => b.set("spec.compression.errorFeedbackDecay", 1.5)),
    field: /spec\.compression\.errorFeedbackDecay must be in \[0, 1\]/,
  },
  {
    name: "compression mode not one of the two",
    object: run((b) => b.set("spec.compression.mode", "topk")),
    field: /spec\.compression\.mode/,
  },
  {
    name: "outer optimizer not one of the two",
    object: run((b) => b.set("spec.outer.optimizer", "adam")),
    field: /spec\.outer\.optimizer/,
  },
  {
    name: "outer momentum of 1 (above 0.999)",
    object: run((b) => b.set("spec.outer.momentum", 1)),
    field: /spec\.outer\.momentum must be in \[0, 0\.999\]/,
  },
  {
    name: "gather peers zero",
    object: run((b) => b.set("spec.aggregation.gatherPeers", 0)),
    field: /spec\.aggregation\.gatherPeers/,
  },
  {
    name: "gather peers beyond the bound",
    object: run((b) => b.set("spec.aggregation.gatherPeers", 1000)),
    field: /spec\.aggregation\.gatherPeers/,
  },
  {
    name: "outer learning rate zero",
    object: run((b) => b.set("spec.outer.learningRate", 0)),
    field: /spec\.outer\.learningRate must be in \(0, 10\]/,
  },
  // Fractional bounds: the message states the real bound, also for a value written as an
  // integer (the OpenAPI check truncates the bound to one: "less than or equal to 0").
  {
    name: "beta1 of 1 (above 0.9999)",
    object: run((b) => b.set("spec.innerOptimizer.beta1", 1)),
    field: /spec\.innerOptimizer\.beta1 must be in \[0, 0\.9999\]/,
    not: /less than or equal to 0\b/,
  },
  {
    name: "beta2 of 1.5",
    object: run((b) => b.set("spec.innerOptimizer.beta2", 1.5)),
    field: /spec\.innerOptimizer\.beta2 must be in \[0, 0\.99999\]/,
  },
  {
    name: "epsilon of 1 (above 0.001)",
    object: run((b) => b.set("spec.innerOptimizer.epsilon", 1)),
    field: /spec\.innerOptimizer\.epsilon must be in \(0, 0\.001\]/,
    not: /less than or equal to 0\b/,
  },
  {
    name: "normEps of 0 (below 1e-12)",
    object: run((b) => b.set("spec.model.normEps", 0)),
    field: /spec\.model\.normEps must be in \[1e-12, 0\.1\]/,
  },
  {
    name: "inner learning rate of 2",
    object: run((b) => b.set("spec.innerOptimizer.learningRate", 2)),
    field: /spec\.innerOptimizer\.learningRate must be in \(0, 1\]/,
  },
  {
    name: "minimum learning-rate ratio of -0.5",
    object: run((b) => b.set("spec.innerOptimizer.schedule.minRatio", -0.5)),
    field: /spec\.innerOptimizer\.schedule\.minRatio must be in \[0, 1\]/,
  },
  {
    name: "rollout of zero pods at a time",
    object: run((b) => b.set("spec.rollout.maxUnavailable", 0)),
    field: /spec\.rollout\.maxUnavailable/,
  },
  {
    name: "netuid negative",
    object: run((b) => b.set("spec.chain.netuid", -1)),
    field: /spec\.chain\.netuid/,
  },
  {
    name: "chain endpoint over http",
    object: run((b) => b.set("spec.chain.endpoint", "http://x")),
    field: /spec\.chain\.endpoint/,
  },
  {
    name: "NATS URL without scheme",
    object: run((b) => b.set("spec.transport.natsUrl", "localhost:4222")),
    field: /spec\.transport\.natsUrl/,
  },
  {
    name: "data shards missing",
    object: run((b) => b.set("spec.data.shards", undefined)),
    field: /spec\.data\.shards/,
  },
  {
    name: "round deadline too short",
    object: run((b) => b.set("spec.roundDeadlineSeconds", 1)),
    field: /spec\.roundDeadlineSeconds/,
  },
  { name: "suspend is a string", object: run((b) => b.set("spec.suspend", "yes")), field: /spec\.suspend/ },
  { name: "peer: unknown role", object: peer((b) => b.role("leecher")), field: /spec\.role/ },
  {
    name: "peer: missing run reference",
    object: peer((b) => b.set("spec.runRef", undefined)),
    field: /spec\.runRef/,
  },
  { name: "peer: empty run name", object: peer((b) => b.run("")), field: /spec\.runRef\.name/ },
  { name: "peer: zero GPUs", object: peer((b) => b.gpus(0)), field: /spec\.gpus/ },
  { name: "peer: GPUs is a string", object: peer((b) => b.set("spec.gpus", "eight")), field: /spec\.gpus/ },
  {
    name: "peer: missing hotkey Secret",
    object: peer((b) => b.set("spec.hotkeySecretRef", undefined)),
    field: /spec\.hotkeySecretRef/,
  },
  {
    name: "peer: bad toleration operator",
    object: peer((b) => b.set("spec.placement.tolerations", [{ key: "gpu", operator: "Maybe" }])),
    field: /spec\.placement\.tolerations\[0\]\.operator/,
  },
  {
    name: "peer: name too long for its pod",
    object: peer((b) => b.set("metadata.name", "p".repeat(60))),
    field: /metadata\.name/,
  },
];

interface UpdateCase {
  name: string;
  kind: "run" | "peer";
  change: (o: Record<string, unknown>) => void;
  field: RegExp;
}

type RunObject = { spec: Record<string, Record<string, unknown>> };
const setSpec = (path: string, value: unknown) => (o: Record<string, unknown>) => {
  const parts = path.split(".");
  let cur = (o as RunObject).spec as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
  cur[parts.at(-1)!] = value;
};
/** The refusal names the field and says why (the message of its rule, as api/changes.ts words it). */
const because = (field: string) =>
  new RegExp(immutableRule(field).message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));

const UPDATES: UpdateCase[] = [
  {
    name: "changing the number of data shards",
    kind: "run",
    change: setSpec("data.shards", 128),
    field: because("spec.data.shards"),
  },
  {
    name: "changing the data source",
    kind: "run",
    change: setSpec("data.source", "nats://other/corpus"),
    field: because("spec.data.source"),
  },
  {
    name: "changing the sequence length",
    kind: "run",
    change: setSpec("data.sequenceLength", 4096),
    field: because("spec.data.sequenceLength"),
  },
  {
    name: "changing the chain netuid",
    kind: "run",
    change: setSpec("chain.netuid", 4),
    field: because("spec.chain.netuid"),
  },
  {
    name: "changing the model shape (hidden width)",
    kind: "run",
    change: setSpec("model.hidden", 128),
    field: because("spec.model"),
  },
  {
    name: "changing the norm clipping of the aggregation",
    kind: "run",
    change: setSpec("aggregation.normClip", "none"),
    field: because("spec.aggregation.normClip"),
  },
  {
    name: "changing the wire format",
    kind: "run",
    change: setSpec("compression.wireFormat", 1),
    field: because("spec.compression"),
  },
  {
    name: "changing the model preset",
    kind: "run",
    change: (o) => ((o.spec as { model: { preset: string } }).model.preset = "llama3-1b"),
    field: /spec\.model/,
  },
  {
    name: "adding a model override",
    kind: "run",
    change: (o) => ((o.spec as { model: { layers?: number } }).model.layers = 3),
    field: /spec\.model/,
  },
  {
    name: "changing the chunk size",
    kind: "run",
    change: (o) => ((o.spec as { compression: { chunk: number } }).compression.chunk = 32),
    field: /spec\.compression/,
  },
  {
    name: "moving a peer to another run",
    kind: "peer",
    change: (o) => ((o.spec as { runRef: { name: string } }).runRef.name = "other"),
    field: /spec\.runRef/,
  },
];

describe("invalid manifests are refused by the API server", () => {
  let kube: KubeStack;
  let api: KubernetesObjectApi;

  before(async () => {
    kube = await startKube();
    await installCrds(kube.kubeConfig(), kube.kubeconfigPath);
    api = KubernetesObjectApi.makeApiClient(kube.kubeConfig());
  });
  after(async () => {
    await kube?.stop();
  });

  test("the valid builders are accepted (so each refusal below is about its one change)", async () => {
    await api.create(makeRun("good-run").obj() as unknown as KubernetesObject);
    await api.create(makePeer("good-peer", "good-run").obj() as unknown as KubernetesObject);
    const got = (await api.read({
      apiVersion: "covenant.io/v1alpha1",
      kind: "TrainingRun",
      metadata: { name: "good-run", namespace: "default" },
    })) as unknown as { spec: { compression: { topK: number }; innerSteps: number } };
    assert.equal(got.spec.compression.topK, 64, "defaults applied by the server");
    assert.equal(got.spec.innerSteps, 30);
  });

  test("every manifest in examples/ is accepted (server-side dry run)", async () => {
    await kubectl(kube.kubeconfigPath, ["create", "namespace", "covenant"]);
    const docs = readManifests("examples");
    assert.ok(docs.length >= 3);
    const out = await kubectl(kube.kubeconfigPath, [
      "apply",
      "--dry-run=server",
      "-f",
      join(repoRoot, "examples"),
    ]);
    assert.equal(out.trim().split("\n").length, docs.length, out);
  });

  assert.ok(CASES.length >= 20);
  for (const c of CASES) {
    test(`create refused: ${c.name}`, async () => {
      await assert.rejects(api.create(c.object), (err: unknown) => {
        assert.equal(apiCode(err), 422, apiMessage(err));
        assert.match(apiMessage(err), c.field);
        if (c.not) assert.doesNotMatch(apiMessage(err), c.not);
        return true;
      });
    });
  }

  for (const c of UPDATES) {
    test(`update refused: ${c.name}`, async () => {
      const name = `imm-${c.kind}-${UPDATES.indexOf(c)}`;
      const obj = (c.kind === "run"
        ? makeRun(name).obj()
        : makePeer(name, "good-run").obj()) as unknown as KubernetesObject;
      const created = (await api.create(obj)) as unknown as Record<string, unknown>;
      c.change(created);
      await assert.rejects(api.replace(created as unknown as KubernetesObject), (err: unknown) => {
        assert.equal(apiCode(err), 422, apiMessage(err));
        assert.match(apiMessage(err), c.field);
        assert.match(apiMessage(err), /immutable/);
        return true;
      });
    });
  }

  test("a live run accepts the changes its peers adopt at a round boundary or by a rollout", async () => {
    const created = (await api.create(
      makeRun("live-run").obj() as unknown as KubernetesObject,
    )) as unknown as Record<string, unknown>;
    for (const [path, value] of [
      ["innerSteps", 45],
      ["innerOptimizer.learningRate", 0.0002],
      ["innerOptimizer.beta1", 0.95],
      ["outer.learningRate", 0.8],
      ["aggregation.gatherPeers", 10],
      ["roundDeadlineSeconds", 600],
      ["rounds", 200],
      ["checkpoints.everyRounds", 5],
      ["worker.image", "registry.example/covenant/worker@sha256:" + "a".repeat(64)],
      ["transport.natsUrl", "nats://nats.elsewhere:4222"],
      ["chain.endpoint", "wss://chain.example"],
      ["rollout.maxUnavailable", 3],
      ["membership.podGraceSeconds", 30],
    ] as const)
      setSpec(path, value)(created);
    const got = (await api.replace(created as unknown as KubernetesObject)) as unknown as RunObject;
    assert.equal(got.spec.innerSteps, 45);
    assert.equal((got.spec.rollout as { maxUnavailable: number }).maxUnavailable, 3);
  });
});
