// CUDA compressor: the same steps, the same arithmetic and the same reduction order as
// compress_cpu.cc, so that both backends write identical payloads and error buffers. As on
// the CPU, the error buffers are written only after the payload passed the receiver's checks.
#include <cstring>
#include <cub/block/block_scan.cuh>

#include "../quant.h"
#include "../record.h"
#include "common.cuh"
#include "covenant_codec.h"

namespace covenant {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kStats = 6;  // per chunk: sum, sum_sq, bin_sum[4]

__device__ inline float load_delta(const DevTensor& t, uint64_t f, int bf16) {
  if (bf16) {
    uint32_t bits = uint32_t(static_cast<const uint16_t*>(t.delta)[f]) << 16;
    return __uint_as_float(bits);
  }
  return static_cast<const float*>(t.delta)[f];
}

// e = beta * e + delta for element f (the same two roundings everywhere it is computed).
__device__ inline float feedback_value(const DevTensor& t, uint64_t f, float beta, int bf16) {
  float e = __fmul_rn(beta, t.error[f]);
  return __fadd_rn(e, load_delta(t, f, bf16));
}

// One block per chunk: e = beta * e + delta (not stored: the error buffer is only read here),
// exact top-k by (|e| desc, index asc) with a radix select on the magnitude bits, kept indices
// in ascending order, partial sum.
__global__ void select_kernel(const DevTensor* tensors, uint32_t count, float beta, int bf16,
                              uint16_t* kept_index, float* kept_value, double* stats,
                              int* nonfinite) {
  __shared__ float buf[4096];
  __shared__ uint32_t hist[256];
  __shared__ uint32_t s_prefix, s_remaining;
  using Scan = cub::BlockScan<uint32_t, kThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;

  const uint64_t g = blockIdx.x;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const Layout& l = t.layout;
  const uint64_t c = g - t.chunk_offset;
  const uint64_t tr = c / l.tiles_per_row, tc = c % l.tiles_per_row;
  const uint32_t cs = l.chunk_size;

  bool finite = true;
  for (uint32_t i = threadIdx.x; i < cs; i += kThreads) {
    const uint32_t r = i / l.chunk_cols, col = i % l.chunk_cols;
    const uint64_t f = (tr * l.chunk_rows + r) * l.cols + tc * l.chunk_cols + col;
    const float e = feedback_value(t, f, beta, bf16);
    finite &= isfinite(e);
    buf[i] = e;
  }
  if (!finite) atomicOr(nonfinite, 1);
  __syncthreads();

  uint16_t* idx = kept_index + t.kept_offset + c * l.k;
  float* val = kept_value + t.kept_offset + c * l.k;
  const uint32_t k = l.k;
  if (k == cs) {
    for (uint32_t i = threadIdx.x; i < cs; i += kThreads) idx[i] = uint16_t(i);
  } else {
    // Radix select of the k-th largest magnitude key, 8 bits at a time.
    if (threadIdx.x == 0) s_prefix = 0, s_remaining = k;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      hist[threadIdx.x] = 0;
      __syncthreads();
      const uint32_t prefix = s_prefix;
      for (uint32_t i = threadIdx.x; i < cs; i += kThreads) {
        uint32_t key = __float_as_uint(buf[i]) & 0x7fffffffu;
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        uint32_t above = 0, rem = s_remaining;
        for (int d = 255; d >= 0; --d) {
          if (above + hist[d] >= rem) {
            s_prefix = prefix | (uint32_t(d) << shift);
            s_remaining = rem - above;
            break;
          }
          above += hist[d];
        }
      }
      mask |= 255u << shift;
      __syncthreads();
    }
    const uint32_t threshold = s_prefix, equal_wanted = s_remaining;
    // Contiguous segments per thread so that scans follow index order.
    const uint32_t seg = (cs + kThreads - 1) / kThreads;
    const uint32_t begin = min(cs, threadIdx.x * seg), end = min(cs, begin + seg);
    uint32_t equal = 0;
    for (uint32_t i = begin; i < end; ++i)
      equal += (__float_as_uint(buf[i]) & 0x7fffffffu) == threshold;
    uint32_t equal_before;
    Scan(scan_tmp).ExclusiveSum(equal, equal_before);
    __syncthreads();
    uint32_t chosen = 0, eq = equal_before;
    for (uint32_t i = begin; i < end; ++i) {
      uint32_t key = __float_as_uint(buf[i]) & 0x7fffffffu;
      if (key > threshold || (key == threshold && eq++ < equal_wanted)) ++chosen;
    }
    uint32_t out;
    Scan(scan_tmp).ExclusiveSum(chosen, out);
    eq = equal_before;
    for (uint32_t i = begin; i < end; ++i) {
      uint32_t key = __float_as_uint(buf[i]) & 0x7fffffffu;
      if (key > threshold || (key == threshold && eq++ < equal_wanted)) idx[out++] = uint16_t(i);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (uint32_t j = 0; j < k; ++j) {
      float v = buf[idx[j]];
      val[j] = v;
      s = __dadd_rn(s, double(v));
    }
    stats[g * kStats + 0] = s;
  }
}

// One thread per chunk: squared norm of the centred kept values.
__global__ void sumsq_kernel(const DevTensor* tensors, uint32_t count, uint64_t chunks,
                             const Quant* quant, const float* kept_value, double* stats) {
  const uint64_t g = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= chunks) return;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const uint64_t c = g - t.chunk_offset;
  const float shift = quant[ti].shift;
  const float* val = kept_value + t.kept_offset + c * t.layout.k;
  double s = 0.0;
  for (uint32_t j = 0; j < t.layout.k; ++j) {
    double v = double(__fsub_rn(val[j], shift));
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  stats[g * kStats + 1] = s;
}

// One thread per chunk: codes and per-bin sums and counts.
__global__ void code_kernel(const DevTensor* tensors, uint32_t count, uint64_t chunks,
                            const Quant* quant, const float* kept_value, uint8_t* kept_code,
                            double* stats, unsigned long long* bin_count) {
  const uint64_t g = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= chunks) return;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const uint64_t c = g - t.chunk_offset;
  const Quant q = quant[ti];
  const float* val = kept_value + t.kept_offset + c * t.layout.k;
  uint8_t* code = kept_code + t.kept_offset + c * t.layout.k;
  double sum[4] = {0.0, 0.0, 0.0, 0.0};
  uint32_t n[4] = {0, 0, 0, 0};
  for (uint32_t j = 0; j < t.layout.k; ++j) {
    float v = __fsub_rn(val[j], q.shift);
    uint32_t b = quantize(v, q.scale);
    code[j] = uint8_t(b);
    sum[b] = __dadd_rn(sum[b], double(v));
    n[b] += 1;
  }
  for (int b = 0; b < 4; ++b) {
    stats[g * kStats + 2 + b] = sum[b];
    if (n[b]) atomicAdd(&bin_count[ti * 4 + b], (unsigned long long)n[b]);
  }
}

