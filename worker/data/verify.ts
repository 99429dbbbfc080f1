// Checks a file against its manifest entry: size first (cheap, and a wrong size needs no
// hashing), then the SHA-256 of every byte, streamed so a large shard is never held in memory.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ShardEntry } from "./manifest.ts";
import type { FetchReason } from "./source.ts";

export type Verdict = { ok: true } | { ok: false; reason: FetchReason; detail: string };

export async function sha256OfFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

export async function verifyFile(
  path: string,
  entry: Pick<ShardEntry, "bytes" | "sha256">,
): Promise<Verdict> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return { ok: false, reason: "missing", detail: `${path} does not exist` };
    throw err;
  }
  if (size !== entry.bytes)
    return { ok: false, reason: "size_mismatch", detail: `${size} bytes, the manifest says ${entry.bytes}` };
  const digest = await sha256OfFile(path);
  if (digest !== entry.sha256)
    return {
      ok: false,
      reason: "digest_mismatch",
      detail: `SHA-256 ${digest.slice(0, 16)}.., the manifest says ${entry.sha256.slice(0, 16)}..`,
    };
  return { ok: true };
}
