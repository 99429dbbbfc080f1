// Test text for the data tests: a few documents of word salad from a fixed seed, and the
// byte-level token stream the upload command must make of them.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const WORDS = (
  "the a peer trains on its shards and sends a compressed pseudo gradient to the bus where " +
  "a validator scores every submission selects the best and all peers apply the same outer step"
).split(" ");

/** `docs` text files of about `bytes` bytes each in `dir` (doc-0.txt, doc-1.txt, ...). */
export function writeCorpus(dir: string, docs: number, bytes: number, seed = 1): string[] {
  mkdirSync(dir, { recursive: true });
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  const files: string[] = [];
  for (let d = 0; d < docs; d++) {
    const words: string[] = [];
    for (let n = 0; n < bytes; ) {
      const w = WORDS[next() % WORDS.length]!;
      words.push(w);
      n += w.length + 1;
    }
    const file = join(dir, `doc-${d}.txt`);
    writeFileSync(file, `${words.join(" ")}.\n`);
    files.push(file);
  }
  return files;
}

/** The byte-level tokens of documents, cut into n shards as upload cuts them. */
export function expectedShards(documents: readonly Buffer[], n: number): number[][] {
  const all = documents.flatMap((d) => [...d, 256]);
  return Array.from({ length: n }, (_, i) =>
    all.slice(Math.floor((i * all.length) / n), Math.floor(((i + 1) * all.length) / n)),
  );
}
