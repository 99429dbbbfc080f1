// Payload header and tensor table: writing, and parsing that trusts nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "covenant_codec.h"
#include "layout.h"

namespace covenant {

constexpr uint8_t kMagic[4] = {'C', 'V', 'S', 'L'};
constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kHeaderSlack = 512;  // more than one table entry

struct Quant {
  float shift = 0.0f;
  float scale = 0.0f;
  float codebook[4] = {0.0f, 0.0f, 0.0f, 0.0f};
};

// One tensor of the run as the codec sees it.
struct TensorPlan {
  std::string name;
  uint32_t rank = 0;
  uint32_t dims[2] = {0, 0};
  Layout layout;
  uint64_t body_offset = 0;  // of the first chunk record in the payload
};

struct Plan {
  uint32_t format = 0;
  std::vector<TensorPlan> tensors;
  uint64_t header_bytes = 0;
  uint64_t total_bytes = 0;
};

// Result of a failed check: a status code and a message naming the field.
struct Status {
  int32_t code = COVENANT_OK;
  std::string message;
  bool ok() const { return code == COVENANT_OK; }
};

Status fail(int32_t code, std::string message);
float effective_max_abs(const covenant_config& config);
bool valid_name(const char* name, size_t length);

// Checks the caller's spec and configuration and lays out the payload.
Status make_plan(const covenant_tensor* spec, size_t count, const covenant_config* config,
                 Plan* plan);

// Writes the header and tensor table (plan.header_bytes bytes).
void write_header(const Plan& plan, const std::vector<Quant>& quant, uint8_t* out);

// Parses the header of a payload and checks it against the plan: every field, every
// quantization parameter, the exact length. Fills quant (one per tensor) on success.
// `available` bytes of data are readable (the CUDA backend passes a host copy of the header
// only: plan.header_bytes + kHeaderSlack bytes give the same result as the whole payload,
// since parsing stops at the first entry that differs from the plan); `length` is the size
// of the whole payload.
Status parse_header(const Plan& plan, const covenant_config& config, const uint8_t* data,
                    size_t available, size_t length, std::vector<Quant>* quant);
inline Status parse_header(const Plan& plan, const covenant_config& config, const uint8_t* data,
                           size_t length, std::vector<Quant>* quant) {
  return parse_header(plan, config, data, length, length, quant);
}

// Checks quantization parameters (finite, bounded, ordered codebook).
Status check_quant(const Quant& q, float max_abs, const std::string& tensor);

// The compressor's check of the payload it is about to write, with the receiver's rules
// (check_quant under the run's bound, tensor by tensor). Records, lengths and the table come
// from the plan and are valid by construction; the quantization parameters are the only part
// that depends on the data. Both backends call this before they write the error buffers.
Status check_outgoing(const Plan& plan, const covenant_config& config,
                      const std::vector<Quant>& quant);

}  // namespace covenant
