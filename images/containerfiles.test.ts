// The Containerfiles describe the same images as images/definitions.ts for builders with a
// registry; these tests keep the two in step (versions, user, entry point, environment) and
// check the definitions themselves.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { APP_BUNDLES } from "./bundle.ts";
import { loadSpecs, repoRoot } from "./build.ts";
import { KERNELS_DIR, NONROOT_UID, parseEnvFile, versionsFrom } from "./definitions.ts";

interface Stage {
  name: string;
  instructions: { op: string; args: string }[];
}

/** The stages of a Containerfile, with continuation lines joined and comments dropped. */
function parseContainerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [op, ...rest] = line.split(/\s+/);
    const argsText = rest.join(" ");
    if (op === "FROM") {
      const m = /\bAS\s+(\S+)$/i.exec(argsText);
      stages.push({ name: m ? m[1]! : "", instructions: [] });
    } else if (stages.length === 0 && op === "ARG") {
      const [k, v] = argsText.split("=");
      args[k!] = v ?? "";
    } else stages.at(-1)?.instructions.push({ op: op!, args: argsText });
  }
  return { args, stages };
}

function runtimeOf(stage: Stage): { user?: string; entrypoint?: string[]; env: string[] } {
  const env: string[] = [];
  let user: string | undefined;
  let entrypoint: string[] | undefined;
  for (const i of stage.instructions) {
    if (i.op === "USER") user = i.args;
    if (i.op === "ENTRYPOINT") entrypoint = JSON.parse(i.args) as string[];
    if (i.op === "ENV") env.push(...i.args.split(/\s+/));
  }
  return { user, entrypoint, env };
}

const env = parseEnvFile(readFileSync(join(repoRoot, "images", "versions.env"), "utf8"));
const { specs } = loadSpecs();
const spec = (name: string) => specs.find((s) => s.name === name)!;
const containerfile = (image: string) =>
  parseContainerfile(readFileSync(join(repoRoot, "images", image, "Containerfile"), "utf8"));

test("the Containerfiles' ARG defaults are the pinned versions", () => {
  for (const image of ["operator", "worker"]) {
    assert.equal(containerfile(image).args.NODE_VERSION, env.NODE_VERSION, image);
  }
  assert.equal(containerfile("worker").args.CUDA_IMAGE_VERSION, env.CUDA_IMAGE_VERSION);
});

test("each Containerfile target runs as the definition does: user, entry point, environment", () => {
  const targets: [string, string, string][] = [
    ["operator", "", "covenant-operator"],
    ["worker", "cpu", "covenant-worker-cpu"],
    ["worker", "cuda", "covenant-worker-cuda"],
  ];
  for (const [file, target, name] of targets) {
    const { stages } = containerfile(file);
    const stage = target === "" ? stages.at(-1)! : stages.find((s) => s.name === target)!;
    assert.ok(stage, `${file}: no stage ${target}`);
    const r = runtimeOf(stage);
    const d = spec(name).runtime;
    assert.equal(r.user, d.user, name);
    assert.deepEqual(r.entrypoint, d.entrypoint, name);
    for (const e of d.env) assert.ok(r.env.includes(e), `${name}: the Containerfile does not set ${e}`);
  }
});

test("every image runs as nonroot, starts its bundle's command, and has no secrets in its environment", () => {
  assert.deepEqual(
    specs.map((s) => s.name),
    ["covenant-operator", "covenant-worker-cpu", "covenant-worker-cuda"],
  );
  for (const s of specs) {
    assert.equal(s.runtime.user, `${NONROOT_UID}:${NONROOT_UID}`);
    const app = APP_BUNDLES.find((a) => s.layers.some((l) => l.stage === a.stage));
    assert.ok(app, `${s.name} has no app layer`);
    assert.deepEqual(s.runtime.entrypoint, [`/usr/local/bin/${app.command}`]);
    assert.equal(s.layers[0]!.stage, "base/rootfs");
    assert.equal(s.layers.at(-1)!.stage, app.stage, "the app, which changes most, is the top layer");
    for (const e of s.runtime.env)
      assert.doesNotMatch(e, /(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY)=/i, e);
  }
  for (const name of ["covenant-worker-cpu", "covenant-worker-cuda"]) {
    assert.ok(spec(name).runtime.env.includes(`COVENANT_CODEC_ADDON=${KERNELS_DIR}/covenant_codec.node`));
    assert.ok(spec(name).runtime.env.includes(`COVENANT_ENGINE_ADDON=${KERNELS_DIR}/covenant_engine.node`));
  }
});

