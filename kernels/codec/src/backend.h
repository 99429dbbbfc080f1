// Entry points of the CPU reference backend behind the C ABI (see capi.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "covenant_codec.h"
#include "wire.h"

namespace covenant {

Status cpu_compress(const Plan& plan, const covenant_config& config, covenant_dtype dtype,
                    const void* const* deltas, float* const* errors, uint8_t* out);

// Checks every chunk record of a payload whose header already passed parse_header. When
// sum_sq is not null it receives, per tensor and chunk, the squared norm of the dequantized
// values (laid out by global chunk number).
Status cpu_check_bodies(const Plan& plan, const std::vector<Quant>& quant, const uint8_t* payload,
                        unsigned threads, double* sum_sq);

Status cpu_decode(const Plan& plan, const std::vector<Quant>& quant, const uint8_t* payload,
                  unsigned threads, float* const* out);

struct Accepted {
  const uint8_t* payload;
  std::vector<Quant> quant;
  std::vector<float> factor;  // per tensor: min(1, median norm / norm)
};

// Scatter-mean of the accepted payloads and the outer step.
void cpu_apply(const Plan& plan, const std::vector<Accepted>& accepted, float lr, unsigned threads,
               float* const* theta, covenant_aggregate_report* report);

// Clip factors from per-payload norms of one tensor: min(1, lower median / norm).
std::vector<float> clip_factors(const std::vector<double>& norms);

}  // namespace covenant
