// libFuzzer target: any byte string handed to the decoder and to aggregation must yield a
// status code, never a crash, a hang or an out-of-bounds access (built with ASan and UBSan).
// The run's spec is read leniently from the input's own tensor table so that the fuzzer
// reaches the body checks, not only the header checks.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "covenant_codec.h"

namespace {

struct LooseSpec {
  std::vector<std::string> names;
  std::vector<covenant_tensor> spec;
  uint32_t topk = 1;
};

// Reads what looks like a tensor table; gives up (returns false) on anything odd.
bool loose_spec(const uint8_t* d, size_t n, LooseSpec* s) {
  if (n < 24) return false;
  uint32_t count;
  std::memcpy(&count, d + 8, 4);
  if (count == 0 || count > 64) return false;
  size_t pos = 24;
  uint64_t numel = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (pos + 2 > n) return false;
    size_t len = d[pos] | (d[pos + 1] << 8);
    pos += 2;
    if (len == 0 || pos + len + 2 > n) return false;
    s->names.emplace_back(reinterpret_cast<const char*>(d + pos), len);
    if (s->names.back().find('\0') != std::string::npos) return false;
    pos += len;
    uint32_t rank = d[pos];
    pos += 2;
    if (rank < 1 || rank > 2 || pos + 4 * rank + 4 > n) return false;
    covenant_tensor t{};
    t.rank = rank;
    for (uint32_t r = 0; r < rank; ++r, pos += 4) std::memcpy(&t.dims[r], d + pos, 4);
    uint32_t k;
    std::memcpy(&k, d + pos, 4);
    pos += 4 + 24;
    if (k > s->topk && k <= 4096) s->topk = k;
    uint64_t e = rank == 2 ? uint64_t(t.dims[0]) * t.dims[1] : t.dims[0];
    if (e == 0 || e > (1u << 20)) return false;
    numel += e;
    if (numel > (1u << 21)) return false;
    s->spec.push_back(t);
  }
  for (size_t i = 0; i < s->spec.size(); ++i) s->spec[i].name = s->names[i].c_str();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LooseSpec s;
  if (!loose_spec(data, size, &s)) {
    // Still hand it to the decoder against a fixed spec: header paths.
    covenant_tensor fixed[2] = {{"w", 2, {64, 64}}, {"b", 1, {64, 0}}};
    covenant_config cfg{1, 64, 0.95f, 0.0f, 1};
    covenant_error err;
    covenant_validate(fixed, 2, &cfg, data, size, &err);
    cfg.format = 2;
    covenant_validate(fixed, 2, &cfg, data, size, &err);
    return 0;
  }
  covenant_config cfg{size > 6 ? uint32_t(data[6]) : 1u, s.topk, 0.95f, 0.0f, 1};
  if (cfg.format != 1 && cfg.format != 2) cfg.format = 1;
  std::vector<std::vector<float>> out(s.spec.size());
  std::vector<float*> ptrs;
  for (size_t i = 0; i < s.spec.size(); ++i) {
    const covenant_tensor& t = s.spec[i];
    out[i].assign(t.rank == 2 ? size_t(t.dims[0]) * t.dims[1] : t.dims[0], 0.0f);
    ptrs.push_back(out[i].data());
  }
  covenant_error err;
  int32_t rc = covenant_decode(s.spec.data(), s.spec.size(), &cfg, data, size, ptrs.data(), &err);
  if (rc != err.code) __builtin_trap();
  const uint8_t* payloads[2] = {data, data};
  size_t lengths[2] = {size, size};
  int32_t status[2];
  covenant_aggregate_report rep;
  covenant_aggregate(s.spec.data(), s.spec.size(), &cfg, payloads, lengths, 2, 0.5f, ptrs.data(),
                     status, &rep, &err);
  if (rc == COVENANT_OK && (status[0] != COVENANT_OK || rep.accepted != 2)) __builtin_trap();
  return 0;
}
