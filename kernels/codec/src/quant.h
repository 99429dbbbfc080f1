// Per-tensor quantization statistics from deterministic double-precision totals. Both
// backends reduce the same per-chunk partials in the same order and then call these.
#pragma once

#include <cmath>
#include <cstdint>

#include "wire.h"

namespace covenant {

// shift = mean of the kept values.
inline float derive_shift(double sum, uint64_t n) { return float(sum / double(n)); }

// sigma = ||kept - shift|| / sqrt(n - 1) (n - 1 taken as 1 for a single value); scale = 6 sigma
// / 4.
inline float derive_scale(double sum_sq, uint64_t n) {
  double sigma = std::sqrt(sum_sq / double(n > 1 ? n - 1 : 1));
  return float(6.0 * sigma / 4.0);
}

// codebook[b] = mean of the centred values coded b; an empty bin holds its centre (b - 2) * scale
// so that the codebook stays ordered.
inline void derive_codebook(const double bin_sum[4], const uint64_t bin_count[4], float scale,
                            Quant* q) {
  for (int b = 0; b < 4; ++b) {
    if (bin_count[b]) {
      q->codebook[b] = float(bin_sum[b] / double(bin_count[b]));
    } else {
      q->codebook[b] = scale > 0.0f ? float(double(b - 2) * double(scale)) : 0.0f;
    }
  }
}

// The value a receiver reconstructs for a code.
inline float dequantize(const Quant& q, uint32_t code) { return q.codebook[code] + q.shift; }

inline float bf16_to_float(uint16_t bits) {
  uint32_t v = uint32_t(bits) << 16;
  float f;
  __builtin_memcpy(&f, &v, 4);
  return f;
}

}  // namespace covenant
