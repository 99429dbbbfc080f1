// The CUDA entry points of a build without a CUDA compiler: they report the missing backend.
#include <cstdio>

#include "covenant_codec.h"

namespace {
int32_t unavailable(covenant_error* err) {
  if (err) {
    err->code = COVENANT_ERR_BACKEND;
    std::snprintf(err->message, sizeof(err->message),
                  "this build of the codec has no CUDA backend");
  }
  return COVENANT_ERR_BACKEND;
}
}  // namespace

extern "C" {
int32_t covenant_cuda_available(void) { return 0; }
int32_t covenant_cuda_compress(const covenant_tensor*, size_t, const covenant_config*,
                               covenant_dtype, const void* const*, float* const*, uint8_t*, size_t,
                               size_t*, covenant_error* err) {
  return unavailable(err);
}
int32_t covenant_cuda_aggregate(const covenant_tensor*, size_t, const covenant_config*,
                                const uint8_t* const*, const size_t*, size_t, float, float* const*,
                                int32_t*, covenant_aggregate_report*, covenant_error* err) {
  return unavailable(err);
}
}
