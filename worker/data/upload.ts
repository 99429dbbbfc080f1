#!/usr/bin/env -S node --import tsx
// The organiser's data command: tokenizes text into the run's N shards, writes them to an
// Object Store bucket on the run's bus (nats://BUCKET/PREFIX) or to a directory (file://DIR,
// also what a web server serves for https:// sources), and publishes manifest.json last,
// so a peer never reads a manifest whose shards are not all there yet.
//
//   node --import tsx worker/data/upload.ts --source nats://BUCKET/PREFIX --run RUN \
//     --nats-url URL --creds FILE --text FILE|DIR --shards N [--tokenizer byte|bpe:FILE]
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { StorageType } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { BusClient } from "../../protocol/bus/client.ts";
import { nkeySeedIn } from "../bus-login.ts";
import { MANIFEST_NAME, makeManifest, manifestText, shardEntry, shardObjectName } from "./manifest.ts";
import type { Manifest } from "./manifest.ts";
import { splitShard } from "./shard-bytes.ts";
import { parseDataSource } from "./source.ts";
import type { DataSource } from "./source.ts";
import { parseTokenizer, textFiles, tokenize } from "./tokenize.ts";
import type { TokenizerSpec } from "./tokenize.ts";

export const UPLOAD_USAGE = `upload: tokenize text into a run's token shards and publish them with a manifest

  node --import tsx worker/data/upload.ts --source URL --text FILE|DIR --shards N [flags]

  --source URL            nats://BUCKET[/PREFIX] (an Object Store bucket on the run's bus) or
                          file:///DIR (a directory; serve it over https for https:// sources)
  --text FILE|DIR         text to tokenize: a file is one document, a directory's files are
                          one document each (sorted by name); repeatable
  --shards N              shards to cut the tokens into (the run's spec.data.shards)
  --tokenizer T           byte (default) or bpe:FILE (a tiktoken-format vocabulary)
  --min-shard-tokens N    refuse to make shards smaller than this (default 1024)
  nats:// only:
  --run NAME              the run whose account holds the bucket
  --nats-url URL          the run's bus (env COVENANT_NATS_URL)
  --creds FILE            the operator's nkey seed or .creds file (env COVENANT_NATS_CREDS)
  --nkey-seed SEED        or the seed itself (visible to other users of this machine)
  --nats-ca FILE          verify the bus's TLS certificate against this CA
  --replicas N            copies of the bucket when it is created (default 1; 3 on the hub)
`;

export interface UploadOptions {
  source: DataSource;
  texts: string[];
  shards: number;
  tokenizer: TokenizerSpec;
  minShardTokens: number;
  run?: string;
  natsUrl?: string;
  nkeySeed?: string;
  credsFile?: string;
  natsCa?: string;
  replicas: number;
}

export type UploadArgs = { ok: true; options: UploadOptions } | { ok: false; error: string } | { ok: "help" };

const VALUED = new Set([
  "--source",
  "--text",
  "--shards",
  "--tokenizer",
  "--min-shard-tokens",
  "--run",
  "--nats-url",
  "--creds",
  "--nkey-seed",
  "--nats-ca",
  "--replicas",
]);

const positive = (v: string | undefined, min = 1): number | undefined => {
  const n = Number(v);
  return v !== undefined && Number.isSafeInteger(n) && n >= min ? n : undefined;
};

