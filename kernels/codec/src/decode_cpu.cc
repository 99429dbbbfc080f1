// CPU reference decoder: strict record checks, dense reconstruction, median-norm clipping,
// scatter-mean over the payloads that selected each coordinate, and the outer step.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "backend.h"
#include "parallel.h"
#include "quant.h"
#include "record.h"

namespace covenant {
namespace {

struct Span {
  const TensorPlan* plan;
  uint64_t chunk_offset;
};

std::vector<Span> spans(const Plan& plan, uint64_t* total) {
  std::vector<Span> s(plan.tensors.size());
  uint64_t n = 0;
  for (size_t t = 0; t < s.size(); ++t) {
    s[t] = {&plan.tensors[t], n};
    n += plan.tensors[t].layout.chunks;
  }
  *total = n;
  return s;
}

template <class Fn>
void for_chunks(const std::vector<Span>& s, uint64_t total, unsigned threads, Fn fn) {
  parallel_for(total, 16, threads, [&](uint64_t begin, uint64_t end) {
    size_t lo = 0, hi = s.size();
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      (s[mid].chunk_offset <= begin ? lo : hi) = mid;
    }
    size_t t = lo;
    for (uint64_t g = begin; g < end; ++g) {
      while (t + 1 < s.size() && s[t + 1].chunk_offset <= g) ++t;
      fn(t, g - s[t].chunk_offset, g);
    }
  });
}

const char* rule_text(int32_t code) {
  switch (code) {
    case COVENANT_ERR_INDEX_RANGE:
      return "index outside the chunk";
    case COVENANT_ERR_INDEX_ORDER:
      return "indices not strictly increasing";
    case COVENANT_ERR_PADDING:
      return "nonzero padding bits";
    default:
      return "malformed Elias-Fano upper bits";
  }
}

}  // namespace

Status cpu_check_bodies(const Plan& plan, const std::vector<Quant>& quant, const uint8_t* payload,
                        unsigned threads, double* sum_sq) {
  uint64_t total;
  std::vector<Span> s = spans(plan, &total);
  std::atomic<uint64_t> first_bad{UINT64_MAX};
  for_chunks(s, total, threads, [&](size_t t, uint64_t c, uint64_t g) {
    const Layout& l = s[t].plan->layout;
    uint16_t idx[4096];
    uint8_t code[4096];
    int32_t rc = decode_record(l, payload + s[t].plan->body_offset + c * l.record_bytes, idx, code);
    if (rc != COVENANT_OK) {
      uint64_t cur = first_bad.load();
      while (g < cur && !first_bad.compare_exchange_weak(cur, g)) {
      }
      return;
    }
    if (sum_sq) {
      double acc = 0.0;
      for (uint32_t j = 0; j < l.k; ++j) {
        double v = double(dequantize(quant[t], code[j]));
        acc += v * v;
      }
      sum_sq[g] = acc;
    }
  });
  uint64_t bad = first_bad.load();
  if (bad == UINT64_MAX) return {};
  size_t t = 0;
  while (t + 1 < s.size() && s[t + 1].chunk_offset <= bad) ++t;
  const Layout& l = s[t].plan->layout;
  uint64_t c = bad - s[t].chunk_offset;
  uint16_t idx[4096];
  uint8_t code[4096];
  int32_t rc = decode_record(l, payload + s[t].plan->body_offset + c * l.record_bytes, idx, code);
  return fail(rc, s[t].plan->name + " chunk " + std::to_string(c) + ": " + rule_text(rc));
}

Status cpu_decode(const Plan& plan, const std::vector<Quant>& quant, const uint8_t* payload,
                  unsigned threads, float* const* out) {
  Status st = cpu_check_bodies(plan, quant, payload, threads, nullptr);
  if (!st.ok()) return st;
  uint64_t total;
  std::vector<Span> s = spans(plan, &total);
  for_chunks(s, total, threads, [&](size_t t, uint64_t c, uint64_t) {
    const Layout& l = s[t].plan->layout;
    uint16_t idx[4096];
    uint8_t code[4096];
    decode_record(l, payload + s[t].plan->body_offset + c * l.record_bytes, idx, code);
    float* o = out[t];
    const uint64_t tr = c / l.tiles_per_row, tc = c % l.tiles_per_row;
    for (uint32_t r = 0; r < l.chunk_rows; ++r)
      std::memset(o + (tr * l.chunk_rows + r) * l.cols + tc * l.chunk_cols, 0,
                  sizeof(float) * l.chunk_cols);
    for (uint32_t j = 0; j < l.k; ++j) o[l.flat(c, idx[j])] = dequantize(quant[t], code[j]);
  });
  return {};
}

std::vector<float> clip_factors(const std::vector<double>& norms) {
  std::vector<double> sorted(norms);
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.empty() ? 0.0 : sorted[(sorted.size() - 1) / 2];
  std::vector<float> f(norms.size(), 1.0f);
  for (size_t p = 0; p < norms.size(); ++p)
    if (norms[p] > median) f[p] = float(median / norms[p]);
  return f;
}

void cpu_apply(const Plan& plan, const std::vector<Accepted>& accepted, float lr, unsigned threads,
               float* const* theta, covenant_aggregate_report* report) {
  uint64_t total;
  std::vector<Span> s = spans(plan, &total);
  std::atomic<uint64_t> updated{0}, skipped{0};
  for_chunks(s, total, threads, [&](size_t t, uint64_t c, uint64_t) {
    const Layout& l = s[t].plan->layout;
    float sum[4096];
    uint16_t count[4096];
    uint16_t idx[4096];
    uint8_t code[4096];
    std::memset(count, 0, sizeof(uint16_t) * l.chunk_size);
    for (const Accepted& a : accepted) {
      decode_record(l, a.payload + s[t].plan->body_offset + c * l.record_bytes, idx, code);
      const float factor = a.factor[t];
      for (uint32_t j = 0; j < l.k; ++j) {
        float v = dequantize(a.quant[t], code[j]);
        if (factor != 1.0f) v = v * factor;
        const uint16_t i = idx[j];
        sum[i] = count[i] ? sum[i] + v : v;
        count[i] += 1;
      }
    }
    uint64_t up = 0, skip = 0;
    float* th = theta[t];
    for (uint32_t i = 0; i < l.chunk_size; ++i) {
      if (!count[i]) continue;
      float mean = sum[i] / float(count[i]);
      float step = lr * mean;
      float* p = th + l.flat(c, i);
      float next = *p - step;
      if (std::isfinite(next)) {
        *p = next;
        ++up;
      } else {
        ++skip;
      }
    }
    updated += up;
    skipped += skip;
  });
  report->updated = updated.load();
  report->skipped_nonfinite = skipped.load();
}

}  // namespace covenant
