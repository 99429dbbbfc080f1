// CPU reference compressor: error feedback, chunked deterministic top-k, 2-bit quantization
// with a per-tensor codebook, encoding, and self-decode into the error buffer. The error
// buffers are written only in the last phase, after the payload passed the receiver's checks,
// so that a failed call leaves them as they were.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>

#include "backend.h"
#include "parallel.h"
#include "quant.h"
#include "record.h"

namespace covenant {
namespace {

struct TensorWork {
  const TensorPlan* plan;
  const void* delta;
  float* error;
  uint64_t kept_offset;   // into the kept arrays
  uint64_t chunk_offset;  // into the per-chunk arrays
};

struct ChunkStats {
  double sum, sum_sq, bin_sum[4];
  uint32_t bin_count[4];
};

// Maps a global chunk number to its tensor.
size_t tensor_of(const std::vector<TensorWork>& work, uint64_t chunk) {
  size_t lo = 0, hi = work.size();
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    (work[mid].chunk_offset <= chunk ? lo : hi) = mid;
  }
  return lo;
}

// e = beta * e + delta over one chunk, into buf (chunk-local order); the error buffer is read
// only. Returns whether every value is finite.
bool feedback(const TensorWork& w, uint64_t c, covenant_dtype dtype, float beta, float* buf) {
  const Layout& l = w.plan->layout;
  const uint64_t tr = c / l.tiles_per_row, tc = c % l.tiles_per_row;
  bool finite = true;
  for (uint32_t r = 0; r < l.chunk_rows; ++r) {
    const uint64_t base = (tr * l.chunk_rows + r) * l.cols + tc * l.chunk_cols;
    for (uint32_t col = 0; col < l.chunk_cols; ++col) {
      const uint64_t f = base + col;
      float d = dtype == COVENANT_BF16 ? bf16_to_float(static_cast<const uint16_t*>(w.delta)[f])
                                       : static_cast<const float*>(w.delta)[f];
      float e = beta * w.error[f];
      e = e + d;
      finite &= std::isfinite(e);
      buf[r * l.chunk_cols + col] = e;
    }
  }
  return finite;
}

template <class Fn>
void for_chunks(const std::vector<TensorWork>& work, uint64_t total, unsigned threads, Fn fn) {
  parallel_for(total, 16, threads, [&](uint64_t begin, uint64_t end) {
    size_t t = tensor_of(work, begin);
    for (uint64_t g = begin; g < end; ++g) {
      while (t + 1 < work.size() && work[t + 1].chunk_offset <= g) ++t;
      fn(work[t], g - work[t].chunk_offset, g);
    }
  });
}

}  // namespace