// One block per chunk, once the payload passed the checks: store e = beta * e + delta.
__global__ void store_feedback_kernel(const DevTensor* tensors, uint32_t count, float beta,
                                      int bf16) {
  const uint64_t g = blockIdx.x;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const Layout& l = t.layout;
  const uint64_t c = g - t.chunk_offset;
  const uint64_t tr = c / l.tiles_per_row, tc = c % l.tiles_per_row;
  for (uint32_t i = threadIdx.x; i < l.chunk_size; i += kThreads) {
    const uint32_t r = i / l.chunk_cols, col = i % l.chunk_cols;
    const uint64_t f = (tr * l.chunk_rows + r) * l.cols + tc * l.chunk_cols + col;
    t.error[f] = feedback_value(t, f, beta, bf16);
  }
}

// One thread per chunk: write the record and subtract the reconstruction from e.
__global__ void encode_kernel(const DevTensor* tensors, uint32_t count, uint64_t chunks,
                              const Quant* quant, const uint16_t* kept_index,
                              const uint8_t* kept_code, uint8_t* out) {
  const uint64_t g = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= chunks) return;
  const uint32_t ti = tensor_of(tensors, count, g);
  const DevTensor& t = tensors[ti];
  const Layout& l = t.layout;
  const uint64_t c = g - t.chunk_offset;
  const Quant& q = quant[ti];
  const uint16_t* idx = kept_index + t.kept_offset + c * l.k;
  const uint8_t* code = kept_code + t.kept_offset + c * l.k;
  uint8_t* rec = out + t.body_offset + c * l.record_bytes;
  for (uint32_t b = 0; b < l.record_bytes; ++b) rec[b] = 0;
  encode_record(l, idx, code, rec);
  for (uint32_t j = 0; j < l.k; ++j) {
    float* e = t.error + l.flat(c, idx[j]);
    *e = __fsub_rn(*e, __fadd_rn(q.codebook[code[j]], q.shift));
  }
}

