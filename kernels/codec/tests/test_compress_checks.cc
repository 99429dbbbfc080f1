// Compress checks the payload it is about to write with the receiver's own rules before it
// touches the error buffers: a payload that no receiver would accept (a quantization
// parameter beyond the bound, a non-finite value) fails with its status code and leaves
// every error buffer bit for bit as it was, so that no mass leaves the error feedback.
#include <cmath>
#include <cstring>
#include <limits>

#include "check.h"

using namespace codec_test;

namespace {

// Two 64x64 tensors (one chunk each) and a small 1-D one; the broken value goes into the
// second, so a compressor that wrote the first tensor's buffer before checking is caught.
Model three_tensors() {
  Model m;
  m.add("a", 64, 64);
  m.add("w", 64, 64);
  m.add("norm", 64);
  m.finalize();
  return m;
}

struct Attempt {
  int32_t rc;
  covenant_error err;
  size_t len;
};

Attempt try_compress(Model& m, const covenant_config& cfg, std::vector<uint8_t>* out) {
  uint64_t size = 0;
  CHECK_EQ(covenant_payload_size(m.spec.data(), m.spec.size(), &cfg, &size, nullptr), COVENANT_OK);
  out->assign(size, 0xAB);
  Attempt a{};
  a.len = 12345;
  auto d = m.delta_ptrs();
  auto e = m.error_ptrs();
  a.rc = covenant_compress(m.spec.data(), m.spec.size(), &cfg, COVENANT_F32, d.data(), e.data(),
                           out->data(), out->size(), &a.len, &a.err);
  return a;
}

bool same_bytes(const std::vector<std::vector<float>>& a,
                const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t)
    if (a[t].size() != b[t].size() ||
        std::memcmp(a[t].data(), b[t].data(), sizeof(float) * a[t].size()) != 0)
      return false;
  return true;
}

// One value of 2e6 in a 64x64 tensor: the codebook entry of its bin is far beyond the default
// bound of 1e6, so the receiver would answer "quant".
void rejects_out_of_bound_quantization(uint32_t format, uint32_t threads) {
  Model m = three_tensors();
  m.fill(21 + format);
  m.delta[1][1000] = 2.0e6f;
  const covenant_config cfg = make_config(format, 64, threads);
  const auto before = m.error;
  std::vector<uint8_t> out;
  Attempt a = try_compress(m, cfg, &out);
  CHECK_EQ(a.rc, COVENANT_ERR_QUANT);
  CHECK_EQ(a.err.code, COVENANT_ERR_QUANT);
  CHECK(std::strstr(a.err.message, "w: ") == a.err.message);
  CHECK(std::strstr(a.err.message, "bound") != nullptr);
  CHECK_EQ(a.len, size_t(12345));  // out_len untouched on failure
  CHECK(same_bytes(m.error, before));

  // The same inputs a receiver would have seen: the check is the validator's, not a new rule.
  covenant_config wide = cfg;
  wide.max_abs = 1.0e7f;
  Model w = three_tensors();
  w.fill(21 + format);
  w.delta[1][1000] = 2.0e6f;
  std::vector<uint8_t> payload;
  Attempt ok = try_compress(w, wide, &payload);
  CHECK_EQ(ok.rc, COVENANT_OK);
  covenant_error err{};
  CHECK_EQ(
      covenant_validate(w.spec.data(), w.spec.size(), &wide, payload.data(), payload.size(), &err),
      COVENANT_OK);
  CHECK_EQ(
      covenant_validate(w.spec.data(), w.spec.size(), &cfg, payload.data(), payload.size(), &err),
      COVENANT_ERR_QUANT);

  // After the failure the buffers are usable as they are: with the outlier gone the same call
  // succeeds and gives what a fresh copy gives.
  m.delta[1][1000] = 0.0f;
  Model fresh = three_tensors();
  fresh.fill(21 + format);
  fresh.delta[1][1000] = 0.0f;
  std::vector<uint8_t> p1, p2;
  CHECK_EQ(try_compress(m, cfg, &p1).rc, COVENANT_OK);
  CHECK_EQ(try_compress(fresh, cfg, &p2).rc, COVENANT_OK);
  CHECK(p1 == p2);
  CHECK(same_bytes(m.error, fresh.error));
}

// A smaller bound from the configuration is honoured the same way.
void rejects_below_configured_bound() {
  Model m = three_tensors();
  m.fill(5, 1.0f, 0.5f);
  covenant_config cfg = make_config(2);
  cfg.max_abs = 0.5f;
  const auto before = m.error;
  std::vector<uint8_t> out;
  Attempt a = try_compress(m, cfg, &out);
  CHECK_EQ(a.rc, COVENANT_ERR_QUANT);
  CHECK(same_bytes(m.error, before));
}

// A non-finite error-feedback value fails before anything is written, too.
void rejects_nonfinite_untouched() {
  Model m = three_tensors();
  m.fill(8);
  m.delta[2][17] = std::numeric_limits<float>::infinity();
  const covenant_config cfg = make_config(1);
  const auto before = m.error;
  std::vector<uint8_t> out;
  Attempt a = try_compress(m, cfg, &out);
  CHECK_EQ(a.rc, COVENANT_ERR_NONFINITE);
  CHECK(same_bytes(m.error, before));
}

// A normal tensor still compresses, validates, and round-trips: e_after + reconstruction is
// beta * e_before + delta, exactly where nothing was kept and to rounding where it was.
void normal_tensor_round_trips(uint32_t format) {
  Model m = three_tensors();
  m.fill(33 + format);
  const covenant_config cfg = make_config(format);
  std::vector<std::vector<float>> expected(m.spec.size());
  for (size_t t = 0; t < m.spec.size(); ++t)
    for (size_t i = 0; i < m.delta[t].size(); ++i) {
      float e = cfg.beta * m.error[t][i];
      expected[t].push_back(e + m.delta[t][i]);
    }
  std::vector<uint8_t> payload;
  Attempt a = try_compress(m, cfg, &payload);
  CHECK_EQ(a.rc, COVENANT_OK);
  CHECK_EQ(a.len, payload.size());
  covenant_error err{};
  CHECK_EQ(
      covenant_validate(m.spec.data(), m.spec.size(), &cfg, payload.data(), payload.size(), &err),
      COVENANT_OK);
  std::vector<std::vector<float>> recon;
  std::vector<float*> ptrs;
  for (auto& d : m.delta) recon.emplace_back(d.size(), -7.0f);
  for (auto& r : recon) ptrs.push_back(r.data());
  CHECK_EQ(covenant_decode(m.spec.data(), m.spec.size(), &cfg, payload.data(), payload.size(),
                           ptrs.data(), &err),
           COVENANT_OK);
  size_t kept = 0;
  for (size_t t = 0; t < m.spec.size(); ++t)
    for (size_t i = 0; i < recon[t].size(); ++i) {
      const float want = recon[t][i] != 0.0f ? expected[t][i] - recon[t][i] : expected[t][i];
      if (m.error[t][i] != want) {
        CHECK(m.error[t][i] == want);
        return;
      }
      kept += recon[t][i] != 0.0f;
    }
  CHECK(kept > 0);
}

}  // namespace

int main() {
  for (uint32_t f : {1u, 2u})
    for (uint32_t threads : {1u, 2u}) rejects_out_of_bound_quantization(f, threads);
  rejects_below_configured_bound();
  rejects_nonfinite_untouched();
  normal_tensor_round_trips(1);
  normal_tensor_round_trips(2);
  return finish("codec_compress_checks");
}
