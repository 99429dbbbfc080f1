// Shared pieces of the CUDA backend: error handling, device buffers, the per-tensor table.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../layout.h"
#include "../wire.h"

namespace covenant {
namespace cuda {

struct CudaError {
  std::string message;
};

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaError{std::string(what) + ": " + cudaGetErrorString(e)};
}

// Owning device allocation.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n = 0) { resize(n); }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void resize(size_t n) {
    cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = n;
    if (n) check(cudaMalloc(&ptr_, n * sizeof(T)), "cudaMalloc");
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& v) {
    resize(v.size());
    if (!v.empty())
      check(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    if (n_) check(cudaMemcpy(v.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// One tensor as the kernels see it.
struct DevTensor {
  Layout layout;
  uint64_t body_offset;
  uint64_t kept_offset;
  uint64_t chunk_offset;
  const void* delta;
  float* error;
  float* theta;
};

// Tensor of a global chunk number (binary search over chunk offsets).
__device__ inline uint32_t tensor_of(const DevTensor* t, uint32_t count, uint64_t chunk) {
  uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    uint32_t mid = (lo + hi) / 2;
    if (t[mid].chunk_offset <= chunk)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// Groups of kSumGroup chunks within each tensor, for the deterministic reductions.
struct SumGroup {
  uint64_t begin, end;  // global chunk numbers
};

std::vector<SumGroup> sum_groups(const Plan& plan, std::vector<size_t>* first_group);

// Sums per-chunk partials within each group (sequentially, in chunk order) on the device,
// then per tensor over the groups on the host, in the order of the CPU backend.
std::vector<double> reduce_partials(const DeviceArray<double>& partial,
                                    const DeviceArray<SumGroup>& groups,
                                    const std::vector<size_t>& first_group, size_t tensors,
                                    uint64_t stride, uint64_t offset);

}  // namespace cuda
}  // namespace covenant