unsigned blocks_for(uint64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

Status compress(const Plan& plan, const covenant_config& config, covenant_dtype dtype,
                const void* const* deltas, float* const* errors, uint8_t* out) {
  const uint32_t count = uint32_t(plan.tensors.size());
  std::vector<DevTensor> host(count);
  uint64_t kept = 0, chunks = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const TensorPlan& tp = plan.tensors[i];
    host[i] = {tp.layout, tp.body_offset, kept, chunks, deltas[i], errors[i], nullptr};
    kept += tp.layout.kept();
    chunks += tp.layout.chunks;
  }
  if (chunks > 0x7fffffffull)
    return fail(COVENANT_ERR_ARGUMENT, "more than 2^31 chunks in one call");
  DeviceArray<DevTensor> dev_tensors;
  dev_tensors.upload(host);
  DeviceArray<uint16_t> kept_index(kept);
  DeviceArray<float> kept_value(kept);
  DeviceArray<uint8_t> kept_code(kept);
  DeviceArray<double> stats(chunks * kStats);
  DeviceArray<unsigned long long> bin_count(count * 4);
  check(cudaMemset(bin_count.get(), 0, count * 4 * sizeof(unsigned long long)), "cudaMemset");
  DeviceArray<int> nonfinite(1);
  check(cudaMemset(nonfinite.get(), 0, sizeof(int)), "cudaMemset");
  std::vector<size_t> first_group;
  DeviceArray<SumGroup> groups;
  groups.upload(sum_groups(plan, &first_group));

  select_kernel<<<unsigned(chunks), kThreads>>>(dev_tensors.get(), count, config.beta,
                                                dtype == COVENANT_BF16, kept_index.get(),
                                                kept_value.get(), stats.get(), nonfinite.get());
  check(cudaGetLastError(), "select_kernel");
  if (nonfinite.download()[0])
    return fail(COVENANT_ERR_NONFINITE,
                "non-finite value in the error feedback (beta * e + delta); zero the buffers");

  std::vector<Quant> quant(count);
  std::vector<double> sums = reduce_partials(stats, groups, first_group, count, kStats, 0);
  for (uint32_t i = 0; i < count; ++i)
    quant[i].shift = derive_shift(sums[i], plan.tensors[i].layout.kept());
  DeviceArray<Quant> dev_quant;
  dev_quant.upload(quant);
  sumsq_kernel<<<blocks_for(chunks), kThreads>>>(dev_tensors.get(), count, chunks, dev_quant.get(),
                                                 kept_value.get(), stats.get());
  check(cudaGetLastError(), "sumsq_kernel");
  sums = reduce_partials(stats, groups, first_group, count, kStats, 1);
  for (uint32_t i = 0; i < count; ++i)
    quant[i].scale = derive_scale(sums[i], plan.tensors[i].layout.kept());
  dev_quant.upload(quant);
  code_kernel<<<blocks_for(chunks), kThreads>>>(dev_tensors.get(), count, chunks, dev_quant.get(),
                                                kept_value.get(), kept_code.get(), stats.get(),
                                                bin_count.get());
  check(cudaGetLastError(), "code_kernel");
  std::vector<std::vector<double>> bins(4);
  for (int b = 0; b < 4; ++b)
    bins[b] = reduce_partials(stats, groups, first_group, count, kStats, 2 + b);
  std::vector<unsigned long long> counts = bin_count.download();
  for (uint32_t i = 0; i < count; ++i) {
    double bin_sum[4];
    uint64_t bin_n[4];
    for (int b = 0; b < 4; ++b) bin_sum[b] = bins[b][i], bin_n[b] = counts[i * 4 + b];
    derive_codebook(bin_sum, bin_n, quant[i].scale, &quant[i]);
  }
  // The receiver's checks before the first write to the error buffers or to out.
  Status checked = check_outgoing(plan, config, quant);
  if (!checked.ok()) return checked;
  dev_quant.upload(quant);
  std::vector<uint8_t> header(plan.header_bytes);
  write_header(plan, quant, header.data());
  check(cudaMemcpy(out, header.data(), header.size(), cudaMemcpyHostToDevice), "header upload");
  store_feedback_kernel<<<unsigned(chunks), kThreads>>>(dev_tensors.get(), count, config.beta,
                                                        dtype == COVENANT_BF16);
  check(cudaGetLastError(), "store_feedback_kernel");
  encode_kernel<<<blocks_for(chunks), kThreads>>>(dev_tensors.get(), count, chunks, dev_quant.get(),
                                                  kept_index.get(), kept_code.get(), out);
  check(cudaGetLastError(), "encode_kernel");
  check(cudaDeviceSynchronize(), "compress");
  return {};
}

}  // namespace cuda
}  // namespace covenant
