import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startFileServer } from "../../e2e/data/https-server.ts";
import type { FileServer } from "../../e2e/data/https-server.ts";
import { tempDir } from "../../e2e/stack/paths.ts";
import { HttpsFetcher } from "./fetch-https.ts";
import { FetchError } from "./source.ts";

const rejectsWith = (p: Promise<unknown>, reason: string, message?: RegExp) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FetchError, String(err));
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });

describe("https:// fetcher", { timeout: 30_000 }, () => {
  const tmp = tempDir("data-https");
  const root = join(tmp.path, "root");
  const work = join(tmp.path, "work");
  const blob = randomBytes(256 * 1024);
  let server: FileServer;
  let fetcher: HttpsFetcher;
  let n = 0;
  const partial = () => join(work, `p${n++}.partial`);

  before(async () => {
    mkdirSync(join(root, "corpus"), { recursive: true });
    mkdirSync(work);
    writeFileSync(join(root, "corpus", "shard-00000.tok"), blob);
    writeFileSync(join(root, "corpus", "manifest.json"), "{}");
    server = await startFileServer(root, tmp.path);
    fetcher = new HttpsFetcher(server.url, new URL("corpus/", server.url), { caFile: server.caFile });
  });
  after(async () => {
    await server?.close();
    tmp.remove();
  });

  test("reads small objects whole; a missing one is undefined; a large one is refused", async () => {
    assert.equal(new TextDecoder().decode(await fetcher.read("manifest.json", 1024)), "{}");
    assert.equal(await fetcher.read("nothing.json", 1024), undefined);
    await rejectsWith(fetcher.read("shard-00000.tok", 1024), "size_mismatch", /larger than 1024 bytes/);
  });

  test("downloads a shard, and resumes a partial one with a Range request", async () => {
    const p = partial();
    await fetcher.fetch("shard-00000.tok", blob.length, p);
    assert.deepEqual(readFileSync(p), blob);

    const q = partial();
    writeFileSync(q, blob.subarray(0, 100_000));
    server.requests.length = 0;
    await fetcher.fetch("shard-00000.tok", blob.length, q);
    assert.deepEqual(server.requests, [{ path: "/corpus/shard-00000.tok", range: "bytes=100000-" }]);
    assert.deepEqual(readFileSync(q), blob);
  });

  test("a cut connection keeps what arrived; the next attempt asks only for the rest", async () => {
    const p = partial();
    server.behave.cutAfterBytes = 64 * 1024;
    try {
      await rejectsWith(fetcher.fetch("shard-00000.tok", blob.length, p), "unreachable");
    } finally {
      delete server.behave.cutAfterBytes;
    }
    const got = statSync(p).size;
    assert.ok(got > 0 && got < blob.length, `kept ${got} bytes`);
    server.requests.length = 0;
    await fetcher.fetch("shard-00000.tok", blob.length, p);
    assert.deepEqual(server.requests, [{ path: "/corpus/shard-00000.tok", range: `bytes=${got}-` }]);
    assert.deepEqual(readFileSync(p), blob);
  });

  test("a server without ranges sends everything again, and the partial starts over", async () => {
    const p = partial();
    writeFileSync(p, randomBytes(5000));
    server.behave.ranges = false;
    try {
      await fetcher.fetch("shard-00000.tok", blob.length, p);
    } finally {
      server.behave.ranges = true;
    }
    assert.deepEqual(readFileSync(p), blob);
  });

  test("sizes that disagree with the manifest are refused without filling the disk", async () => {
    // The server's object is longer than listed: refused from the headers (200 or 206).
    await rejectsWith(fetcher.fetch("shard-00000.tok", blob.length - 10, partial()), "size_mismatch");
    const p = partial();
    writeFileSync(p, blob.subarray(0, 10));
    await rejectsWith(fetcher.fetch("shard-00000.tok", blob.length - 10, p), "size_mismatch");
    // Shorter than listed, with a partial already past its end: 416.
    const q = partial();
    writeFileSync(q, blob);
    await rejectsWith(fetcher.fetch("shard-00000.tok", blob.length + 100, q), "size_mismatch", /shorter/);
  });

  test("a missing shard, an untrusted server", async () => {
    await rejectsWith(fetcher.fetch("shard-00009.tok", 100, partial()), "missing", /HTTP 404/);
    const untrusted = new HttpsFetcher(server.url, new URL("corpus/", server.url));
    await rejectsWith(
      untrusted.fetch("shard-00000.tok", blob.length, partial()),
      "unreachable",
      /certificate/,
    );
    await rejectsWith(untrusted.read("manifest.json", 1024), "unreachable", /certificate/);
  });
});