/** Pure: the command line and environment to options, or what is wrong. */
export function parseUploadArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): UploadArgs {
  const one = new Map<string, string>();
  const texts: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: "help" };
    const eq = arg.indexOf("=");
    const [name, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (!VALUED.has(name))
      return { ok: false, error: `unknown argument ${JSON.stringify(arg)} (see --help)` };
    const value = inline ?? argv[++i];
    if (value === undefined) return { ok: false, error: `${name} needs a value` };
    if (name === "--text") texts.push(value);
    else one.set(name, value);
  }
  const sourceText = one.get("--source");
  if (!sourceText) return { ok: false, error: "--source is required" };
  let source: DataSource;
  try {
    source = parseDataSource(sourceText);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  if (source.kind === "https")
    return {
      ok: false,
      error: "upload writes nats:// or file:// sources; for https://, write a file:// directory and serve it",
    };
  if (texts.length === 0) return { ok: false, error: "--text is required" };
  const shards = positive(one.get("--shards"));
  if (shards === undefined) return { ok: false, error: "--shards must be a positive integer" };
  let tokenizer: TokenizerSpec;
  try {
    tokenizer = parseTokenizer(one.get("--tokenizer") ?? "byte");
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  const minShardTokens = positive(one.get("--min-shard-tokens") ?? "1024");
  if (minShardTokens === undefined)
    return { ok: false, error: "--min-shard-tokens must be a positive integer" };
  const replicas = positive(one.get("--replicas") ?? "1");
  if (replicas === undefined || replicas > 5) return { ok: false, error: "--replicas must be 1..5" };
  const options: UploadOptions = { source, texts, shards, tokenizer, minShardTokens, replicas };
  if (source.kind === "nats") {
    options.run = one.get("--run");
    options.natsUrl = one.get("--nats-url") ?? env.COVENANT_NATS_URL;
    options.nkeySeed = one.get("--nkey-seed");
    options.credsFile = one.get("--creds") ?? env.COVENANT_NATS_CREDS;
    options.natsCa = one.get("--nats-ca");
    if (!options.run)
      return { ok: false, error: "--run is required for nats:// (the bucket lives in the run's account)" };
    if (!options.natsUrl) return { ok: false, error: "--nats-url is required for nats://" };
    if (!options.nkeySeed && !options.credsFile)
      return { ok: false, error: "--creds or --nkey-seed is required for nats://" };
  }
  return { ok: true, options };
}

/** One object of a corpus as published: shards, the BPE vocabulary, and the manifest last. */
export interface CorpusObject {
  object: string;
  bytes: Uint8Array;
}

export interface Corpus {
  manifest: Manifest;
  objects: CorpusObject[];
  tokens: number;
}

/** Pure: a tokenized stream cut into `shards` shards, with their manifest (the last object). */
export function buildCorpus(
  t: { whole: Buffer; tokenizer: Manifest["tokenizer"]; vocabulary?: Buffer },
  shards: number,
  minShardTokens: number,
): Corpus {
  const parts = splitShard(t.whole, shards);
  const entries = parts.map((p, i) => shardEntry(i, p, shardObjectName(i)));
  const tokens = entries.reduce((a, e) => a + e.tokens, 0);
  const smallest = Math.min(...entries.map((e) => e.tokens));
  if (smallest < minShardTokens)
    throw new Error(
      `${tokens} tokens make shards of ${smallest} tokens, fewer than --min-shard-tokens ${minShardTokens}: give more text or fewer shards`,
    );
  const manifest = makeManifest(t.tokenizer, entries);
  const objects: CorpusObject[] = parts.map((p, i) => ({ object: entries[i]!.object, bytes: p }));
  if (t.vocabulary && t.tokenizer.kind === "bpe" && t.tokenizer.object)
    objects.push({ object: t.tokenizer.object, bytes: t.vocabulary });
  objects.push({ object: MANIFEST_NAME, bytes: Buffer.from(manifestText(manifest)) });
  return { manifest, objects, tokens };
}

/** Where the objects go: put one, and a URL of one for the output. */
interface Destination {
  put(object: string, bytes: Uint8Array): Promise<void>;
  where(object: string): string;
  close(): Promise<void>;
}

function directory(dir: string): Destination {
  return {
    where: (object) => `file://${join(dir, object)}`,
    // Temporary name, fsync, rename: a reader (or a web server) never sees half a file.
    async put(object, bytes) {
      const path = join(dir, object);
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp-${process.pid}`;
      const fd = openSync(tmp, "w");
      try {
        writeSync(fd, bytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    },
    close: async () => undefined,
  };
}

async function bucket(o: UploadOptions, src: Extract<DataSource, { kind: "nats" }>): Promise<Destination> {
  const seedText = o.nkeySeed ?? readFileSync(o.credsFile!, "utf8");
  const seed = nkeySeedIn(seedText);
  if (!seed) throw new Error(`${o.credsFile ?? "--nkey-seed"} holds no NATS user nkey seed (SU...)`);
  const bus = await BusClient.connect({
    servers: o.natsUrl!,
    run: o.run!,
    name: "covenant-data-upload",
    nkeySeed: seed,
    ...(o.natsCa ? { tls: { caFile: o.natsCa } } : {}),
  });
  try {
    // Created by the organiser (the operator user may create streams in the run's account);
    // peers may read every stream of the account but publish only under their own hotkey,
    // so the bucket is read-only to them without further configuration.
    await new Objm(jetstream(bus.nc)).create(src.bucket, {
      replicas: o.replicas,
      storage: StorageType.File,
      description: "covenant token shards",
    });
  } catch (err) {
    await bus.close();
    throw err;
  }
  const name = (object: string) => (src.prefix ? `${src.prefix}/${object}` : object);
  return {
    where: (object) => `nats://${src.bucket}/${name(object)}`,
    put: (object, bytes) => bus.putObject(src.bucket, name(object), bytes),
    close: () => bus.close(),
  };
}

export async function upload(o: UploadOptions, out: (line: string) => void): Promise<Corpus> {
  const files = o.texts.flatMap(textFiles);
  const t = await tokenize(files, o.tokenizer);
  const corpus = buildCorpus(t, o.shards, o.minShardTokens);
  out(
    `tokenized ${files.length} documents: ${corpus.tokens} tokens (${t.tokenizer.kind}, vocabulary ${t.tokenizer.vocab})`,
  );
  const dest =
    o.source.kind === "nats"
      ? await bucket(o, o.source)
      : directory(o.source.kind === "file" ? o.source.dir : "");
  try {
    for (const { object, bytes } of corpus.objects) {
      await dest.put(object, bytes);
      const e = corpus.manifest.shards.find((s) => s.object === object);
      out(
        e
          ? `shard ${e.index}: ${e.tokens} tokens, ${e.bytes} bytes, sha256 ${e.sha256.slice(0, 16)}.. -> ${dest.where(object)}`
          : `${object}: ${bytes.length} bytes -> ${dest.where(object)}`,
      );
    }
  } finally {
    await dest.close();
  }
  out(`published ${o.shards} shards of ${o.source.url}`);
  return corpus;
}

async function main(): Promise<void> {
  const parsed = parseUploadArgs(process.argv.slice(2), process.env);
  if (parsed.ok === "help") return void process.stdout.write(UPLOAD_USAGE);
  if (!parsed.ok) {
    process.stderr.write(`upload: ${parsed.error}\n`);
    process.exit(2);
  }
  await upload(parsed.options, (line) => process.stdout.write(`${line}\n`));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`upload: ${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  });
}
