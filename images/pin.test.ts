import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { builtImage, parseImages, readImages, type ImageRecord } from "./digests.ts";
import { PIN_TARGETS, pinAll, pinChartValues, pinWorkerImages, repoRoot } from "./pin.ts";

const record = (repository: string, c: string): ImageRecord => ({
  digest: `sha256:${c.repeat(64)}`,
  ref: `${repository}@sha256:${c.repeat(64)}`,
  name: `${repository}:0.1.0`,
  archive: "build/images/x.oci.tar",
});
const operator = record("ghcr.io/covenant-io/covenant-operator", "a");
const worker = record("ghcr.io/covenant-io/covenant-worker", "b");
const read = (file: string): string => readFileSync(join(repoRoot, file), "utf8");

test("the chart's values get the digest on the digest line only, and keep their comments", () => {
  const before = read("charts/covenant-operator/values.yaml");
  const after = pinChartValues(before, operator);
  const changed = after.split("\n").filter((l, i) => l !== before.split("\n")[i]);
  assert.deepEqual(changed, [`  digest: "${operator.digest}"`]);
  assert.equal((parse(after) as { image: { digest: string } }).image.digest, operator.digest);
  assert.equal(pinChartValues(after, operator), after, "pinning twice changes nothing");
  assert.throws(
    () => pinChartValues(before, record("registry.example/other", "a")),
    /image.repository is ghcr.io/,
  );
  assert.throws(() => pinChartValues("replicaCount: 1\n", operator), /no top-level image/);
});

test("only a nested key named digest is left alone", () => {
  const values =
    'image:\n  repository: ghcr.io/covenant-io/covenant-operator\n  extra:\n    digest: keep\n  digest: ""\nother: 1\n';
  const after = pinChartValues(values, operator);
  assert.ok(after.includes("    digest: keep\n"));
  assert.ok(after.includes(`  digest: "${operator.digest}"\n`));
});

test("the examples' worker images are pinned, other images are not touched", () => {
  for (const file of ["examples/local-tiny.yaml", "examples/trainingrun.yaml"]) {
    const before = read(file);
    const after = pinWorkerImages(before, worker);
    const changed = after.split("\n").filter((l, i) => l !== before.split("\n")[i]);
    assert.ok(changed.length <= 1, file);
    assert.ok(after.includes(`    image: ${worker.ref}\n`), file);
    assert.equal(pinWorkerImages(after, worker), after, file);
  }
  const other = [
    "kind: TrainingRun",
    "spec:",
    "  worker:",
    "    # pinned",
    "    image: old/worker@sha256:" + "0".repeat(64) + "  # comment",
    "  sidecar:",
    "    image: other/image@sha256:" + "1".repeat(64),
    "",
  ].join("\n");
  const after = pinWorkerImages(other, worker);
  assert.ok(after.includes(`    image: ${worker.ref}  # comment\n`));
  assert.ok(after.includes("    image: other/image@sha256:" + "1".repeat(64)));
  assert.throws(() => pinWorkerImages("kind: TrainingRun\nspec: {}\n", worker), /no worker image/);
});

test("pinAll writes, then --check finds nothing; a stale pin or a missing image fails the check", () => {
  const root = mkdtempSync(join(tmpdir(), "pin-test-"));
  try {
    for (const t of PIN_TARGETS) {
      mkdirSync(join(root, t.file, ".."), { recursive: true });
      cpSync(join(repoRoot, t.file), join(root, t.file));
    }
    const cuda = record("ghcr.io/covenant-io/covenant-worker", "c");
    const images = {
      "covenant-operator": operator,
      "covenant-worker-cpu": worker,
      "covenant-worker-cuda": cuda,
    };
    const first = pinAll(root, images, false);
    assert.deepEqual(first.missing, []);
    assert.equal(pinAll(root, images, true).changed.length, 0);
    assert.ok(readFileSync(join(root, "examples/trainingrun.yaml"), "utf8").includes(cuda.ref));
    assert.ok(readFileSync(join(root, "examples/local-tiny.yaml"), "utf8").includes(worker.ref));

    const rebuilt = { ...images, "covenant-operator": record("ghcr.io/covenant-io/covenant-operator", "d") };
    const before = readFileSync(join(root, "charts/covenant-operator/values.yaml"), "utf8");
    assert.equal(pinAll(root, rebuilt, true).changed.length, 1);
    assert.equal(
      readFileSync(join(root, "charts/covenant-operator/values.yaml"), "utf8"),
      before,
      "--check writes nothing",
    );
    assert.deepEqual(pinAll(root, { "covenant-operator": operator }, true).missing, [
      "covenant-worker-cpu",
      "covenant-worker-cuda",
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("images.json: entries are checked as they are read, a missing image says how to build it", () => {
  const good = { "covenant-operator": operator, unrelated: { digest: "x" } };
  assert.deepEqual(parseImages(JSON.stringify(good)), { "covenant-operator": operator });
  const bad = { "covenant-operator": { ...operator, ref: "ghcr.io/x@sha256:" + "f".repeat(64) } };
  assert.throws(() => parseImages(JSON.stringify(bad)), /malformed/);
  const short = { "covenant-operator": { ...operator, digest: "sha256:abc" } };
  assert.throws(() => parseImages(JSON.stringify(short)), /malformed/);
  const dir = mkdtempSync(join(tmpdir(), "digests-test-"));
  try {
    const file = join(dir, "images.json");
    assert.deepEqual(readImages(file), {}, "no build yet: no images");
    assert.throws(() => builtImage("covenant-operator", file), /make images/);
    writeFileSync(file, JSON.stringify(good));
    assert.deepEqual(builtImage("covenant-operator", file), operator);
    assert.throws(
      () => builtImage("covenant-worker-cpu", file),
      /has no covenant-worker-cpu: build the images with `make images`/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
