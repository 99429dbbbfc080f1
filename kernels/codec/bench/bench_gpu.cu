// GPU benchmark: compress and decode-aggregate (G payloads) over one block of Covenant-72B,
// beside the memory-bandwidth floor (bytes that must move / measured device-to-device copy
// bandwidth). The PyTorch version of the same algorithm is bench/torch_reference.py; run
// both on the same GPU (bench.sh does). usage: codec_bench_gpu [--gather G] [--format F]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "covenant_codec.h"
#include "shapes.h"

using namespace codec_bench;

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

__global__ void fill(float* p, uint64_t n, uint64_t seed, float scale) {
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + seed) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    p[i] = (float(int32_t(z >> 40) - (1 << 23)) / 8388608.0f) * scale;
  }
}

// Device-to-device copy bandwidth in bytes/s (read + write counted).
double copy_bandwidth() {
  const size_t bytes = size_t(2) << 30;
  void *a, *b;
  ok(cudaMalloc(&a, bytes), "malloc");
  ok(cudaMalloc(&b, bytes), "malloc");
  cudaEvent_t s, e;
  cudaEventCreate(&s);
  cudaEventCreate(&e);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(s);
  for (int i = 0; i < 10; ++i) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e);
  cudaEventSynchronize(e);
  float ms;
  cudaEventElapsedTime(&ms, s, e);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes * 10 / (ms / 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t gather = 20, format = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--gather")) gather = uint32_t(std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--format")) format = uint32_t(std::atoi(argv[i + 1]));
  }
  if (!covenant_cuda_available()) {
    std::printf("codec_bench_gpu: not run: no GPU\n");
    return 0;
  }
  std::vector<Shape> shapes = covenant_72b_block();
  std::vector<covenant_tensor> spec;
  std::vector<float*> delta, error, theta;
  uint64_t params = 0;
  for (const Shape& s : shapes) {
    spec.push_back({s.name.c_str(), s.rank, {s.dims[0], s.dims[1]}});
    uint64_t n = numel(s);
    params += n;
    float *d, *e, *t;
    ok(cudaMalloc(&d, n * 4), "malloc");
    ok(cudaMalloc(&e, n * 4), "malloc");
    ok(cudaMalloc(&t, n * 4), "malloc");
    fill<<<1024, 256>>>(d, n, params, 0.01f);
    cudaMemset(e, 0, n * 4);
    cudaMemset(t, 0, n * 4);
    delta.push_back(d), error.push_back(e), theta.push_back(t);
  }
  covenant_config cfg{format, 64, 0.95f, 0.0f, 0};
  uint64_t size = 0;
  covenant_payload_size(spec.data(), spec.size(), &cfg, &size, nullptr);
  std::vector<uint8_t*> payloads(gather);
  for (auto& p : payloads) ok(cudaMalloc(&p, size), "malloc");
  std::vector<const void*> dptr(delta.begin(), delta.end());
  covenant_error err{};
  size_t len;
  cudaEvent_t s, e;
  cudaEventCreate(&s);
  cudaEventCreate(&e);
  float best_c = 1e30f;
  for (uint32_t p = 0; p < gather; ++p) {
    cudaEventRecord(s);
    if (covenant_cuda_compress(spec.data(), spec.size(), &cfg, COVENANT_F32, dptr.data(),
                               error.data(), payloads[p], size, &len, &err)) {
      std::fprintf(stderr, "compress: %s\n", err.message);
      return 1;
    }
    cudaEventRecord(e);
    cudaEventSynchronize(e);
    float ms;
    cudaEventElapsedTime(&ms, s, e);
    if (ms < best_c) best_c = ms;
  }
  std::vector<const uint8_t*> pp(payloads.begin(), payloads.end());
  std::vector<size_t> lens(gather, size);
  std::vector<int32_t> status(gather);
  covenant_aggregate_report rep;
  float best_a = 1e30f;
  for (int r = 0; r < 3; ++r) {
    cudaEventRecord(s);
    if (covenant_cuda_aggregate(spec.data(), spec.size(), &cfg, pp.data(), lens.data(), gather,
                                0.5f, theta.data(), status.data(), &rep, &err)) {
      std::fprintf(stderr, "aggregate: %s\n", err.message);
      return 1;
    }
    cudaEventRecord(e);
    cudaEventSynchronize(e);
    float ms;
    cudaEventElapsedTime(&ms, s, e);
    if (ms < best_a) best_a = ms;
  }
  const double bw = copy_bandwidth();
  // Floors: compress reads delta and e and writes e (12 bytes per parameter) plus the payload;
  // decode-aggregate reads G payloads and reads and writes theta where updated (at most 8 bytes
  // per parameter).
  const double floor_c = (12.0 * params + size) / bw * 1e3;
  const double floor_a = (8.0 * params + double(size) * gather) / bw * 1e3;
  const double gb = params * 4.0 / 1e9;
  std::printf(
      "| GPU | format | params | compress ms | GB/s | floor ms | of floor | aggregate G=%u ms | "
      "GB/s | floor ms | of floor |\n",
      gather);
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("| %s | %u | %.3fB | %.2f | %.1f | %.2f | %.0f%% | %.2f | %.1f | %.2f | %.0f%% |\n",
              prop.name, format, params / 1e9, best_c, gb / (best_c / 1e3), floor_c,
              100.0 * floor_c / best_c, best_a, gb / (best_a / 1e3), floor_a,
              100.0 * floor_a / best_a);
  return 0;
}
