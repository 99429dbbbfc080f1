import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeCheckpoint, encodeCheckpoint, stateDigest, weightsDigest } from "./checkpoint.ts";

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

test("a weights-only checkpoint is the layout it always was (sgd)", () => {
  const bytes = encodeCheckpoint({ run: "r", round: 3, tensors }, theta);
  const len = new DataView(bytes.buffer).getUint32(14, true);
  const header = new TextDecoder().decode(bytes.subarray(18, 18 + len));
  assert.equal(header, JSON.stringify({ run: "r", round: 3, tensors }));
  assert.equal(bytes.length, 18 + len + 40);
  assert.equal(stateDigest(theta), weightsDigest(theta));
  // Read for a run whose round used sgd, and with no expectation.
  assert.equal(decodeCheckpoint(bytes, { run: "r", tensors, momentum: false }).momentum, undefined);
  assert.equal(decodeCheckpoint(bytes, { run: "r", tensors }).momentum, undefined);
});

const momentum = [Float32Array.from([0.1, 0, -0.2, 3, 0, 1e-7]), Float32Array.from([0, 0, 0, -4])];

test("a checkpoint with the outer momentum round-trips both bit for bit", () => {
  const bytes = encodeCheckpoint({ run: "r", round: 9, tensors }, theta, momentum);
  assert.deepEqual(bytes, encodeCheckpoint({ run: "r", round: 9, tensors }, theta, momentum));
  const back = decodeCheckpoint(bytes, { run: "r", tensors, momentum: (round) => round === 9 });
  assert.equal(back.header.momentum, true);
  assert.equal(stateDigest(back.theta, back.momentum), stateDigest(theta, momentum));
  assert.equal(weightsDigest(back.momentum!), weightsDigest(momentum));
  // The state digest covers the momentum: other momentum, another digest.
  assert.notEqual(stateDigest(theta, momentum), weightsDigest(theta));
  const other = momentum.map((t) => t.slice());
  other[1]![3] = -4.5;
  assert.notEqual(stateDigest(theta, other), stateDigest(theta, momentum));
  assert.throws(
    () => decodeCheckpoint(bytes.subarray(0, bytes.length - 4), { run: "r", tensors }),
    /body is \d+ bytes, expected 80/,
  );
});

test("a checkpoint whose momentum does not match the run's outer optimizer is refused", () => {
  const withM = encodeCheckpoint({ run: "r", round: 4, tensors }, theta, momentum);
  const without = encodeCheckpoint({ run: "r", round: 4, tensors }, theta);
  assert.throws(
    () => decodeCheckpoint(withM, { run: "r", tensors, momentum: false }),
    /checkpoint of round 4 holds an outer momentum, but the run's outer optimizer for that round is sgd/,
  );
  assert.throws(
    () => decodeCheckpoint(without, { run: "r", tensors, momentum: () => true }),
    /checkpoint of round 4 holds no outer momentum, but the run's outer optimizer for that round is nesterov/,
  );
});
