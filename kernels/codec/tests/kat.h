// Inputs of the known-answer vectors: a fixed model, fixed splitmix64 seeds, fixed configs.
#pragma once

#include <cstring>

#include "check.h"

namespace codec_test {

struct KatCase {
  const char* file;
  uint32_t format;
  uint32_t topk;
  covenant_dtype dtype;
  uint64_t error_digest;  // FNV-1a of the error buffers after compression
};

inline Model kat_model() {
  Model m;
  m.add("tok_embeddings.weight", 128, 64);
  m.add("layers.0.attention.wq.weight", 64, 192);
  m.add("layers.0.feed_forward.w1.weight", 96, 80);
  m.add("layers.0.attention_norm.weight", 64);
  m.add("output.bias", 100);
  m.finalize();
  m.fill(0xC0DEC);
  return m;
}

inline std::vector<uint8_t> kat_payload(Model& m, const covenant_config& cfg,
                                        covenant_dtype dtype) {
  std::vector<std::vector<uint16_t>> bf(m.spec.size());
  std::vector<const void*> d = m.delta_ptrs();
  if (dtype == COVENANT_BF16) {
    for (size_t t = 0; t < m.spec.size(); ++t) {
      for (float v : m.delta[t]) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        bf[t].push_back(uint16_t(bits >> 16));
      }
      d[t] = bf[t].data();
    }
  }
  return compress(m, cfg, dtype, &d);
}

inline uint64_t kat_error_digest(const Model& m) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (auto& e : m.error)
    for (float v : e) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      for (int i = 0; i < 4; ++i) h = (h ^ ((bits >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    }
  return h;
}

// The digests are filled in by make_kat when the vectors are (re)generated.
inline const std::vector<KatCase>& kat_cases() {
  static const std::vector<KatCase> cases = {
#include "kat_cases.inc"
  };
  return cases;
}

}  // namespace codec_test