test("the CUDA runtime pin is the kernels build's", () => {
  const install = readFileSync(join(repoRoot, "kernels", "cuda", "install.sh"), "utf8");
  assert.ok(
    install.includes(`  ${env.CUDA_RUNTIME_WHEEL}\n`),
    `kernels/cuda/install.sh does not pin ${env.CUDA_RUNTIME_WHEEL}`,
  );
});

test("versions.env is read strictly", () => {
  assert.deepEqual(parseEnvFile("# c\nA=1\n\nB=x==y\n"), { A: "1", B: "x==y" });
  assert.throws(() => parseEnvFile("A = 1\n"), /cannot read/);
  assert.throws(() => versionsFrom({}, "0.1.0"), /NODE_VERSION is missing/);
});

test("each Containerfile copies every source directory its bundle is built from", async () => {
  // The project's own modules an entry point reaches, packages left out: their top-level
  // directories must all be in the bundle stage's COPY lines, or a user's build fails.
  const { build } = await import("esbuild");
  for (const [file, command] of [
    ["operator", "covenant-operator"],
    ["operator", "covenant-admission"],
    ["worker", "covenant-worker"],
  ] as const) {
    const app = APP_BUNDLES.find((a) => a.command === command)!;
    const result = await build({
      absWorkingDir: repoRoot,
      entryPoints: [app.entry],
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      packages: "external",
      metafile: true,
      logLevel: "silent",
    });
    const dirs = new Set(
      Object.keys(result.metafile.inputs)
        .filter((i) => !i.startsWith("node_modules/"))
        .map((i) => i.split("/")[0]!),
    );
    const bundleStage = containerfile(file).stages.find((s) => s.name === "bundle")!;
    const copied = bundleStage.instructions
      .filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))
      .map((i) => i.args.split(/\s+/)[0]!.replace(/\/$/, "").split("/")[0]!);
    for (const d of dirs) assert.ok(copied.includes(d), `${file}/Containerfile does not copy ${d}/`);
    // The worker and the admission service share the API and the protocol, not the control plane.
    if (command !== "covenant-operator")
      assert.ok(!dirs.has("operator"), `${command} reaches operator/: ${[...dirs].join(", ")}`);
  }
});

test("every bundle is in an image, and bundles sharing an image keep their own license files", () => {
  for (const app of APP_BUNDLES)
    assert.ok(
      specs.some((s) => s.layers.some((l) => l.stage === app.stage)),
      `${app.command} is in no image`,
    );
  for (const s of specs) {
    const apps = APP_BUNDLES.filter((a) => s.layers.some((l) => l.stage === a.stage));
    const files = apps.map((a) => a.licenses);
    assert.equal(new Set(files).size, files.length, `${s.name}: ${files.join(", ")}`);
    assert.ok(files.includes("THIRD-PARTY-LICENSES.txt"), s.name);
  }
});

test("the operator image carries covenant-admission below the operator, in both builds", () => {
  const layers = spec("covenant-operator").layers.map((l) => l.stage);
  assert.deepEqual(layers.slice(-2), ["admission-app", "operator-app"]);
  const { stages } = containerfile("operator");
  const bundle = stages.find((s) => s.name === "bundle")!;
  const run = bundle.instructions.find((i) => i.op === "RUN" && i.args.includes("images/bundle.ts"));
  assert.match(run?.args ?? "", /images\/bundle\.ts \/stage \/prod covenant-operator covenant-admission$/);
  const copies = stages
    .at(-1)!
    .instructions.filter((i) => i.op === "COPY" && i.args.startsWith("--from=bundle"))
    .map((i) => i.args.split(/\s+/)[1]);
  assert.deepEqual(copies, ["/stage/admission-app/", "/stage/operator-app/"]);
});
