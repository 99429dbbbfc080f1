// Two backends, one truth: the CUDA backend must write the same payload bytes and leave the
// same error buffers and weights as the CPU reference, on random inputs of the Covenant-72B
// layer shapes and of every chunking case. Needs a GPU: exits 77 (skipped) without one.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>

#include "check.h"
#include "shapes.h"

using namespace codec_test;

namespace {

#define CUDA_OK(x) CHECK((x) == cudaSuccess)

template <class T>
T* to_device(const std::vector<T>& v) {
  T* p = nullptr;
  CUDA_OK(cudaMalloc(&p, v.size() * sizeof(T) + 1));
  CUDA_OK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

template <class T>
std::vector<T> to_host(const T* p, size_t n) {
  std::vector<T> v(n);
  CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

Model layer_model() {
  Model m;
  for (const auto& s : codec_bench::covenant_72b_block())
    m.add("layers.0." + s.name, s.dims[0], s.rank == 2 ? s.dims[1] : 0);
  m.add("embed.odd", 7, 13);
  m.add("bias.ragged", 100);
  m.add("scalar", 1);
  m.finalize();
  return m;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t b;
    std::memcpy(&b, &v[i], 4);
    out[i] = uint16_t(b >> 16);
  }
  return out;
}

// Compresses on both backends from the same inputs; returns the CPU payloads.
std::vector<uint8_t> compare_compress(Model& m, const covenant_config& cfg, covenant_dtype dtype) {
  std::vector<std::vector<uint16_t>> bf(m.spec.size());
  std::vector<const void*> host_d = m.delta_ptrs();
  std::vector<const void*> dev_d;
  std::vector<float*> dev_e;
  for (size_t t = 0; t < m.spec.size(); ++t) {
    if (dtype == COVENANT_BF16) {
      bf[t] = to_bf16(m.delta[t]);
      host_d[t] = bf[t].data();
      dev_d.push_back(to_device(bf[t]));
    } else {
      dev_d.push_back(to_device(m.delta[t]));
    }
    dev_e.push_back(to_device(m.error[t]));
  }
  uint64_t size = 0;
  covenant_payload_size(m.spec.data(), m.spec.size(), &cfg, &size, nullptr);
  uint8_t* dev_out = nullptr;
  CUDA_OK(cudaMalloc(&dev_out, size));
  size_t len = 0;
  covenant_error err{};
  CHECK_EQ(covenant_cuda_compress(m.spec.data(), m.spec.size(), &cfg, dtype, dev_d.data(),
                                  dev_e.data(), dev_out, size, &len, &err),
           COVENANT_OK);
  if (err.code) std::fprintf(stderr, "cuda compress: %s\n", err.message);
  std::vector<uint8_t> cpu = compress(m, cfg, dtype, &host_d);
  std::vector<uint8_t> gpu = to_host(dev_out, size);
  CHECK_EQ(len, cpu.size());
  if (gpu != cpu) {
    size_t at = 0;
    while (at < cpu.size() && cpu[at] == gpu[at]) ++at;
    std::fprintf(stderr, "format %u: payloads differ from byte %zu of %zu\n", cfg.format, at,
                 cpu.size());
  }
  CHECK(gpu == cpu);
  for (size_t t = 0; t < m.spec.size(); ++t) {
    CHECK(to_host(dev_e[t], m.error[t].size()) == m.error[t]);
    cudaFree(const_cast<void*>(dev_d[t]));
    cudaFree(dev_e[t]);
  }
  cudaFree(dev_out);
  return cpu;
}

void compare_aggregate(Model& m, const covenant_config& cfg,
                       const std::vector<std::vector<uint8_t>>& distinct) {
  // G = 20 payloads cycling over the distinct ones, one corrupted.
  std::vector<std::vector<uint8_t>> payloads;
  for (int p = 0; p < 20; ++p) payloads.push_back(distinct[p % distinct.size()]);
  payloads[7][payloads[7].size() / 2] ^= 0x5a;
  std::vector<const uint8_t*> host_p, dev_p;
  std::vector<size_t> lens;
  for (auto& p : payloads) {
    host_p.push_back(p.data());
    dev_p.push_back(to_device(p));
    lens.push_back(p.size());
  }
  std::vector<float*> dev_theta;
  for (auto& t : m.theta) dev_theta.push_back(to_device(t));
  std::vector<int32_t> st_cpu(20), st_gpu(20);
  covenant_aggregate_report r_cpu{}, r_gpu{};
  auto th = m.theta_ptrs();
  covenant_error err{};
  CHECK_EQ(covenant_aggregate(m.spec.data(), m.spec.size(), &cfg, host_p.data(), lens.data(), 20,
                              0.65f, th.data(), st_cpu.data(), &r_cpu, &err),
           COVENANT_OK);
  CHECK_EQ(covenant_cuda_aggregate(m.spec.data(), m.spec.size(), &cfg, dev_p.data(), lens.data(),
                                   20, 0.65f, dev_theta.data(), st_gpu.data(), &r_gpu, &err),
           COVENANT_OK);
  if (err.code) std::fprintf(stderr, "cuda aggregate: %s\n", err.message);
  CHECK(st_cpu == st_gpu);
  CHECK_EQ(r_cpu.accepted, r_gpu.accepted);
  CHECK_EQ(r_cpu.rejected, 1u);
  CHECK_EQ(r_cpu.updated, r_gpu.updated);
  CHECK_EQ(r_cpu.skipped_nonfinite, r_gpu.skipped_nonfinite);
  for (size_t t = 0; t < m.spec.size(); ++t) {
    CHECK(to_host(dev_theta[t], m.theta[t].size()) == m.theta[t]);
    cudaFree(dev_theta[t]);
  }
  for (auto p : dev_p) cudaFree(const_cast<uint8_t*>(p));
}

}  // namespace

int main() {
  if (!covenant_cuda_available()) {
    std::printf("codec_cuda: needs a GPU, skipped\n");
    return 77;
  }
  for (uint32_t format : {1u, 2u}) {
    covenant_config cfg = make_config(format, 64, 0);
    std::vector<std::vector<uint8_t>> distinct;
    Model m = layer_model();
    for (uint64_t seed : {11u, 12u, 13u}) {
      m.fill(seed * 10 + format);
      distinct.push_back(compare_compress(m, cfg, seed == 12 ? COVENANT_BF16 : COVENANT_F32));
    }
    // ties: many equal magnitudes in one chunk
    m.fill(99);
    for (size_t i = 0; i < m.delta[0].size(); i += 3) m.delta[0][i] = 0.01f, m.error[0][i] = 0.0f;
    compare_compress(m, cfg, COVENANT_F32);
    m.fill(5);
    compare_aggregate(m, cfg, distinct);
    // a non-finite input is reported by both
    m.fill(6);
    m.delta[1][12345] = INFINITY;
    std::vector<const void*> dd;
    std::vector<float*> de;
    for (size_t t = 0; t < m.spec.size(); ++t)
      dd.push_back(to_device(m.delta[t])), de.push_back(to_device(m.error[t]));
    uint64_t size = 0;
    covenant_payload_size(m.spec.data(), m.spec.size(), &cfg, &size, nullptr);
    uint8_t* out = nullptr;
    CUDA_OK(cudaMalloc(&out, size));
    size_t len;
    CHECK_EQ(covenant_cuda_compress(m.spec.data(), m.spec.size(), &cfg, COVENANT_F32, dd.data(),
                                    de.data(), out, size, &len, nullptr),
             COVENANT_ERR_NONFINITE);
    // ... before anything is written: the error buffers are unchanged
    for (size_t t = 0; t < m.spec.size(); ++t)
      CHECK(to_host(de[t], m.error[t].size()) == m.error[t]);
    // a payload no receiver accepts (a codebook entry beyond the bound) is refused the same way
    m.delta[1][12345] = 1.0e9f;
    CUDA_OK(cudaMemcpy(const_cast<void*>(dd[1]), m.delta[1].data(), m.delta[1].size() * 4,
                       cudaMemcpyHostToDevice));
    CHECK_EQ(covenant_cuda_compress(m.spec.data(), m.spec.size(), &cfg, COVENANT_F32, dd.data(),
                                    de.data(), out, size, &len, nullptr),
             COVENANT_ERR_QUANT);
    for (size_t t = 0; t < m.spec.size(); ++t)
      CHECK(to_host(de[t], m.error[t].size()) == m.error[t]);
    for (size_t t = 0; t < m.spec.size(); ++t) cudaFree(const_cast<void*>(dd[t])), cudaFree(de[t]);
    cudaFree(out);
  }
  return finish("codec_cuda");
}
