// Prints one summary line over every test result file of a `make test` run:
// node's TAP output (*.tap) and CTest's JUnit XML (*.xml). Exits non-zero when a
// test failed or when no test ran at all.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

const zero = (): Counts => ({ passed: 0, failed: 0, skipped: 0 });

/** Counts from the closing `# pass N` lines node's TAP reporter writes. */
export function countTap(text: string): Counts {
  const num = (key: string) => Number(new RegExp(`^# ${key} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    passed: num("pass"),
    failed: num("fail") + num("cancelled"),
    skipped: num("skipped") + num("todo"),
  };
}

/** Counts from the `<testsuite tests= failures= ...>` element of a JUnit file. */
export function countJunit(xml: string): Counts {
  const attr = (key: string) =>
    Number(new RegExp(`<testsuite\\b[^>]*\\b${key}="(\\d+)"`).exec(xml)?.[1] ?? 0);
  const tests = attr("tests");
  const failed = attr("failures") + attr("errors");
  const skipped = attr("skipped") + attr("disabled");
  return { passed: tests - failed - skipped, failed, skipped };
}

export function summarise(dir: string): Counts {
  const total = zero();
  for (const name of readdirSync(dir).sort()) {
    const text = readFileSync(join(dir, name), "utf8");
    const c = name.endsWith(".tap") ? countTap(text) : name.endsWith(".xml") ? countJunit(text) : zero();
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  }
  return total;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const c = summarise(process.argv[2] ?? "build/test-results");
  console.log(`\nsummary: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
  process.exit(c.failed > 0 || c.passed === 0 ? 1 : 0);
}
