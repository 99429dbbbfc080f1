import assert from "node:assert/strict";
import { test } from "node:test";
import { countJunit, countTap } from "./test-summary.ts";

test("counts node TAP closing lines", () => {
  const tap = "ok 1 - a\nnot ok 2 - b\n# tests 3\n# pass 1\n# fail 1\n# cancelled 0\n# skipped 1\n# todo 0\n";
  assert.deepEqual(countTap(tap), { passed: 1, failed: 1, skipped: 1 });
});

test("counts CTest JUnit suites", () => {
  const xml = '<testsuite name="x" tests="5" failures="1" disabled="1" skipped="0" hostname="">';
  assert.deepEqual(countJunit(xml), { passed: 3, failed: 1, skipped: 1 });
});

test("a file without counts adds nothing", () => {
  assert.deepEqual(countTap("garbage"), { passed: 0, failed: 0, skipped: 0 });
});
