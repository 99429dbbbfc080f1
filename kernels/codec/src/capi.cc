// The C ABI: argument checks, error reporting, and dispatch to the CPU reference backend.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "backend.h"
#include "parallel.h"
#include "wire.h"

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
  } catch (const std::bad_alloc&) {
    return report(err, fail(COVENANT_ERR_ARGUMENT, "out of memory"));
  } catch (const std::exception& e) {
    return report(err, fail(COVENANT_ERR_ARGUMENT, e.what()));
  }
}

}  // namespace

extern "C" {

const char* covenant_status_name(int32_t code) {
  static const char* const names[] = {
      "ok",      "argument",  "truncated", "magic",    "version", "format",      "length",
      "table",   "duplicate", "mismatch",  "k",        "quant",   "index_range", "index_order",
      "padding", "encoding",  "nonfinite", "capacity", "backend"};
  if (code < 0 || size_t(code) >= sizeof(names) / sizeof(names[0])) return "unknown";
  return names[code];
}

int32_t covenant_payload_size(const covenant_tensor* spec, size_t count,
                              const covenant_config* config, uint64_t* size, covenant_error* err) {
  return guarded(err, [&]() -> Status {
    if (!size) return fail(COVENANT_ERR_ARGUMENT, "size is null");
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (s.ok()) *size = plan.total_bytes;
    return s;
  });
}

int32_t covenant_compress(const covenant_tensor* spec, size_t count, const covenant_config* config,
                          covenant_dtype delta_dtype, const void* const* deltas,
                          float* const* errors, uint8_t* out, size_t out_capacity, size_t* out_len,
                          covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
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
    s = cpu_compress(plan, *config, delta_dtype, deltas, errors, out);
    if (s.ok()) *out_len = plan.total_bytes;
    return s;
  });
}

int32_t covenant_validate(const covenant_tensor* spec, size_t count, const covenant_config* config,
                          const uint8_t* payload, size_t length, covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
    std::vector<Quant> quant;
    s = parse_header(plan, *config, payload, length, &quant);
    if (!s.ok()) return s;
    return cpu_check_bodies(plan, quant, payload, worker_count(config->threads), nullptr);
  });
}

int32_t covenant_decode(const covenant_tensor* spec, size_t count, const covenant_config* config,
                        const uint8_t* payload, size_t length, float* const* out,
                        covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
    if (!out) return fail(COVENANT_ERR_ARGUMENT, "out is null");
    for (size_t t = 0; t < count; ++t)
      if (!out[t])
        return fail(COVENANT_ERR_ARGUMENT, plan.tensors[t].name + ": null output buffer");
    std::vector<Quant> quant;
    s = parse_header(plan, *config, payload, length, &quant);
    if (!s.ok()) return s;
    return cpu_decode(plan, quant, payload, worker_count(config->threads), out);
  });
}

int32_t covenant_aggregate(const covenant_tensor* spec, size_t count, const covenant_config* config,
                           const uint8_t* const* payloads, const size_t* lengths,
                           size_t payload_count, float lr, float* const* theta,
                           int32_t* payload_status, covenant_aggregate_report* report_out,
                           covenant_error* err) {
  return guarded(err, [&]() -> Status {
    Plan plan;
    Status s = make_plan(spec, count, config, &plan);
    if (!s.ok()) return s;
    if (!std::isfinite(lr)) return fail(COVENANT_ERR_ARGUMENT, "lr must be finite");
    if (payload_count > 65535) return fail(COVENANT_ERR_ARGUMENT, "at most 65535 payloads");
    if (payload_count && (!payloads || !lengths || !payload_status))
      return fail(COVENANT_ERR_ARGUMENT, "null payload array");
    if (!theta || !report_out) return fail(COVENANT_ERR_ARGUMENT, "null theta or report");
    for (size_t t = 0; t < count; ++t)
      if (!theta[t])
        return fail(COVENANT_ERR_ARGUMENT, plan.tensors[t].name + ": null theta buffer");
    const unsigned threads = worker_count(config->threads);
    uint64_t chunks = 0;
    for (const TensorPlan& t : plan.tensors) chunks += t.layout.chunks;
    std::vector<Accepted> accepted;
    std::vector<std::vector<double>> partial;
    covenant_aggregate_report rep{};
    for (size_t p = 0; p < payload_count; ++p) {
      Accepted a;
      a.payload = payloads[p];
      Status v = parse_header(plan, *config, payloads[p], lengths[p], &a.quant);
      std::vector<double> sum_sq;
      if (v.ok()) {
        sum_sq.resize(chunks);
        v = cpu_check_bodies(plan, a.quant, payloads[p], threads, sum_sq.data());
      }
      payload_status[p] = v.code;
      if (!v.ok()) {
        ++rep.rejected;
        continue;
      }
      ++rep.accepted;
      accepted.push_back(std::move(a));
      partial.push_back(std::move(sum_sq));
    }
    uint64_t offset = 0;
    for (auto& a : accepted) a.factor.resize(count);
    for (size_t t = 0; t < count; ++t) {
      std::vector<double> norms(accepted.size());
      for (size_t p = 0; p < accepted.size(); ++p)
        norms[p] =
            std::sqrt(grouped_sum(partial[p].data() + offset, plan.tensors[t].layout.chunks));
      std::vector<float> f = clip_factors(norms);
      for (size_t p = 0; p < accepted.size(); ++p) accepted[p].factor[t] = f[p];
      offset += plan.tensors[t].layout.chunks;
    }
    if (!accepted.empty()) cpu_apply(plan, accepted, lr, threads, theta, &rep);
    *report_out = rep;
    return {};
  });
}

}  // extern "C"
