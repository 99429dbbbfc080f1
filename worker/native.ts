// Adapters from the N-API bindings in kernels/binding/ to the worker's Codec and
// Engine interfaces, configured from the run configuration.
import * as codecBinding from "../kernels/binding/codec.ts";
import type { CodecConfig, TensorSpec as BindingTensor } from "../kernels/binding/codec.ts";
import type { ResolvedRunConfig } from "../api/runconfig.ts";
import type { Codec, Engine, PayloadCheck, TensorSpec } from "./kernels.ts";
import { openEngine } from "./engine-native.ts";

export function toBindingSpec(tensors: readonly TensorSpec[]): BindingTensor[] {
  return tensors.map((t) => ({
    name: t.name,
    shape: t.dims.length === 1 ? ([t.dims[0]!] as const) : ([t.dims[0]!, t.dims[1]!] as const),
  }));
}

export function codecConfig(cfg: ResolvedRunConfig): CodecConfig {
  const format = cfg.compression.wireFormat;
  if (format !== 1 && format !== 2) throw new Error(`compression.wireFormat ${format} is not 1 or 2`);
  // Dense payloads (mode none) do not use the sparse fields, whatever they say.
  if (cfg.compression.mode !== "none" && cfg.compression.valueBits !== 2)
    throw new Error(`compression.valueBits ${cfg.compression.valueBits}: the codec implements 2-bit values`);
  return { format, topk: cfg.compression.topK, beta: cfg.compression.errorFeedbackDecay, threads: 1 };
}

export function nativeCodec(tensors: readonly TensorSpec[], config: CodecConfig): Codec {
  const spec = toBindingSpec(tensors);
  const size = codecBinding.payloadSize(spec, config);
  return {
    payloadSize: () => size,
    compress: (deltas, errors) => codecBinding.compress(spec, config, deltas, errors),
    validate(payload): PayloadCheck {
      try {
        codecBinding.validate(spec, config, payload);
        return { ok: true };
      } catch (err) {
        if (err instanceof codecBinding.CodecError)
          return { ok: false, reason: err.code, detail: err.message };
        return { ok: false, reason: "argument", detail: String((err as Error).message ?? err) };
      }
    },
    decode: (payload) => codecBinding.decode(spec, config, payload),
    aggregate(payloads, lr, theta) {
      const rep = codecBinding.aggregate(spec, config, payloads, lr, theta);
      return { statuses: [...rep.payloadStatus], accepted: rep.accepted };
    },
  };
}

export interface Kernels {
  engine: Engine;
  codec: Codec;
  close(): void;
}

export async function openKernels(
  cfg: ResolvedRunConfig,
  dataDir: string | undefined,
  hotkey: string,
): Promise<Kernels> {
  if (!dataDir) throw new Error(`data source ${cfg.data.source} is not a local directory; pass --data-dir`);
  const engine = await openEngine(cfg, dataDir, hotkey);
  const codec = nativeCodec(engine.tensors, codecConfig(cfg));
  return { engine, codec, close: () => engine.close() };
}
