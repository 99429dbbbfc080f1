import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeCheckpoint, encodeCheckpoint, weightsDigest } from "./checkpoint.ts";

const tensors = [
  { name: "a", dims: [2, 3] },
  { name: "b", dims: [4] },
];
const theta = [Float32Array.from([1, 2, 3, 4, 5, 6]), Float32Array.from([-1, 0.5, NaN, 7])];

test("checkpoints round-trip bit for bit and are deterministic", () => {
  const bytes = encodeCheckpoint({ run: "r", round: 9, tensors }, theta);
  assert.deepEqual(bytes, encodeCheckpoint({ run: "r", round: 9, tensors }, theta));
  const back = decodeCheckpoint(bytes, { run: "r", tensors });
  assert.equal(back.header.round, 9);
  assert.equal(weightsDigest(back.theta), weightsDigest(theta));
});

test("a checkpoint of another run, model or a truncated one is refused", () => {
  const bytes = encodeCheckpoint({ run: "r", round: 1, tensors }, theta);
  assert.throws(() => decodeCheckpoint(bytes, { run: "s", tensors }), /run r, expected s/);
  assert.throws(() => decodeCheckpoint(bytes, { run: "r", tensors: [tensors[0]!] }), /tensors differ/);
  assert.throws(
    () => decodeCheckpoint(bytes.subarray(0, bytes.length - 1), { run: "r", tensors }),
    /body is/,
  );
  assert.throws(
    () => decodeCheckpoint(new Uint8Array(8), { run: "r", tensors }),
    /not a covenant checkpoint/,
  );
});
