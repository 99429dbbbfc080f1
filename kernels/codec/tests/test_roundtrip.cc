// Compress, validate and decode: error-buffer conservation, determinism across runs and
// thread counts, both formats, fp32 and bf16 pseudo-gradients.
#include <cmath>
#include <cstring>

#include "check.h"

using namespace codec_test;

namespace {

std::vector<std::vector<float>> decode(Model& m, const covenant_config& cfg,
                                       const std::vector<uint8_t>& payload) {
  std::vector<std::vector<float>> out;
  std::vector<float*> ptrs;
  for (auto& d : m.delta) out.emplace_back(d.size(), -7.0f);
  for (auto& o : out) ptrs.push_back(o.data());
  covenant_error err{};
  int32_t rc = covenant_decode(m.spec.data(), m.spec.size(), &cfg, payload.data(), payload.size(),
                               ptrs.data(), &err);
  CHECK_EQ(rc, COVENANT_OK);
  if (rc) std::fprintf(stderr, "decode: %s\n", err.message);
  return out;
}

float bf16_round(float f) {  // a bf16 value exactly representable, from the top bits
  uint32_t v;
  std::memcpy(&v, &f, 4);
  v &= 0xffff0000u;
  std::memcpy(&f, &v, 4);
  return f;
}

void conservation(uint32_t format, covenant_dtype dtype) {
  Model m = small_model();
  m.fill(42 + format);
  const covenant_config cfg = make_config(format);
  std::vector<std::vector<uint16_t>> bf(m.spec.size());
  std::vector<const void*> deltas = m.delta_ptrs();
  if (dtype == COVENANT_BF16) {
    for (size_t t = 0; t < m.spec.size(); ++t) {
      for (float& v : m.delta[t]) v = bf16_round(v);
      for (float v : m.delta[t]) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        bf[t].push_back(uint16_t(bits >> 16));
      }
      deltas[t] = bf[t].data();
    }
  }
  std::vector<std::vector<float>> expected_e(m.spec.size());
  for (size_t t = 0; t < m.spec.size(); ++t)
    for (size_t i = 0; i < m.delta[t].size(); ++i) {
      float e = cfg.beta * m.error[t][i];
      expected_e[t].push_back(e + m.delta[t][i]);
    }
  std::vector<uint8_t> payload = compress(m, cfg, dtype, &deltas);
  covenant_error err{};
  CHECK_EQ(
      covenant_validate(m.spec.data(), m.spec.size(), &cfg, payload.data(), payload.size(), &err),
      COVENANT_OK);
  auto recon = decode(m, cfg, payload);
  size_t kept = 0;
  for (size_t t = 0; t < m.spec.size(); ++t)
    for (size_t i = 0; i < recon[t].size(); ++i) {
      // e_after is exactly fl(e_before * beta + delta - reconstruction) where something was kept;
      // elsewhere it is e_before * beta + delta untouched.
      float want = recon[t][i] != 0.0f ? expected_e[t][i] - recon[t][i] : expected_e[t][i];
      if (m.error[t][i] != want) {
        CHECK(m.error[t][i] == want);
        return;
      }
      kept += recon[t][i] != 0.0f;
      // and the conservation law holds to float rounding
      CHECK(std::fabs(m.error[t][i] + recon[t][i] - expected_e[t][i]) <=
            1e-6f * (1.0f + std::fabs(expected_e[t][i])));
    }
  CHECK(kept > 0);
}

void determinism(uint32_t format) {
  std::vector<uint8_t> first;
  std::vector<float> first_e;
  for (uint32_t threads : {1u, 2u, 3u, 8u}) {
    Model m = small_model();
    m.fill(7);
    covenant_config cfg = make_config(format, 64, threads);
    std::vector<uint8_t> payload = compress(m, cfg);
    if (first.empty()) {
      first = payload;
      first_e = m.error[0];
    } else {
      CHECK(payload == first);
      CHECK(m.error[0] == first_e);
    }
  }
}

void formats_agree() {
  Model a = small_model(), b = small_model();
  a.fill(99);
  b.fill(99);
  auto cfg1 = make_config(1), cfg2 = make_config(2);
  auto p1 = compress(a, cfg1);
  auto p2 = compress(b, cfg2);
  CHECK(p2.size() < p1.size());
  CHECK(a.error == b.error);
  CHECK(decode(a, cfg1, p1) == decode(b, cfg2, p2));
}

void sizes() {
  // 64x64 tiles at k = 64: format 1 is 14 bits per kept value, format 2 is 10 (body only).
  Model m;
  m.add("w", 256, 512);
  m.finalize();
  uint64_t s1 = 0, s2 = 0;
  auto c1 = make_config(1), c2 = make_config(2);
  CHECK_EQ(covenant_payload_size(m.spec.data(), 1, &c1, &s1, nullptr), COVENANT_OK);
  CHECK_EQ(covenant_payload_size(m.spec.data(), 1, &c2, &s2, nullptr), COVENANT_OK);
  const uint64_t header = 24 + 2 + 1 + 2 + 8 + 4 + 24;
  const uint64_t kept = 32 * 64;
  CHECK_EQ(s1, header + kept * 14 / 8);
  CHECK_EQ(s2, header + kept * 10 / 8);
}

void multiple_rounds() {
  // Error feedback over rounds: mass that was not sent stays in e and is sent later.
  Model m;
  m.add("w", 64, 64);
  m.finalize();
  m.fill(5);
  auto cfg = make_config(2, 8);
  double sent = 0.0;
  for (int round = 0; round < 5; ++round) {
    auto payload = compress(m, cfg);
    auto r = decode(m, cfg, payload);
    for (float v : r[0]) sent += std::fabs(v);
    for (float& d : m.delta[0]) d = 0.0f;
  }
  CHECK(sent > 0.0);
}

}  // namespace

int main() {
  for (uint32_t f : {1u, 2u}) {
    conservation(f, COVENANT_F32);
    conservation(f, COVENANT_BF16);
    determinism(f);
  }
  formats_agree();
  sizes();
  multiple_rounds();
  return finish("codec_roundtrip");
}
