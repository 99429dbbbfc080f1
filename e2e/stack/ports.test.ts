import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { drawRange, freePort } from "./ports.ts";

test("ports are drawn below the kernel's ephemeral range, where no outgoing connection lands", () => {
  assert.deepEqual(drawRange("32768\t60999\n"), [10_000, 32_767]);
  assert.deepEqual(drawRange("15000 60999"), [10_000, 14_999]);
  // No room below it, or no range known: the kernel's own choice.
  assert.equal(drawRange("10500 60999"), undefined);
  assert.equal(drawRange(undefined), undefined);
  assert.equal(drawRange("garbage"), undefined);
});

test("a port handed out is free, and never handed out twice", async () => {
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    assert.ok(!seen.has(port), `port ${port} handed out twice`);
    seen.add(port);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    await new Promise((r) => server.close(r));
  }
});
