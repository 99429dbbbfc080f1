import assert from "node:assert/strict";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { CertificateAuthority, type Identity } from "../../e2e/stack/certs.ts";
import { ApiError, KubeClient } from "./client.ts";
import { CORE } from "./keys.ts";
import { FakeClock } from "./testing.ts";
import { ReloadingFile, sameTls } from "./transport.ts";

/** Replaces `dst` atomically, as the kubelet and cert-manager do (a reader never sees half a file). */
function rotate(src: string, dst: string): void {
  copyFileSync(src, `${dst}.tmp`);
  renameSync(`${dst}.tmp`, dst);
}

/** Listens on a loopback port for the length of `fn`, then closes every connection. */
async function withServer(
  server: http.Server | https.Server,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  try {
    const { port } = server.address() as { port: number };
    await fn(`${server instanceof https.Server ? "https" : "http"}://127.0.0.1:${port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A ConfigMap named after what identified the caller. */
const named = (res: http.ServerResponse, name: string, code = 200) =>
  res
    .writeHead(code, { "Content-Type": "application/json" })
    .end(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name } }));

function kubeConfig(
  server: string,
  cluster: { caFile?: string; skipTLSVerify?: boolean },
  user: Record<string, unknown>,
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: false, ...cluster }],
    users: [{ name: "u", ...user }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

describe("transport: rotated client certificates and CA", () => {
  let dir: string;
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let serving: { certFile: string; keyFile: string };
  let alice: Identity;
  let bob: Identity;
  let stranger: Identity; // signed by a CA the server does not trust

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "covenant-transport-"));
    const caDir = mkdtempSync(join(dir, "ca-"));
    const otherDir = mkdtempSync(join(dir, "other-"));
    ca = CertificateAuthority.create(caDir, "covenant-test-ca");
    otherCa = CertificateAuthority.create(otherDir, "covenant-other-ca");
    serving = ca.serving("server", ["127.0.0.1"], ["localhost"]);
    alice = ca.client("alice");
    bob = ca.client("bob");
    stranger = otherCa.client("stranger");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A server that requires a client certificate of `ca` and answers with its CN. */
  function mtlsServer(): { server: https.Server; connections: TLSSocket[] } {
    const connections: TLSSocket[] = [];
    const server = https.createServer(
      {
        cert: readFileSync(serving.certFile),
        key: readFileSync(serving.keyFile),
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
        named(res, String(cn));
      },
    );
    server.on("secureConnection", (s: TLSSocket) => connections.push(s));
    return { server, connections };
  }

  test("a client certificate rotated on disk is used once the reload interval passes", async () => {
    const { server, connections } = mtlsServer();
    const certFile = join(dir, "t1.crt");
    const keyFile = join(dir, "t1.key");
    rotate(alice.certFile, certFile);
    rotate(alice.keyFile, keyFile);
    const clock = new FakeClock();
    await withServer(server, async (url) => {
      const kc = kubeConfig(url, { caFile: ca.certFile }, { certFile, keyFile });
      const client = KubeClient.fromKubeConfig(kc, { clock });
      assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "alice");

      rotate(bob.certFile, certFile);
      rotate(bob.keyFile, keyFile);
      // Files are checked at most every 5 s: within that, the current connection is kept.
      assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "alice");
      clock.t += 5000;
      assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "bob");

      // The old agent was retired: its idle connection is closed, not left to linger.
      const first = connections[0]!;
      if (!first.destroyed) await once(first, "close");
      assert.ok(connections.length >= 2, "bob came on a new connection");
    });
  });

  test("after a TLS failure the next request re-reads the files, whatever the interval", async () => {
    const { server } = mtlsServer();
    const certFile = join(dir, "t2.crt");
    const keyFile = join(dir, "t2.key");
    rotate(stranger.certFile, certFile);
    rotate(stranger.keyFile, keyFile);
    const clock = new FakeClock(); // never advanced: only the failure can trigger the re-read
    await withServer(server, async (url) => {
      const kc = kubeConfig(url, { caFile: ca.certFile }, { certFile, keyFile });
      const client = KubeClient.fromKubeConfig(kc, { clock });
      await assert.rejects(client.get(CORE.configMaps, "ns", "x"), (e: unknown) => !(e instanceof ApiError));
      rotate(bob.certFile, certFile);
      rotate(bob.keyFile, keyFile);
      assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "bob");
    });
  });

  test("a rotated CA file is picked up (the server's new certificate verifies)", async () => {
    const { server } = mtlsServer();
    const caFile = join(dir, "t3-ca.crt");
    rotate(otherCa.certFile, caFile); // the wrong CA: the server's certificate does not verify
    const clock = new FakeClock();
    await withServer(server, async (url) => {
      const kc = kubeConfig(url, { caFile }, { certFile: alice.certFile, keyFile: alice.keyFile });
      const client = KubeClient.fromKubeConfig(kc, { clock });
      await assert.rejects(client.get(CORE.configMaps, "ns", "x"), /certificate|issuer/i);
      rotate(ca.certFile, caFile);
      assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "alice");
    });
  });
});

describe("transport: rotated token file", () => {
  test("the token file is re-read after a 401 at once, and otherwise every interval", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-token-"));
    try {
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, "one\n");
      let accepted = new Set(["one"]);
      const server = http.createServer((req, res) => {
        const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
        if (!accepted.has(token)) return named(res, "denied", 401);
        named(res, token);
      });
      const clock = new FakeClock();
      await withServer(server, async (url) => {
        // In-cluster configuration names the token file through this auth provider.
        const kc = kubeConfig(
          url,
          { skipTLSVerify: true },
          { authProvider: { name: "tokenFile", config: { tokenFile } } },
        );
        const client = KubeClient.fromKubeConfig(kc, { clock });
        assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "one");

        // The old token is revoked before the interval passes: one 401, then the new token.
        writeFileSync(tokenFile, "two\n");
        accepted = new Set(["two"]);
        await assert.rejects(
          client.get(CORE.configMaps, "ns", "x"),
          (e: unknown) => e instanceof ApiError && e.statusCode === 401,
        );
        assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "two");

        // A rotation with the old token still valid (the kubelet's way): picked up within 5 s.
        writeFileSync(tokenFile, "three");
        accepted = new Set(["two", "three"]);
        assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "two");
        clock.t += 5000;
        assert.equal((await client.get(CORE.configMaps, "ns", "x")).metadata?.name, "three");
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a plain http server needs skipTLSVerify, as @kubernetes/client-node requires", () => {
    assert.throws(
      () => KubeClient.fromKubeConfig(kubeConfig("http://127.0.0.1:1", {}, { token: "t" })),
      /HTTP protocol is not allowed/,
    );
  });
});

describe("ReloadingFile and sameTls", () => {
  test("keeps the last good content while the file is missing; fails if it never was", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-reload-"));
    try {
      const path = join(dir, "f");
      let now = 0;
      const f = new ReloadingFile(path, 1000, () => now);
      await assert.rejects(f.read(), { code: "ENOENT" });
      writeFileSync(path, "a");
      assert.equal((await f.read()).toString(), "a");
      writeFileSync(path, "b");
      assert.equal((await f.read()).toString(), "a", "within the interval");
      assert.equal((await f.read(true)).toString(), "b", "forced");
      rmSync(path);
      now += 1000;
      assert.equal((await f.read()).toString(), "b", "mid-rotation: the last good content");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("compares CA, certificate and key by bytes", () => {
    const a = { ca: Buffer.from("ca"), cert: Buffer.from("c"), key: Buffer.from("k") };
    assert.ok(sameTls(a, { ca: Buffer.from("ca"), cert: Buffer.from("c"), key: Buffer.from("k") }));
    assert.ok(!sameTls(a, { ...a, cert: Buffer.from("c2") }));
    assert.ok(!sameTls(a, { ...a, key: undefined }));
    assert.ok(sameTls({}, {}));
  });
});
