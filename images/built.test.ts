// test-limit: 300 s
// Checks the images `make images` built (build/images/*.oci.tar) as a runtime and a reviewer
// would: a valid OCI layout, the definition's user, entry point and environment, nothing owned
// by anyone but root except nonroot's home, no secrets or build machine files, and, as root,
// that node, the command and the native addons run from the image's own root file system
// (chroot as uid 65532), and that containerd imports the archives and runs them read-only
// (when containerd, ctr and runc are installed). Skipped when nothing is built, unless
// COVENANT_IMAGES_REQUIRED names images (`make images` sets it).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  lchownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import { APP_BUNDLES } from "./bundle.ts";
import { loadSpecs, repoRoot } from "./build.ts";
import { NONROOT_UID, type ImageSpec } from "./definitions.ts";
import { ctrImportArgs, readImages } from "./digests.ts";
import { flatten, verifyArchive, type TarMember, type VerifiedImage } from "./oci/verify.ts";

const { specs, env } = loadSpecs();
const built = readImages();
const required = (process.env.COVENANT_IMAGES_REQUIRED ?? "").split(/\s+/).filter(Boolean);
const EPOCH = Number(env.IMAGES_SOURCE_DATE_EPOCH);
const scratch = mkdtempSync(join(tmpdir(), "built-images-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

// Each archive is read and checked once (40 MB of gzip), then shared by the tests of its image.
const verified = new Map<string, VerifiedImage>();
const verify = (archive: string): VerifiedImage => {
  if (!verified.has(archive)) verified.set(archive, verifyArchive(readFileSync(archive)));
  return verified.get(archive)!;
};

/** Writes a flattened image file system to a directory (ownership as in the image). */
function extract(fs: Map<string, TarMember>, dir: string): void {
  const members = [...fs.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const m of members) {
    const p = join(dir, m.path);
    if (m.type === "5") mkdirSync(p, { recursive: true });
    else if (m.type === "2") symlinkSync(m.linkname, p);
    else if (m.type === "1") linkSync(join(dir, m.linkname), p);
    else writeFileSync(p, m.data);
  }
  // Modes after contents: a directory made read-only first could not be filled.
  for (const m of members.reverse()) {
    if (m.type === "2" || m.type === "1") continue;
    chmodSync(join(dir, m.path), m.mode);
    if (isRoot) lchownSync(join(dir, m.path), m.uid, m.gid);
  }
}

// chroot from this machine's PATH: the command itself runs with the image's environment.
const chroot = spawnSync("sh", ["-c", "command -v chroot"], { encoding: "utf8" }).stdout.trim();

/** Runs a command inside an image's root file system as nonroot, with the image's environment. */
function inImage(root: string, image: VerifiedImage, argv: string[]): { status: number | null; out: string } {
  const r = spawnSync(chroot, [`--userspec=${NONROOT_UID}:${NONROOT_UID}`, root, ...argv], {
    encoding: "utf8",
    env: Object.fromEntries((image.config.config.Env ?? []).map((e) => e.split(/=(.*)/s).slice(0, 2))),
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ""}` };
}

// Names no file in an image may have, and content no file may hold.
const FORBIDDEN_PATHS = [
  /(^|\/)\.git(\/|$)/,
  /(^|\/)\.npmrc$/,
  /(^|\/)id_(rsa|ed25519|ecdsa)/,
  /\.pem$/,
  /\.key$/,
  /^etc\/(resolv\.conf|hostname|machine-id)$/,
  /(^|\/)\.env$/,
];
const FORBIDDEN_CONTENT = /-----BEGIN [A-Z ]*PRIVATE KEY-----|\bSU[A-Z2-7]{56}\b|\/work\/main\b/;

/** The bundles an image carries: its entry point's, and covenant-admission in the operator image. */
const bundlesOf = (spec: ImageSpec) =>
  APP_BUNDLES.filter((a) => spec.layers.some((l) => l.stage === a.stage));
/** How each command's --help starts. */
const HELP: Record<string, RegExp> = {
  "covenant-operator": /^Usage: covenant-operator/,
  "covenant-worker": /^covenant-worker: /,
  "covenant-admission": /^Usage: covenant-admission/,
};

for (const spec of specs) {
  const record = built[spec.name as keyof typeof built];
  const archive = record ? join(repoRoot, record.archive) : "";
  const present = record !== undefined && existsSync(archive);
  const skip = !present && !required.includes(spec.name) ? "not built (make images)" : false;

  test(
    `${spec.name}: a valid OCI archive with the recorded digest and the definition's config`,
    { skip },
    () => {
      assert.ok(present, `${spec.name} is not built: ${archive || "no entry in images.json"}`);
      const image = verify(archive);
      assert.equal(image.digest, record!.digest);
      assert.equal(readFileSync(archive.replace(/\.oci\.tar$/, ".digest"), "utf8").trim(), image.digest);
      assert.equal(record!.ref, `${spec.repository}@${image.digest}`);
      assert.equal(image.annotations["io.containerd.image.name"], `${spec.repository}:${spec.tag}`);
      const c = image.config.config;
      assert.equal(c.User, `${NONROOT_UID}:${NONROOT_UID}`);
      assert.deepEqual(c.Entrypoint, spec.runtime.entrypoint);
      assert.deepEqual(c.Env, spec.runtime.env);
      assert.equal(image.config.created, new Date(EPOCH * 1000).toISOString().replace(".000Z", "Z"));
      assert.equal(image.manifest.layers.length, spec.layers.length);
    },
  );

  test(`${spec.name}: root-owned files at the epoch, no secrets, no build machine files`, { skip }, () => {
    const image = verify(archive);
    const fs = flatten(image.layers);
    for (const layer of image.layers) {
      for (const m of layer) {
        assert.equal(m.mtime, EPOCH, m.path);
        if (m.path !== "home/nonroot") assert.deepEqual([m.uid, m.gid], [0, 0], m.path);
        assert.ok(!(m.mode & 0o6000), `${m.path} is setuid or setgid`);
        assert.ok(m.type === "5" || m.type === "2" || !(m.mode & 0o002), `${m.path} is writable by anyone`);
        for (const re of FORBIDDEN_PATHS) assert.doesNotMatch(m.path, re);
        if (m.type === "0" && m.data.length < 8 << 20)
          assert.doesNotMatch(m.data.toString("latin1"), FORBIDDEN_CONTENT, m.path);
      }
    }
    assert.equal(fs.get("home/nonroot")?.uid, NONROOT_UID);
    assert.equal(fs.get("tmp")?.mode, 0o1777);
    assert.match(fs.get("etc/passwd")!.data.toString(), /^nonroot:x:65532:65532:/m);
    assert.equal(fs.get("usr/local/bin/node")?.mode, 0o755);
    const command = spec.runtime.entrypoint[0]!.slice(1);
    assert.equal(fs.get(command)?.type, "2", `${command} is a link to the bundle`);
    assert.ok(fs.get("app/THIRD-PARTY-LICENSES.txt"), "the bundled packages' licenses");
    for (const app of bundlesOf(spec)) {
      assert.equal(fs.get(`usr/local/bin/${app.command}`)?.linkname, `../../../app/${app.command}.mjs`);
      assert.equal(fs.get(`app/${app.command}.mjs`)?.mode, 0o755, app.command);
      assert.ok(fs.get(`app/${app.licenses}`), `${app.command}: its packages' licenses`);
    }
    if (spec.name === "covenant-operator") assert.ok(fs.get("usr/local/bin/covenant-admission"));
    assert.ok(fs.get("usr/local/share/doc/node/LICENSE"), "Node's license");
    assert.ok(fs.get("var/lib/dpkg/status.d/libc6"), "the Debian packages, for scanners");
    if (spec.name.startsWith("covenant-worker")) {
      for (const f of ["covenant_codec.node", "libcovenant_codec.so", "covenant_engine.node"])
        assert.ok(fs.get(`app/kernels/${f}`), f);
    }
    if (spec.name === "covenant-worker-cuda") assert.ok(fs.get("usr/local/cuda/lib64/libcudart.so.13"));
  });

  test(
    `${spec.name}: node, the command and its addons run in the image as nonroot`,
    { skip: skip || (!isRoot && "needs root (chroot)") },
    () => {
      const image = verify(archive);
      const root = join(scratch, spec.name);
      mkdirSync(root);
      extract(flatten(image.layers), root);
      const node = inImage(root, image, ["/usr/local/bin/node", "--version"]);
      assert.equal(node.status, 0, node.out);
      assert.equal(node.out.trim(), `v${env.NODE_VERSION}`);
      const help = inImage(root, image, [...spec.runtime.entrypoint, "--help"]);
      assert.equal(help.status, 0, help.out);
      assert.match(
        help.out,
        spec.name === "covenant-operator" ? /^Usage: covenant-operator/ : /^covenant-worker: /,
      );
      // Every command the image carries, by its PATH name (the chart's admission Deployment
      // runs `covenant-admission` from the operator image).
      for (const app of bundlesOf(spec)) {
        const r = inImage(root, image, [app.command, "--help"]);
        assert.equal(r.status, 0, `${app.command}: ${r.out}`);
        assert.match(r.out, HELP[app.command]!, app.command);
      }
      if (spec.name.startsWith("covenant-worker")) {
        // Load both addons the way kernels/binding does, through the image's environment.
        const script = [
          'const { createRequire } = require("node:module");',
          "const req = createRequire(process.env.COVENANT_CODEC_ADDON);",
          "const codec = req(process.env.COVENANT_CODEC_ADDON);",
          "const engine = req(process.env.COVENANT_ENGINE_ADDON);",
          "console.log(JSON.stringify({ wire: codec.wireVersion, cuda: codec.cudaAvailable(), engine: Object.keys(engine).length > 0 }));",
        ].join("\n");
        const addons = inImage(root, image, ["/usr/local/bin/node", "-e", script]);
        assert.equal(addons.status, 0, addons.out);
        const r = JSON.parse(addons.out.trim().split("\n").at(-1)!) as {
          wire: number;
          cuda: boolean;
          engine: boolean;
        };
        assert.ok(r.wire > 0 && r.engine, addons.out);
        // No GPU here: the CUDA build loads its runtime and finds no device; the CPU build has none.
        if (spec.name === "covenant-worker-cpu") assert.equal(r.cuda, false);
      }
    },
  );
}

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const builtNames = specs.map((s) => s.name).filter((n) => built[n as keyof typeof built]);

test(
  "containerd imports every archive (ctr images import) and runs it read-only as nonroot",
  {
    skip:
      (builtNames.length === 0 && "nothing built (make images)") ||
      (!isRoot && "needs root") ||
      (!["containerd", "ctr", "runc"].every(has) && "containerd, ctr or runc is not installed"),
  },
  async () => {
    // A private containerd: its own root, state, socket, fifos and containerd namespace (whose
    // cgroups are removed afterwards), so nothing else on the machine is touched.
    const dir = mkdtempSync(join(tmpdir(), "images-containerd-"));
    const namespace = `covenant-images-${process.pid}`;
    const address = join(dir, "containerd.sock");
    writeFileSync(
      join(dir, "config.toml"),
      `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n` +
        `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${address}"\n` +
        `[plugins."io.containerd.internal.v1.opt"]\n  path = "${dir}/opt"\n`,
    );
    const daemon = spawn("containerd", ["--config", join(dir, "config.toml")], { stdio: "ignore" });
    const ctr = (...args: string[]) =>
      spawnSync("ctr", ["--address", address, "--namespace", namespace, ...args], {
        encoding: "utf8",
        timeout: 120_000,
      });
    try {
      for (let i = 0; i < 100 && !existsSync(address); i++) await sleep(100);
      for (const name of builtNames) {
        const record = built[name as keyof typeof built]!;
        const imported = ctr(...ctrImportArgs(record));
        assert.equal(imported.status, 0, imported.stderr);
        const names = ctr("images", "ls", "--quiet").stdout.split("\n");
        assert.ok(names.includes(record.name), `${record.name} in ${names.join(" ")}`);
        assert.ok(names.includes(record.ref), `${record.ref} in ${names.join(" ")}`);
        const spec = specs.find((s) => s.name === name)!;
        const script = "console.log(process.getuid(), process.getgid())";
        // By digest, as pods name it.
        const id = ctr(
          "run",
          "--rm",
          "--read-only",
          "--fifo-dir",
          join(dir, "fifo"),
          record.ref,
          `${name}-id`,
          "node",
          "-e",
          script,
        );
        assert.equal(id.stdout.trim(), `${NONROOT_UID} ${NONROOT_UID}`, id.stderr);
        // Each command by its PATH name, as the operator's worker pods start the worker and the
        // chart's admission Deployment starts covenant-admission.
        for (const { command } of bundlesOf(spec)) {
          const help = ctr(
            "run",
            "--rm",
            "--read-only",
            "--fifo-dir",
            join(dir, "fifo"),
            record.name,
            `${name}-${command}-help`,
            command,
            "--help",
          );
          assert.equal(help.status, 0, help.stderr);
          assert.match(help.stdout, new RegExp(command));
        }
      }
    } finally {
      daemon.kill("SIGTERM");
      const exited = once(daemon, "exit");
      if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false)
        daemon.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      removeNamespaceCgroups(namespace);
    }
  },
);

/** The (empty, once its containers are gone) cgroups runc made for a containerd namespace. */
function removeNamespaceCgroups(namespace: string): void {
  const root = "/sys/fs/cgroup";
  if (!existsSync(root)) return;
  for (const controller of readdirSync(root)) {
    const path = join(root, controller, namespace);
    if (!existsSync(path)) continue;
    for (const child of readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      rmdirQuietly(join(path, child.name));
    }
    rmdirQuietly(path);
  }
}

function rmdirQuietly(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // still in use, or already gone (controllers mounted together share one directory)
  }
}
