// C ABI of the CUDA backend: the same argument checks as the CPU entry points.
#include <cstdio>
#include <exception>
#include <new>

#include "../wire.h"
#include "common.cuh"
#include "covenant_codec.h"

namespace covenant {
namespace cuda {
Status compress(const Plan& plan, const covenant_config& config, covenant_dtype dtype,
                const void* const* deltas, float* const* errors, uint8_t* out);
Status aggregate(const Plan& plan, const covenant_config& config, const uint8_t* const* payloads,
                 const size_t* lengths, size_t payload_count, float lr, float* const* theta,
                 int32_t* status, covenant_aggregate_report* report);
}  // namespace cuda
}  // namespace covenant

using namespace covenant;

namespace {

int32_t report(covenant_error* err, const Status& s) {
  if (err) {
    err->code = s.code;
    std::snprintf(err->message, sizeof(err->message), "%s", s.message.c_str());
  }
  return s.code;
}

template <class Fn>
int32_t guarded(covenant_error* err, Fn fn) {
  try {
    return report(err, fn());
  } catch (const cuda::CudaError& e) {
    return report(err, fail(COVENANT_ERR_BACKEND, e.message));
  } catch (const std::bad_alloc&) {
    return report(err, fail(COVENANT_ERR_ARGUMENT, "out of memory"));
  } catch (const std::exception& e) {
    return report(err, fail(COVENANT_ERR_ARGUMENT, e.what()));
  }
}

}  // namespace

extern "C" {

int32_t covenant_cuda_available(void) {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0 ? 1 : 0;
}

int32_t covenant_cuda_compress(const covenant_tensor* spec, size_t count,
                               const covenant_config* config, covenant_dtype delta_dtype,
                               const void* const* deltas, float* const* errors, uint8_t* out,
                               size_t out_capacity, size_t* out_len, covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
    if (!covenant_cuda_available()) return fail(COVENANT_ERR_BACKEND, "no CUDA device");
    if (delta_dtype != COVENANT_F32 && delta_dtype != COVENANT_BF16)
      return fail(COVENANT_ERR_ARGUMENT, "delta dtype must be f32 or bf16");
    if (!deltas || !errors || !out || !out_len)
      return fail(COVENANT_ERR_ARGUMENT, "null buffer argument");
    for (size_t t = 0; t < count; ++t)
      if (!deltas[t] || !errors[t])
        return fail(COVENANT_ERR_ARGUMENT, plan.tensors[t].name + ": null tensor buffer");
    if (out_capacity < plan.total_bytes)
      return fail(COVENANT_ERR_CAPACITY, "output holds " + std::to_string(out_capacity) +
                                             " bytes, the payload needs " +
                                             std::to_string(plan.total_bytes));
    s = cuda::compress(plan, *config, delta_dtype, deltas, errors, out);
    if (s.ok()) *out_len = plan.total_bytes;
    return s;
  });
}

int32_t covenant_cuda_aggregate(const covenant_tensor* spec, size_t count,
                                const covenant_config* config, const uint8_t* const* payloads,
                                const size_t* lengths, size_t payload_count, float lr,
                                float* const* theta, int32_t* payload_status,
                                covenant_aggregate_report* report_out, covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
    if (!covenant_cuda_available()) return fail(COVENANT_ERR_BACKEND, "no CUDA device");
    if (!std::isfinite(lr)) return fail(COVENANT_ERR_ARGUMENT, "lr must be finite");
    if (payload_count > 65535) return fail(COVENANT_ERR_ARGUMENT, "at most 65535 payloads");
    if (payload_count && (!payloads || !lengths || !payload_status))
      return fail(COVENANT_ERR_ARGUMENT, "null payload array");
    if (!theta || !report_out) return fail(COVENANT_ERR_ARGUMENT, "null theta or report");
    for (size_t t = 0; t < count; ++t)
      if (!theta[t])
        return fail(COVENANT_ERR_ARGUMENT, plan.tensors[t].name + ": null theta buffer");
    return cuda::aggregate(plan, *config, payloads, lengths, payload_count, lr, theta,
                           payload_status, report_out);
  });
}

}  // extern "C"
