// Checkpoint bytes: the state after a round, in a small self-describing,
// deterministic layout (same state, same bytes):
//   "covenant-ckpt\n" | u32 LE header length | JSON header | fp32 LE data of each tensor
//   [| fp32 LE outer momentum of each tensor, when the header says "momentum": true]
// The momentum (spec.outer.optimizer nesterov) follows the weights; a checkpoint of a round
// applied with sgd has none, and its bytes are those of the weights-only layout.
import { createHash } from "node:crypto";
import type { TensorSpec, Tensors } from "./kernels.ts";
import { tensorSize } from "./kernels.ts";

const MAGIC = new TextEncoder().encode("covenant-ckpt\n");
/** Separates the weights from the momentum in a state digest. */
const MOMENTUM_TAG = new TextEncoder().encode("covenant-outer-momentum\n");

export interface CheckpointHeader {
  run: string;
  /** The weights are those after applying this round. */
  round: number;
  tensors: TensorSpec[];
  /** True when the outer momentum of every tensor follows the weights (nesterov rounds). */
  momentum?: true;
}

export interface CheckpointExpectation {
  run: string;
  tensors: readonly TensorSpec[];
  /**
   * Whether the state after the checkpoint's round holds an outer momentum (its config's outer
   * optimizer is nesterov); a checkpoint that differs is refused. Undefined: not checked.
   */
  momentum?: boolean | ((round: number) => boolean);
}

export function encodeCheckpoint(h: CheckpointHeader, theta: Tensors, momentum?: Tensors): Uint8Array {
  const fields: CheckpointHeader = { run: h.run, round: h.round, tensors: h.tensors };
  if (momentum) fields.momentum = true;
  const header = new TextEncoder().encode(JSON.stringify(fields));
  const parts = momentum ? [...theta, ...momentum] : theta;
  const body = parts.reduce((a, t) => a + t.byteLength, 0);
  const out = new Uint8Array(MAGIC.length + 4 + header.length + body);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  let o = MAGIC.length + 4 + header.length;
  for (const t of parts) {
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), o);
    o += t.byteLength;
  }
  return out;
}

/** Length of a checkpoint's JSON header; throws when the bytes are not a checkpoint. */
function headerLength(bytes: Uint8Array): number {
  if (bytes.length < MAGIC.length + 4 || !MAGIC.every((b, i) => bytes[i] === b))
    throw new Error("not a covenant checkpoint");
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + len > bytes.length) throw new Error("checkpoint header is truncated");
  return len;
}

/** A checkpoint's header alone (run, round, tensors), unchecked; throws when it is not one. */
export function readCheckpointHeader(bytes: Uint8Array): CheckpointHeader {
  const len = headerLength(bytes);
  try {
    return JSON.parse(
      new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + len)),
    ) as CheckpointHeader;
  } catch {
    throw new Error("checkpoint header is not JSON");
  }
}

/** Parses a checkpoint and checks it against the expected run and model; throws with the reason. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  expect: CheckpointExpectation,
): { header: CheckpointHeader; theta: Tensors; momentum?: Tensors } {
  const len = headerLength(bytes);
  const header = readCheckpointHeader(bytes);
  if (header.run !== expect.run) throw new Error(`checkpoint of run ${header.run}, expected ${expect.run}`);
  if (JSON.stringify(header.tensors) !== JSON.stringify(expect.tensors))
    throw new Error("checkpoint tensors differ from the model's");
  if (header.momentum !== undefined && header.momentum !== true)
    throw new Error(`checkpoint header has momentum ${JSON.stringify(header.momentum)}`);
  const has = header.momentum === true;
  const want = typeof expect.momentum === "function" ? expect.momentum(header.round) : expect.momentum;
  if (want !== undefined && want !== has)
    throw new Error(
      has
        ? `checkpoint of round ${header.round} holds an outer momentum, but the run's outer optimizer ` +
          `for that round is sgd`
        : `checkpoint of round ${header.round} holds no outer momentum, but the run's outer optimizer ` +
          `for that round is nesterov: a peer could not continue from it bit-identically`,
    );
  const weights = expect.tensors.reduce((a, t) => a + tensorSize(t) * 4, 0);
  const total = has ? 2 * weights : weights;
  let o = MAGIC.length + 4 + len;
  if (bytes.length - o !== total)
    throw new Error(`checkpoint body is ${bytes.length - o} bytes, expected ${total}`);
  const read = () =>
    expect.tensors.map((t) => {
      const n = tensorSize(t);
      const copy = new Float32Array(n);
      new Uint8Array(copy.buffer).set(bytes.subarray(o, o + n * 4));
      o += n * 4;
      return copy;
    });
  const theta = read();
  return has ? { header, theta, momentum: read() } : { header, theta };
}

/** SHA-256 of the weights: equal digests mean bit-identical weights. */
export function weightsDigest(theta: Tensors): string {
  const h = createHash("sha256");
  for (const t of theta) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  return h.digest("hex");
}

/**
 * SHA-256 of a replica's state: the weights digest when there is no outer momentum (sgd), else
 * the weights, a separator and the momentum. Equal digests mean the peers will also take the
 * next outer step identically.
 */
export function stateDigest(theta: Tensors, momentum?: Tensors): string {
  if (!momentum) return weightsDigest(theta);
  const h = createHash("sha256");
  for (const t of theta) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  h.update(MOMENTUM_TAG);
  for (const t of momentum) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  return h.digest("hex");
}