Status cpu_compress(const Plan& plan, const covenant_config& config, covenant_dtype dtype,
                    const void* const* deltas, float* const* errors, uint8_t* out) {
  const unsigned threads = worker_count(config.threads);
  std::vector<TensorWork> work(plan.tensors.size());
  uint64_t kept_total = 0, chunk_total = 0;
  for (size_t t = 0; t < plan.tensors.size(); ++t) {
    work[t] = {&plan.tensors[t], deltas[t], errors[t], kept_total, chunk_total};
    kept_total += plan.tensors[t].layout.kept();
    chunk_total += plan.tensors[t].layout.chunks;
  }
  std::vector<uint16_t> kept_index(kept_total);
  std::vector<float> kept_value(kept_total);
  std::vector<uint8_t> kept_code(kept_total);
  std::vector<ChunkStats> stats(chunk_total);
  std::atomic<bool> nonfinite{false};
  const float beta = config.beta;

  // Phase 1: e = beta * e + delta (not stored yet), top-k per chunk, partial sums of the kept
  // values.
  for_chunks(work, chunk_total, threads, [&](const TensorWork& w, uint64_t c, uint64_t g) {
    const Layout& l = w.plan->layout;
    float buf[4096];
    uint64_t keys[4096];
    if (!feedback(w, c, dtype, beta, buf)) nonfinite.store(true, std::memory_order_relaxed);
    uint16_t* idx = kept_index.data() + w.kept_offset + c * l.k;
    float* val = kept_value.data() + w.kept_offset + c * l.k;
    if (l.k == l.chunk_size) {
      for (uint32_t i = 0; i < l.k; ++i) idx[i] = uint16_t(i);
    } else {
      for (uint32_t i = 0; i < l.chunk_size; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &buf[i], 4);
        keys[i] = (uint64_t(bits & 0x7fffffffu) << 32) | (0xffffffffu - i);
      }
      std::nth_element(keys, keys + (l.k - 1), keys + l.chunk_size, std::greater<uint64_t>());
      for (uint32_t j = 0; j < l.k; ++j) idx[j] = uint16_t(0xffffffffu - uint32_t(keys[j]));
      std::sort(idx, idx + l.k);
    }
    double s = 0.0;
    for (uint32_t j = 0; j < l.k; ++j) {
      val[j] = buf[idx[j]];
      s += double(val[j]);
    }
    stats[g].sum = s;
  });
  if (nonfinite.load())
    return fail(COVENANT_ERR_NONFINITE,
                "non-finite value in the error feedback (beta * e + delta); zero the buffers");

  std::vector<Quant> quant(plan.tensors.size());
  auto reduce = [&](const TensorWork& w, size_t offset_in_stats) {
    return grouped_sum(reinterpret_cast<const double*>(
                           reinterpret_cast<const char*>(&stats[w.chunk_offset]) + offset_in_stats),
                       w.plan->layout.chunks, sizeof(ChunkStats) / sizeof(double));
  };
  for (size_t t = 0; t < work.size(); ++t)
    quant[t].shift =
        derive_shift(reduce(work[t], offsetof(ChunkStats, sum)), plan.tensors[t].layout.kept());

  // Phase 2: squared norm of the centred kept values.
  for_chunks(work, chunk_total, threads, [&](const TensorWork& w, uint64_t c, uint64_t g) {
    const Layout& l = w.plan->layout;
    const float shift = quant[&w - work.data()].shift;
    const float* val = kept_value.data() + w.kept_offset + c * l.k;
    double s = 0.0;
    for (uint32_t j = 0; j < l.k; ++j) {
      double v = double(val[j] - shift);
      s += v * v;
    }
    stats[g].sum_sq = s;
  });
  for (size_t t = 0; t < work.size(); ++t)
    quant[t].scale =
        derive_scale(reduce(work[t], offsetof(ChunkStats, sum_sq)), plan.tensors[t].layout.kept());

  // Phase 3: codes and per-bin sums.
  for_chunks(work, chunk_total, threads, [&](const TensorWork& w, uint64_t c, uint64_t g) {
    const Layout& l = w.plan->layout;
    const Quant& q = quant[&w - work.data()];
    const float* val = kept_value.data() + w.kept_offset + c * l.k;
    uint8_t* code = kept_code.data() + w.kept_offset + c * l.k;
    ChunkStats& st = stats[g];
    for (int b = 0; b < 4; ++b) st.bin_sum[b] = 0.0, st.bin_count[b] = 0;
    for (uint32_t j = 0; j < l.k; ++j) {
      float v = val[j] - q.shift;
      uint32_t b = quantize(v, q.scale);
      code[j] = uint8_t(b);
      st.bin_sum[b] += double(v);
      st.bin_count[b] += 1;
    }
  });
  for (size_t t = 0; t < work.size(); ++t) {
    double bin_sum[4];
    uint64_t bin_count[4];
    for (int b = 0; b < 4; ++b) {
      bin_sum[b] = reduce(work[t], offsetof(ChunkStats, bin_sum) + sizeof(double) * b);
      bin_count[b] = 0;
      for (uint64_t c = 0; c < plan.tensors[t].layout.chunks; ++c)
        bin_count[b] += stats[work[t].chunk_offset + c].bin_count[b];
    }
    derive_codebook(bin_sum, bin_count, quant[t].scale, &quant[t]);
  }

  // The receiver's checks, before anything is written: a payload that no receiver accepts
  // must not take its reconstruction out of the error feedback.
  Status checked = check_outgoing(plan, config, quant);
  if (!checked.ok()) return checked;

  // Phase 4: encode the records; e = beta * e + delta - reconstruction into the error buffer
  // (recomputed with the same operations as in phase 1, so the same bits).
  write_header(plan, quant, out);
  for_chunks(work, chunk_total, threads, [&](const TensorWork& w, uint64_t c, uint64_t) {
    const Layout& l = w.plan->layout;
    const Quant& q = quant[&w - work.data()];
    const uint16_t* idx = kept_index.data() + w.kept_offset + c * l.k;
    const uint8_t* code = kept_code.data() + w.kept_offset + c * l.k;
    uint8_t* rec = out + w.plan->body_offset + c * l.record_bytes;
    std::memset(rec, 0, l.record_bytes);
    encode_record(l, idx, code, rec);
    float buf[4096];
    feedback(w, c, dtype, beta, buf);
    for (uint32_t j = 0; j < l.k; ++j) buf[idx[j]] = buf[idx[j]] - dequantize(q, code[j]);
    const uint64_t tr = c / l.tiles_per_row, tc = c % l.tiles_per_row;
    for (uint32_t r = 0; r < l.chunk_rows; ++r)
      std::memcpy(w.error + (tr * l.chunk_rows + r) * l.cols + tc * l.chunk_cols,
                  buf + r * l.chunk_cols, sizeof(float) * l.chunk_cols);
  });
  return {};
}

}  // namespace covenant
