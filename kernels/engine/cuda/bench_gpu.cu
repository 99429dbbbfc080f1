// GPU training throughput of the engine: tokens/s and model FLOPs utilisation of full
// training steps (forward, backward, AdamW) on random tokens.
//   engine_bench_gpu [preset] [batch] [seq] [steps] [peak TFLOP/s, default 989 (H100/H200 bf16)]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model.h"
#include "model_cuda.cuh"
#include "rng.h"

using namespace covenant::engine;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "llama3-150m";
  const int B = argc > 2 ? std::atoi(argv[2]) : 8;
  const int T = argc > 3 ? std::atoi(argv[3]) : 1024;
  const int steps = argc > 4 ? std::atoi(argv[4]) : 10;
  const double peak = argc > 5 ? std::atof(argv[5]) : 989.0;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("%s: not run: no GPU\n", name.c_str());
    return 77;
  }
  ModelConfig c;
  if (!preset(name, &c) || B <= 0 || T <= 0 || T > c.max_seq_len || steps <= 0) {
    std::fprintf(stderr,
                 "usage: engine_bench_gpu [preset] [batch] [seq<=max] [steps] [peak TFLOP/s]\n");
    return 2;
  }
  Model host(c);
  host.init(1);
  cuda::CudaModel gpu(host);
  if (!gpu.error().empty()) {
    std::fprintf(stderr, "%s\n", gpu.error().c_str());
    return 1;
  }
  gpu.upload(host.weights());
  Rng rng(5);
  std::vector<int32_t> in(size_t(B) * T), tgt(size_t(B) * T);
  for (size_t i = 0; i < in.size(); i++) {
    in[i] = int32_t(rng.next() % c.vocab_size);
    tgt[i] = int32_t(rng.next() % c.vocab_size);
  }
  OptimConfig o;
  auto step = [&] {
    gpu.zero_grad();
    gpu.forward(in.data(), tgt.data(), B, T);
    gpu.backward(1.0f);
    gpu.adamw_step(o, 1e-4f);
  };
  step();
  cudaDeviceSynchronize();
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventRecord(e0);
  for (int s = 0; s < steps; s++) step();
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, e0, e1);
  const double tokens = double(B) * T * steps, secs = ms / 1e3;
  const double flops_per_token =
      6.0 * double(parameter_count(c)) + 6.0 * c.n_layers * double(T) * c.dim;
  const double tflops = flops_per_token * tokens / secs / 1e12;
  std::printf("%s engine batch %d seq %d: %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% of %.0f\n",
              name.c_str(), B, T, tokens / secs, tflops, 100.0 * tflops / peak, peak);
  return 0;
}
