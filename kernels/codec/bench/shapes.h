// Parameter shapes of the models the benchmarks run over.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace codec_bench {

struct Shape {
  std::string name;
  uint32_t rank;
  uint32_t dims[2];
};

// One transformer block of a LLaMA-3-style model.
inline std::vector<Shape> llama_block(uint32_t hidden, uint32_t kv, uint32_t ffn) {
  return {
      {"attn.q_proj.weight", 2, {hidden, hidden}},
      {"attn.k_proj.weight", 2, {kv, hidden}},
      {"attn.v_proj.weight", 2, {kv, hidden}},
      {"attn.o_proj.weight", 2, {hidden, hidden}},
      {"mlp.gate_proj.weight", 2, {ffn, hidden}},
      {"mlp.up_proj.weight", 2, {ffn, hidden}},
      {"mlp.down_proj.weight", 2, {hidden, ffn}},
      {"input_layernorm.weight", 1, {hidden, 0}},
      {"post_attention_layernorm.weight", 1, {hidden, 0}},
  };
}

// LLaMA-3.2-1B: hidden 2048, 16 blocks, 8 KV heads of 64, FFN 8192, vocabulary 128256 (tied).
struct ModelShapes {
  std::vector<Shape> block;
  uint32_t blocks;
  std::vector<Shape> rest;  // embedding, final norm
};

inline ModelShapes llama_1b() {
  return {llama_block(2048, 512, 8192),
          16,
          {{"embed_tokens.weight", 2, {128256, 2048}}, {"norm.weight", 1, {2048, 0}}}};
}

// One block of Covenant-72B: hidden 8192, 8 KV heads of 128, FFN 28672.
inline std::vector<Shape> covenant_72b_block() { return llama_block(8192, 1024, 28672); }

inline uint64_t numel(const Shape& s) {
  return s.rank == 2 ? uint64_t(s.dims[0]) * s.dims[1] : s.dims[0];
}

}  // namespace codec_bench
