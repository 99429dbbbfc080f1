import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyDefaults } from "./defaults.ts";
import { KINDS, crdFor } from "./crd.ts";
import { stalePaths } from "./generate.ts";
import { PRESET_SHAPES, MODEL_PRESETS, parameterCount, resolveShape, shapeProblems } from "./presets.ts";
import { covenantPeerSpecSchema } from "./covenantpeer.ts";
import { trainingRunSpecSchema, type TrainingRunSpec } from "./trainingrun.ts";
import { undocumented, type JSONSchema } from "./schema.ts";

describe("generated manifests", () => {
  it("crds/ and config/rbac/ match operator/api (run `make generate` when this fails)", () => {
    assert.deepEqual(stalePaths(), []);
  });

  it("every field of both kinds has a description", () => {
    for (const k of KINDS) assert.deepEqual(undocumented(k.schema), [], k.kind);
  });

  it("CRDs are namespaced, in the covenant category, with a status subresource", () => {
    for (const k of KINDS) {
      const crd = crdFor(k) as {
        spec: { scope: string; names: { categories: string[] }; versions: { subresources: unknown }[] };
      };
      assert.equal(crd.spec.scope, "Namespaced");
      assert.deepEqual(crd.spec.names.categories, ["covenant"]);
      assert.deepEqual(crd.spec.versions[0]?.subresources, { status: {} });
    }
  });

  it("every string has a length bound and every list a size bound (CEL cost)", () => {
    const unbounded: string[] = [];
    const visit = (s: JSONSchema, path: string) => {
      if (s.type === "string" && s.maxLength === undefined && s.enum === undefined) unbounded.push(path);
      if (s.type === "array" && s.maxItems === undefined) unbounded.push(path);
      for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, `${path}.${k}`);
      if (s.items) visit(s.items, `${path}[]`);
      if (s.additionalProperties) visit(s.additionalProperties, `${path}{}`);
    };
    for (const k of KINDS) visit(k.schema, k.kind);
    assert.deepEqual(unbounded, []);
  });
});

describe("defaults", () => {
  it("fills nested defaults the way the API server does", () => {
    const spec = applyDefaults(trainingRunSpecSchema.json, {
      model: { preset: "llama3-tiny" },
      data: { source: "nats://data/tiny", shards: 8 },
      rounds: 10,
      chain: { endpoint: "ws://127.0.0.1:9944", netuid: 3 },
      transport: { natsUrl: "nats://127.0.0.1:4222" },
      worker: { image: "x@sha256:" + "a".repeat(64) },
    }) as TrainingRunSpec;
    assert.equal(spec.innerSteps, 30);
    assert.equal(spec.compression.chunk, 64);
    assert.equal(spec.compression.topK, 64);
    assert.equal(spec.compression.valueBits, 2);
    assert.equal(spec.innerOptimizer.schedule.kind, "cosine");
    assert.equal(spec.aggregation.gatherPeers, 20);
    assert.equal(spec.data.sequenceLength, 2048);
    assert.equal(spec.worker.shmSize, "64Gi");
    assert.equal(spec.suspend, false);
    assert.equal(spec.transport.credentialsSecretRef, undefined, "optional objects stay absent");
  });

  it("keeps given values and does not mutate its input", () => {
    const input = { runRef: { name: "r" }, hotkeySecretRef: { name: "s" }, gpus: 4 };
    const out = applyDefaults(covenantPeerSpecSchema.json, input) as Record<string, unknown>;
    assert.equal(out.gpus, 4);
    assert.equal(out.role, "miner");
    assert.deepEqual(out.hotkeySecretRef, { name: "s", key: "hotkey" });
    assert.deepEqual((out.placement as Record<string, unknown>).gpuProduct, "NVIDIA-B200");
    assert.equal("role" in input, false);
  });
});

describe("model presets", () => {
  it("every preset is a valid shape", () => {
    for (const p of MODEL_PRESETS) assert.deepEqual(shapeProblems(PRESET_SHAPES[p]), [], p);
  });

  it("parameter counts are in the range the names promise", () => {
    const billions = (p: (typeof MODEL_PRESETS)[number]) => parameterCount(PRESET_SHAPES[p]) / 1e9;
    assert.ok(billions("llama3-72b") > 65 && billions("llama3-72b") < 80, String(billions("llama3-72b")));
    assert.ok(billions("llama3-8b") > 7 && billions("llama3-8b") < 9);
    assert.ok(billions("llama3-1b") > 1 && billions("llama3-1b") < 1.6);
    assert.ok(parameterCount(PRESET_SHAPES["llama3-tiny"]) < 1e6);
  });

  it("overrides win field by field and bad overrides are named", () => {
    const s = resolveShape("llama3-1b", { layers: 4, heads: 30 });
    assert.equal(s.layers, 4);
    assert.equal(s.hidden, 2048);
    const problems = shapeProblems(s);
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? "", /spec\.model\.hidden/);
    assert.match(problems[1] ?? "", /kvHeads/);
  });
});
