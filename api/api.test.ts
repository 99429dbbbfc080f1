import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyDefaults } from "./defaults.ts";
import { KINDS, crdFor } from "./crd.ts";
import { stalePaths } from "./generate.ts";
import { PRESET_SHAPES, MODEL_PRESETS, parameterCount, resolveShape, shapeProblems } from "./presets.ts";
import { covenantPeerSpecSchema } from "./covenantpeer.ts";
import { trainingRunSpecSchema, type TrainingRunSpec } from "./trainingrun.ts";
import { celDouble, numberBoundRule, undocumented, type JSONSchema } from "./schema.ts";
import { CHANGE_KINDS, RUN_FIELD_CHANGES } from "./changes.ts";
import { ROUND_CONFIG_FIELDS } from "./runconfig.ts";
import { TRAINING_RUN } from "./crd.ts";

describe("generated manifests", () => {
  it("crds/ and config/rbac/ match api (run `make generate` when this fails)", () => {
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

/** The schema node at a dotted path under a root schema (spec.data.shards). */
function nodeAt(root: JSONSchema, path: string): JSONSchema | undefined {
  let cur: JSONSchema | undefined = root;
  for (const part of path.split(".")) cur = cur?.properties?.[part];
  return cur;
}

/** Every field path under a schema, objects included. */
function paths(s: JSONSchema, path: string, out: string[] = []): string[] {
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    out.push(`${path}.${k}`);
    paths(v, `${path}.${k}`, out);
  }
  return out;
}

describe("changes of a live TrainingRun", () => {
  const root = TRAINING_RUN.schema;

  it("every spec field is covered by exactly one entry (its own or an ancestor's)", () => {
    const entries = RUN_FIELD_CHANGES.map((c) => c.field);
    assert.equal(new Set(entries).size, entries.length, "no field twice");
    for (const e of entries) assert.ok(nodeAt(root, e), `${e} is a field`);
    for (const p of paths(root.properties!.spec!, "spec")) {
      const covering = entries.filter((e) => p === e || p.startsWith(`${e}.`) || e.startsWith(`${p}.`));
      assert.ok(covering.length > 0, `${p} has no entry in RUN_FIELD_CHANGES`);
    }
    for (const c of RUN_FIELD_CHANGES) assert.ok(c.change in CHANGE_KINDS && c.why.length > 10, c.field);
  });

  it("each immutable field has the rule, with a message naming it and saying why", () => {
    for (const c of RUN_FIELD_CHANGES.filter((c) => c.change === "immutable")) {
      const rules = nodeAt(root, c.field)?.["x-kubernetes-validations"] ?? [];
      assert.deepEqual(
        rules.filter((r) => r.rule === "self == oldSelf").map((r) => r.message),
        [`${c.field} is immutable: ${c.why}`],
        c.field,
      );
    }
    // ...and no other field is immutable.
    const immutable = new Set(RUN_FIELD_CHANGES.filter((c) => c.change === "immutable").map((c) => c.field));
    for (const p of paths(root.properties!.spec!, "spec")) {
      const rules = nodeAt(root, p)?.["x-kubernetes-validations"] ?? [];
      if (rules.some((r) => r.rule.includes("oldSelf"))) assert.ok(immutable.has(p), p);
    }
  });

  it("the epoch-adopted fields are exactly the round-level config of the workers", () => {
    const top = new Set(
      RUN_FIELD_CHANGES.filter((c) => c.change === "epoch").map((c) => c.field.split(".")[1]),
    );
    assert.deepEqual([...top].sort(), [...ROUND_CONFIG_FIELDS].sort());
  });
});

describe("bounds of number fields", () => {
  it("are CEL rules whose messages state the bound exactly (no OpenAPI bound to be truncated)", () => {
    const found: string[] = [];
    const visit = (s: JSONSchema, path: string) => {
      if (s.type === "number") {
        assert.equal(s.minimum, undefined, path);
        assert.equal(s.maximum, undefined, path);
        const r = (s["x-kubernetes-validations"] ?? []).find((r) => r.message.startsWith(`${path} must`));
        if (r) found.push(`${path}: ${r.message} <- ${r.rule}`);
      }
      for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, path ? `${path}.${k}` : k);
    };
    for (const k of KINDS) visit(k.schema, "");
    assert.ok(
      found.includes(
        "spec.innerOptimizer.beta1: spec.innerOptimizer.beta1 must be in [0, 0.9999] <- self >= 0.0 && self <= 0.9999",
      ),
      found.join("\n"),
    );
    assert.ok(
      found.includes(
        "spec.innerOptimizer.epsilon: spec.innerOptimizer.epsilon must be in (0, 0.001] <- self > 0.0 && self <= 0.001",
      ),
    );
    assert.ok(
      found.includes(
        "spec.model.normEps: spec.model.normEps must be in [1e-12, 0.1] <- self >= 1e-12 && self <= 0.1",
      ),
    );
    assert.ok(found.some((f) => f.startsWith("status.incentive: status.incentive must be in [0, 1]")));
    // Every number field of the TypeScript schemas with a bound has its rule.
    const bounded: string[] = [];
    const count = (s: JSONSchema, path: string) => {
      if (s.type === "number" && (s.minimum !== undefined || s.maximum !== undefined)) bounded.push(path);
      for (const [k, v] of Object.entries(s.properties ?? {})) count(v, path ? `${path}.${k}` : k);
    };
    count(trainingRunSpecSchema.json, "spec");
    for (const p of bounded)
      assert.ok(
        found.some((f) => f.startsWith(`${p}:`)),
        p,
      );
    assert.equal(bounded.length, 15, "the fractional fields of a TrainingRun spec");
  });

  it("writes CEL doubles and one-sided bounds", () => {
    assert.equal(celDouble(1), "1.0");
    assert.equal(celDouble(0.9999), "0.9999");
    assert.equal(celDouble(1e-12), "1e-12");
    assert.equal(celDouble(1e9), "1000000000.0");
    assert.deepEqual(numberBoundRule("status.x", { minimum: 0 }), {
      rule: "self >= 0.0",
      message: "status.x must be at least 0",
    });
    assert.deepEqual(
      numberBoundRule("x", { minimum: 0, exclusiveMinimum: true }).message,
      "x must be greater than 0",
    );
    assert.deepEqual(numberBoundRule("x", { maximum: 0.5 }), {
      rule: "self <= 0.5",
      message: "x must be at most 0.5",
    });
  });
});
