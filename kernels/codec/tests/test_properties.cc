// Properties: top-k really keeps the k largest magnitudes (ties to the lower index), the
// quantizer's error bounds and ordered codebook, and aggregation against a brute-force
// model of the rules (median norm clip, mean over selectors, outer step, non-finite skip).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend.h"
#include "check.h"
#include "record.h"
#include "wire.h"

using namespace codec_test;
using covenant::Layout;
using covenant::Plan;
using covenant::Quant;

namespace {

struct Parsed {
  Plan plan;
  std::vector<Quant> quant;
};

Parsed parse(Model& m, const covenant_config& cfg, const std::vector<uint8_t>& payload) {
  Parsed p;
  CHECK(covenant::make_plan(m.spec.data(), m.spec.size(), &cfg, &p.plan).ok());
  CHECK(covenant::parse_header(p.plan, cfg, payload.data(), payload.size(), &p.quant).ok());
  return p;
}

void topk_and_quantizer(uint32_t format, uint32_t topk) {
  Model m = small_model();
  m.fill(1234 + topk);
  // Plant ties: equal magnitudes of both signs in the first tensor.
  for (size_t i = 0; i < m.delta[0].size(); i += 5)
    m.delta[0][i] = (i & 1) ? 0.02f : -0.02f, m.error[0][i] = 0.0f;
  const covenant_config cfg = make_config(format, topk);
  std::vector<std::vector<float>> e_new(m.spec.size());
  for (size_t t = 0; t < m.spec.size(); ++t)
    for (size_t i = 0; i < m.delta[t].size(); ++i) {
      float e = cfg.beta * m.error[t][i];
      e_new[t].push_back(e + m.delta[t][i]);
    }
  auto payload = compress(m, cfg);
  Parsed p = parse(m, cfg, payload);
  for (size_t t = 0; t < m.spec.size(); ++t) {
    const Layout& l = p.plan.tensors[t].layout;
    const Quant& q = p.quant[t];
    CHECK(l.k == std::min(topk, l.chunk_size));
    double sse = 0.0, energy = 0.0;
    for (uint64_t c = 0; c < l.chunks; ++c) {
      uint16_t idx[4096];
      uint8_t code[4096];
      CHECK_EQ(
          covenant::decode_record(
              l, payload.data() + p.plan.tensors[t].body_offset + c * l.record_bytes, idx, code),
          COVENANT_OK);
      std::vector<bool> kept(l.chunk_size, false);
      float min_kept = INFINITY;
      uint32_t min_kept_at = 0;
      for (uint32_t j = 0; j < l.k; ++j) {
        kept[idx[j]] = true;
        float a = std::fabs(e_new[t][l.flat(c, idx[j])]);
        if (a < min_kept || (a == min_kept && idx[j] > min_kept_at))
          min_kept = a, min_kept_at = idx[j];
        float v = e_new[t][l.flat(c, idx[j])] - q.shift;
        float r = q.codebook[code[j]];
        sse += double(v - r) * double(v - r);
        energy += double(v) * double(v);
        if (code[j] == 1 || code[j] == 2) CHECK(std::fabs(v - r) <= q.scale * 1.0001f);
      }
      for (uint32_t i = 0; i < l.chunk_size; ++i) {
        if (kept[i]) continue;
        float a = std::fabs(e_new[t][l.flat(c, i)]);
        // every dropped value is smaller, or equal with a higher index than the smallest kept
        bool ok = a < min_kept || (a == min_kept && i > min_kept_at);
        if (!ok) {
          CHECK(ok);
          return;
        }
      }
    }
    for (int b = 1; b < 4; ++b) CHECK(q.codebook[b] >= q.codebook[b - 1]);
    // bin means never do worse than sending the mean alone
    CHECK(sse <= energy * (1.0 + 1e-6) + 1e-30);
  }
}

// Brute-force model of aggregation in double precision; the median of an even number of norms
// is the lower one (sorted[(G - 1) / 2]), as in torch.median.
void aggregate_matches_model(const int G) {
  const covenant_config cfg = make_config(2, 16);
  Model base = small_model();
  std::vector<std::vector<uint8_t>> payloads;
  for (int g = 0; g < G; ++g) {
    Model m = small_model();
    m.fill(500 + g, g == 3 ? 0.5f : 0.01f);  // peer 3 is loud: its norm gets clipped
    payloads.push_back(compress(m, cfg));
  }
  base.fill(77);
  auto theta_before = base.theta;
  // model
  std::vector<std::vector<std::vector<float>>> dense(G);
  for (int g = 0; g < G; ++g) {
    std::vector<float*> ptrs;
    for (auto& d : base.delta) dense[g].emplace_back(d.size());
    for (auto& d : dense[g]) ptrs.push_back(d.data());
    CHECK_EQ(covenant_decode(base.spec.data(), base.spec.size(), &cfg, payloads[g].data(),
                             payloads[g].size(), ptrs.data(), nullptr),
             COVENANT_OK);
  }
  Parsed p = parse(base, cfg, payloads[0]);
  const float lr = 0.7f;
  std::vector<std::vector<float>> expect = theta_before;
  for (size_t t = 0; t < base.spec.size(); ++t) {
    // selection sets from the records, norms from the dense values
    std::vector<double> norm(G);
    std::vector<std::vector<bool>> sel(G, std::vector<bool>(base.delta[t].size(), false));
    const Layout& l = p.plan.tensors[t].layout;
    for (int g = 0; g < G; ++g) {
      for (uint64_t c = 0; c < l.chunks; ++c) {
        uint16_t idx[4096];
        uint8_t code[4096];
        covenant::decode_record(
            l, payloads[g].data() + p.plan.tensors[t].body_offset + c * l.record_bytes, idx, code);
        for (uint32_t j = 0; j < l.k; ++j) sel[g][l.flat(c, idx[j])] = true;
      }
      double s = 0.0;
      for (float v : dense[g][t]) s += double(v) * v;
      norm[g] = std::sqrt(s);
    }
    std::vector<double> sorted = norm;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted[(G - 1) / 2];
    for (size_t i = 0; i < base.delta[t].size(); ++i) {
      double sum = 0.0;
      int n = 0;
      for (int g = 0; g < G; ++g) {
        if (!sel[g][i]) continue;
        double f = norm[g] > median ? median / norm[g] : 1.0;
        sum += dense[g][t][i] * f;
        ++n;
      }
      if (n) expect[t][i] = float(double(theta_before[t][i]) - lr * (sum / n));
    }
  }
  std::vector<const uint8_t*> ptrs;
  std::vector<size_t> lens;
  for (auto& pl : payloads) ptrs.push_back(pl.data()), lens.push_back(pl.size());
  std::vector<int32_t> status(G, -1);
  covenant_aggregate_report rep{};
  auto theta = base.theta_ptrs();
  covenant_error err{};
  CHECK_EQ(covenant_aggregate(base.spec.data(), base.spec.size(), &cfg, ptrs.data(), lens.data(), G,
                              lr, theta.data(), status.data(), &rep, &err),
           COVENANT_OK);
  CHECK_EQ(rep.accepted, uint32_t(G));
  CHECK_EQ(rep.rejected, 0u);
  CHECK(rep.updated > 0);
  for (int32_t s : status) CHECK_EQ(s, COVENANT_OK);
  double worst = 0.0;
  for (size_t t = 0; t < base.spec.size(); ++t)
    for (size_t i = 0; i < expect[t].size(); ++i)
      worst = std::max(worst, double(std::fabs(base.theta[t][i] - expect[t][i])) /
                                  (1e-3 + std::fabs(double(theta_before[t][i] - expect[t][i]))));
  CHECK(worst < 1e-4);

  // identical payloads: the mean is the payload itself and nothing is clipped
  Model one = small_model();
  one.fill(77);
  auto before = one.theta;
  std::vector<const uint8_t*> same(3, payloads[0].data());
  std::vector<size_t> same_len(3, payloads[0].size());
  auto th = one.theta_ptrs();
  CHECK_EQ(covenant_aggregate(one.spec.data(), one.spec.size(), &cfg, same.data(), same_len.data(),
                              3, 1.0f, th.data(), status.data(), &rep, nullptr),
           COVENANT_OK);
  for (size_t t = 0; t < one.spec.size(); ++t)
    for (size_t i = 0; i < before[t].size(); ++i) {
      float want = before[t][i] - dense[0][t][i];
      if (one.theta[t][i] != want) {
        CHECK(one.theta[t][i] == want);
        break;
      }
    }

  // a rejected payload is reported and left out; the rest is still applied
  auto broken = payloads[1];
  broken[0] = 'X';
  std::vector<const uint8_t*> mixed = {payloads[0].data(), broken.data()};
  std::vector<size_t> mixed_len = {payloads[0].size(), broken.size()};
  Model two = small_model();
  two.fill(77);
  th = two.theta_ptrs();
  CHECK_EQ(covenant_aggregate(two.spec.data(), two.spec.size(), &cfg, mixed.data(),
                              mixed_len.data(), 2, 1.0f, th.data(), status.data(), &rep, nullptr),
           COVENANT_OK);
  CHECK_EQ(status[0], COVENANT_OK);
  CHECK_EQ(status[1], COVENANT_ERR_MAGIC);
  CHECK_EQ(rep.accepted, 1u);
  CHECK_EQ(rep.rejected, 1u);
  CHECK(two.theta == one.theta);
}

void nonfinite_skipped() {
  const covenant_config cfg = make_config(1, 64);
  Model m;
  m.add("w", 64);
  m.finalize();
  m.fill(3, 1.0f);
  auto payload = compress(m, cfg);  // dense: all 64 coordinates are updated
  for (float& v : m.theta[0]) v = 3.0e38f;
  std::vector<float> dense(64);
  float* dp = dense.data();
  covenant_decode(m.spec.data(), 1, &cfg, payload.data(), payload.size(), &dp, nullptr);
  // lr chosen so that theta - lr * value overflows where the value is negative
  const float lr = -3.0e38f;
  const uint8_t* pp = payload.data();
  size_t len = payload.size();
  int32_t st;
  covenant_aggregate_report rep{};
  auto th = m.theta_ptrs();
  CHECK_EQ(
      covenant_aggregate(m.spec.data(), 1, &cfg, &pp, &len, 1, lr, th.data(), &st, &rep, nullptr),
      COVENANT_OK);
  uint64_t expect_skipped = 0;
  for (size_t i = 0; i < 64; ++i) {
    float step = lr * dense[i];
    float next = 3.0e38f - step;
    if (!std::isfinite(next)) {
      ++expect_skipped;
      CHECK(m.theta[0][i] == 3.0e38f);
    }
  }
  CHECK(expect_skipped > 0);
  CHECK_EQ(rep.skipped_nonfinite, expect_skipped);
  CHECK_EQ(rep.updated + rep.skipped_nonfinite, uint64_t(64));
}

// The clip norm of an even number of payloads is the lower of the two middle norms (what
// torch.median returns), not their mean: a fixed element of the inputs, so the result does
// not depend on an extra rounding.
void even_median_is_lower() {
  std::vector<float> f = covenant::clip_factors({4.0, 1.0, 3.0, 2.0});
  CHECK_EQ(f.size(), size_t(4));
  CHECK(f[0] == float(2.0 / 4.0));
  CHECK(f[1] == 1.0f);
  CHECK(f[2] == float(2.0 / 3.0));
  CHECK(f[3] == 1.0f);
  // two payloads: the smaller norm is the median, the larger one is clipped to it
  f = covenant::clip_factors({5.0, 1.0});
  CHECK(f[0] == float(1.0 / 5.0));
  CHECK(f[1] == 1.0f);
  f = covenant::clip_factors({7.0});
  CHECK(f[0] == 1.0f);
  CHECK(covenant::clip_factors({}).empty());
}

void dense_one_dimensional() {
  // A 1-D tensor of 64 at k = 64 goes dense: every coordinate is selected.
  Model m;
  m.add("norm", 64);
  m.finalize();
  m.fill(11);
  auto cfg = make_config(1, 64);
  auto payload = compress(m, cfg);
  Parsed p = parse(m, cfg, payload);
  CHECK_EQ(p.plan.tensors[0].layout.k, 64u);
  CHECK_EQ(p.plan.tensors[0].layout.chunks, uint64_t(1));
}

}  // namespace

int main() {
  for (uint32_t f : {1u, 2u})
    for (uint32_t k : {1u, 2u, 16u, 64u, 100u}) topk_and_quantizer(f, k);
  aggregate_matches_model(5);
  aggregate_matches_model(4);
  even_median_is_lower();
  nonfinite_skipped();
  dense_one_dimensional();
  return finish("codec_properties");
}
