// A small test harness and deterministic inputs for the codec tests.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "covenant_codec.h"

namespace codec_test {

inline int& failures() {
  static int n = 0;
  return n;
}

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++codec_test::failures();                                                     \
    }                                                                               \
  } while (0)

#define CHECK_EQ(a, b)                                                                    \
  do {                                                                                    \
    auto va_ = (a);                                                                       \
    auto vb_ = (b);                                                                       \
    if (!(va_ == vb_)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__, \
                   __LINE__, #a, #b, (long long)va_, (long long)vb_);                     \
      ++codec_test::failures();                                                           \
    }                                                                                     \
  } while (0)

inline int finish(const char* name) {
  if (failures()) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
    return 1;
  }
  std::printf("%s: all checks passed\n", name);
  return 0;
}

// splitmix64: the generator of every test input (integer only, so inputs are identical on
// every machine and compiler).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1) on a 2^-23 grid; one value in 16 is 8 times larger (heavy tail).
  float value() {
    uint64_t r = next();
    float v = float(int32_t(r >> 40) - (1 << 23)) * (1.0f / 8388608.0f);
    return (r & 15) == 0 ? v * 8.0f : v;
  }
};

struct Model {
  std::vector<std::string> names;
  std::vector<covenant_tensor> spec;
  std::vector<std::vector<float>> delta, error, theta;
  void add(const std::string& name, uint32_t d0, uint32_t d1 = 0) {
    names.push_back(name);
    covenant_tensor t{};
    t.rank = d1 ? 2 : 1;
    t.dims[0] = d0;
    t.dims[1] = d1;
    spec.push_back(t);
    size_t n = size_t(d0) * (d1 ? d1 : 1);
    delta.emplace_back(n);
    error.emplace_back(n);
    theta.emplace_back(n);
  }
  void finalize() {
    for (size_t i = 0; i < spec.size(); ++i) spec[i].name = names[i].c_str();
  }
  void fill(uint64_t seed, float delta_scale = 0.01f, float error_scale = 0.005f) {
    Rng r(seed);
    for (size_t t = 0; t < spec.size(); ++t) {
      for (float& v : delta[t]) v = r.value() * delta_scale;
      for (float& v : error[t]) v = r.value() * error_scale;
      for (float& v : theta[t]) v = r.value();
    }
  }
  std::vector<const void*> delta_ptrs() const {
    std::vector<const void*> p;
    for (auto& v : delta) p.push_back(v.data());
    return p;
  }
  std::vector<float*> error_ptrs() {
    std::vector<float*> p;
    for (auto& v : error) p.push_back(v.data());
    return p;
  }
  std::vector<float*> theta_ptrs() {
    std::vector<float*> p;
    for (auto& v : theta) p.push_back(v.data());
    return p;
  }
};

// A model with every chunking case: dense 1-D, ragged 1-D, 64x64 tiles, non-power-of-two tiles.
inline Model small_model() {
  Model m;
  m.add("embed.weight", 128, 192);
  m.add("layers.0.attn.q_proj.weight", 192, 128);
  m.add("layers.0.mlp.up_proj.weight", 96, 80);
  m.add("layers.0.input_layernorm.weight", 64);
  m.add("layers.0.odd", 7, 13);
  m.add("norm.bias", 100);
  m.add("scalar", 1);
  m.finalize();
  return m;
}

inline covenant_config make_config(uint32_t format, uint32_t topk = 64, uint32_t threads = 2) {
  covenant_config c{};
  c.format = format;
  c.topk = topk;
  c.beta = 0.95f;
  c.max_abs = 0.0f;
  c.threads = threads;
  return c;
}

// Compresses m (updating m.error) and returns the payload; aborts the test on failure.
inline std::vector<uint8_t> compress(Model& m, const covenant_config& cfg,
                                     covenant_dtype dtype = COVENANT_F32,
                                     const std::vector<const void*>* deltas = nullptr) {
  uint64_t size = 0;
  covenant_error err{};
  if (covenant_payload_size(m.spec.data(), m.spec.size(), &cfg, &size, &err) != COVENANT_OK) {
    std::fprintf(stderr, "payload_size: %s\n", err.message);
    std::exit(1);
  }
  std::vector<uint8_t> out(size);
  size_t len = 0;
  auto d = deltas ? *deltas : m.delta_ptrs();
  auto e = m.error_ptrs();
  if (covenant_compress(m.spec.data(), m.spec.size(), &cfg, dtype, d.data(), e.data(), out.data(),
                        out.size(), &len, &err) != COVENANT_OK) {
    std::fprintf(stderr, "compress: %s\n", err.message);
    std::exit(1);
  }
  if (len != size) std::exit(1);
  return out;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> data;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return data;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  std::fclose(f);
  return data;
}

}  // namespace codec_test
