// A test file that passes at once; run-tests.test.ts runs it beside one that hangs.
import assert from "node:assert/strict";
import { test } from "node:test";

test("adds", () => {
  assert.equal(1 + 1, 2);
});
