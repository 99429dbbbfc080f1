// Checkpoint bytes: the weights after a round, in a small self-describing,
// deterministic layout (same weights, same bytes):
//   "covenant-ckpt\n" | u32 LE header length | JSON header | fp32 LE data of each tensor
import { createHash } from "node:crypto";
import type { TensorSpec, Tensors } from "./kernels.ts";
import { tensorSize } from "./kernels.ts";

const MAGIC = new TextEncoder().encode("covenant-ckpt\n");

export interface CheckpointHeader {
  run: string;
  /** The weights are those after applying this round. */
  round: number;
  tensors: TensorSpec[];
}

export function encodeCheckpoint(h: CheckpointHeader, theta: Tensors): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ run: h.run, round: h.round, tensors: h.tensors }));
  const body = theta.reduce((a, t) => a + t.byteLength, 0);
  const out = new Uint8Array(MAGIC.length + 4 + header.length + body);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  let o = MAGIC.length + 4 + header.length;
  for (const t of theta) {
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), o);
    o += t.byteLength;
  }
  return out;
}

/** Parses a checkpoint and checks it against the expected run and model; throws with the reason. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  expect: { run: string; tensors: readonly TensorSpec[] },
): { header: CheckpointHeader; theta: Tensors } {
  if (bytes.length < MAGIC.length + 4 || !MAGIC.every((b, i) => bytes[i] === b))
    throw new Error("not a covenant checkpoint");
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + len > bytes.length) throw new Error("checkpoint header is truncated");
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + len)),
  ) as CheckpointHeader;
  if (header.run !== expect.run) throw new Error(`checkpoint of run ${header.run}, expected ${expect.run}`);
  if (JSON.stringify(header.tensors) !== JSON.stringify(expect.tensors))
    throw new Error("checkpoint tensors differ from the model's");
  const total = expect.tensors.reduce((a, t) => a + tensorSize(t) * 4, 0);
  let o = MAGIC.length + 4 + len;
  if (bytes.length - o !== total)
    throw new Error(`checkpoint body is ${bytes.length - o} bytes, expected ${total}`);
  const theta = expect.tensors.map((t) => {
    const n = tensorSize(t);
    const copy = new Float32Array(n);
    new Uint8Array(copy.buffer).set(bytes.subarray(o, o + n * 4));
    o += n * 4;
    return copy;
  });
  return { header, theta };
}

/** SHA-256 of the weights: equal digests mean bit-identical weights. */
export function weightsDigest(theta: Tensors): string {
  const h = createHash("sha256");
  for (const t of theta) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  return h.digest("hex");
}
