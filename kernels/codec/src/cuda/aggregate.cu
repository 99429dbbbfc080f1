// CUDA decoder and aggregation: strict record checks on the device (headers are parsed on
// the host by the same code as the CPU backend), median-norm clipping, scatter-mean in
// payload order, outer step. Same arithmetic and order as decode_cpu.cc.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "../backend.h"
#include "../quant.h"
#include "../record.h"
#include "common.cuh"
#include "covenant_codec.h"

namespace covenant {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// One block per chunk of one payload (its first thread decodes into shared memory, in the
// order the CPU uses): check the record, squared norm of its values.
__global__ void check_kernel(const DevTensor* tensors, uint32_t count, const uint8_t* payload,
                             const Quant* quant, double* sum_sq, unsigned long long* first_bad) {
  __shared__ uint16_t idx[4096];
  __shared__ uint8_t code[4096];
  if (threadIdx.x != 0) return;
  const uint64_t g = blockIdx.x;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const uint64_t c = g - t.chunk_offset;
  int32_t rc =
      decode_record(t.layout, payload + t.body_offset + c * t.layout.record_bytes, idx, code);
  if (rc != COVENANT_OK) {
    atomicMin(first_bad, (unsigned long long)g);
    return;
  }
  const Quant& q = quant[ti];
  double s = 0.0;
  for (uint32_t j = 0; j < t.layout.k; ++j) {
    double v = double(__fadd_rn(q.codebook[code[j]], q.shift));
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  sum_sq[g] = s;
}

struct DevPayload {
  const uint8_t* data;
};

// One block per chunk: scatter-mean over the accepted payloads in order, then the outer step.
__global__ void apply_kernel(const DevTensor* tensors, uint32_t count, const DevPayload* payloads,
                             uint32_t accepted, const Quant* quant, const float* factor, float lr,
                             unsigned long long* updated, unsigned long long* skipped) {
  __shared__ float sum[4096];
  __shared__ uint16_t hits[4096];
  __shared__ uint16_t idx[4096];
  __shared__ uint8_t code[4096];
  __shared__ unsigned long long s_up, s_skip;
  const uint64_t g = blockIdx.x;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const Layout& l = t.layout;
  const uint64_t c = g - t.chunk_offset;
  for (uint32_t i = threadIdx.x; i < l.chunk_size; i += kThreads) hits[i] = 0;
  if (threadIdx.x == 0) s_up = 0, s_skip = 0;
  __syncthreads();
  for (uint32_t p = 0; p < accepted; ++p) {
    if (threadIdx.x == 0)
      decode_record(l, payloads[p].data + t.body_offset + c * l.record_bytes, idx, code);
    __syncthreads();
    const Quant& q = quant[p * count + ti];
    const float f = factor[p * count + ti];
    for (uint32_t j = threadIdx.x; j < l.k; j += kThreads) {
      float v = __fadd_rn(q.codebook[code[j]], q.shift);
      if (f != 1.0f) v = __fmul_rn(v, f);
      const uint16_t i = idx[j];
      sum[i] = hits[i] ? __fadd_rn(sum[i], v) : v;
      hits[i] += 1;
    }
    __syncthreads();
  }
  unsigned long long up = 0, skip = 0;
  for (uint32_t i = threadIdx.x; i < l.chunk_size; i += kThreads) {
    if (!hits[i]) continue;
    float mean = __fdiv_rn(sum[i], float(hits[i]));
    float step = __fmul_rn(lr, mean);
    float* th = t.theta + l.flat(c, i);
    float next = __fsub_rn(*th, step);
    if (isfinite(next)) {
      *th = next;
      ++up;
    } else {
      ++skip;
    }
  }
  if (up) atomicAdd(&s_up, up);
  if (skip) atomicAdd(&s_skip, skip);
  __syncthreads();
  if (threadIdx.x == 0) {
    if (s_up) atomicAdd(updated, s_up);
    if (s_skip) atomicAdd(skipped, s_skip);
  }
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

Status aggregate(const Plan& plan, const covenant_config& config, const uint8_t* const* payloads,
                 const size_t* lengths, size_t payload_count, float lr, float* const* theta,
                 int32_t* status, covenant_aggregate_report* report) {
  const uint32_t count = uint32_t(plan.tensors.size());
  std::vector<DevTensor> host(count);
  uint64_t chunks = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const TensorPlan& tp = plan.tensors[i];
    host[i] = {tp.layout, tp.body_offset, 0, chunks, nullptr, nullptr, theta[i]};
    chunks += tp.layout.chunks;
  }
  if (chunks > 0x7fffffffull)
    return fail(COVENANT_ERR_ARGUMENT, "more than 2^31 chunks in one call");
  DeviceArray<DevTensor> dev_tensors;
  dev_tensors.upload(host);
  std::vector<size_t> first_group;
  DeviceArray<SumGroup> groups;
  groups.upload(sum_groups(plan, &first_group));
  DeviceArray<double> sum_sq(chunks);
  DeviceArray<unsigned long long> first_bad(1);
  DeviceArray<Quant> dev_quant;

  std::vector<DevPayload> accepted;
  std::vector<Quant> accepted_quant;
  std::vector<std::vector<double>> norms(count);
  covenant_aggregate_report rep{};
  for (size_t p = 0; p < payload_count; ++p) {
    std::vector<uint8_t> head(std::min<size_t>(lengths[p], plan.header_bytes + kHeaderSlack));
    std::vector<Quant> quant;
    Status s;
    if (!payloads[p] && lengths[p]) {
      s = fail(COVENANT_ERR_ARGUMENT, "payload is null");
    } else {
      if (!head.empty())
        check(cudaMemcpy(head.data(), payloads[p], head.size(), cudaMemcpyDeviceToHost),
              "header download");
      s = parse_header(plan, config, head.data(), head.size(), lengths[p], &quant);
    }
    if (s.ok()) {
      dev_quant.upload(quant);
      const unsigned long long none = ~0ull;
      check(cudaMemcpy(first_bad.get(), &none, sizeof none, cudaMemcpyHostToDevice), "reset");
      check_kernel<<<unsigned(chunks), 32>>>(dev_tensors.get(), count, payloads[p], dev_quant.get(),
                                             sum_sq.get(), first_bad.get());
      check(cudaGetLastError(), "check_kernel");
      unsigned long long bad = first_bad.download()[0];
      if (bad != ~0ull) {
        uint32_t t = 0;
        while (t + 1 < count && host[t + 1].chunk_offset <= bad) ++t;
        const Layout& l = host[t].layout;
        const uint64_t c = bad - host[t].chunk_offset;
        std::vector<uint8_t> rec(l.record_bytes);
        check(cudaMemcpy(rec.data(), payloads[p] + host[t].body_offset + c * l.record_bytes,
                         rec.size(), cudaMemcpyDeviceToHost),
              "record download");
        std::vector<uint16_t> idx(l.k);
        std::vector<uint8_t> code(l.k);
        int32_t rc = decode_record(l, rec.data(), idx.data(), code.data());
        s = fail(rc, plan.tensors[t].name + " chunk " + std::to_string(c) + ": " + rule_text(rc));
      } else {
        std::vector<double> totals = reduce_partials(sum_sq, groups, first_group, count, 1, 0);
        for (uint32_t t = 0; t < count; ++t) norms[t].push_back(std::sqrt(totals[t]));
      }
    }
    status[p] = s.code;
    if (!s.ok()) {
      ++rep.rejected;
      continue;
    }
    ++rep.accepted;
    accepted.push_back({payloads[p]});
    accepted_quant.insert(accepted_quant.end(), quant.begin(), quant.end());
  }
  if (!accepted.empty()) {
    std::vector<float> factor(accepted.size() * count);
    for (uint32_t t = 0; t < count; ++t) {
      std::vector<float> f = clip_factors(norms[t]);
      for (size_t p = 0; p < accepted.size(); ++p) factor[p * count + t] = f[p];
    }
    DeviceArray<DevPayload> dev_payloads;
    dev_payloads.upload(accepted);
    DeviceArray<Quant> all_quant;
    all_quant.upload(accepted_quant);
    DeviceArray<float> dev_factor;
    dev_factor.upload(factor);
    DeviceArray<unsigned long long> counters(2);
    check(cudaMemset(counters.get(), 0, 2 * sizeof(unsigned long long)), "cudaMemset");
    apply_kernel<<<unsigned(chunks), kThreads>>>(
        dev_tensors.get(), count, dev_payloads.get(), uint32_t(accepted.size()), all_quant.get(),
        dev_factor.get(), lr, counters.get(), counters.get() + 1);
    check(cudaGetLastError(), "apply_kernel");
    std::vector<unsigned long long> n = counters.download();
    rep.updated = n[0];
    rep.skipped_nonfinite = n[1];
  }
  *report = rep;
  return {};
}

}  // namespace cuda
}  // namespace covenant
