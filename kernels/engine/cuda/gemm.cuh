// Matrix products of the GPU backend through cuBLASLt: bf16 inputs, fp32 accumulation.
// Row-major conventions of the CPU backend (src/cpu/matmul.h):
//   forward      y[N,O]  = x[N,I] W[O,I]^T           (bf16 out)
//   input grad   dx[N,I] = dy[N,O] W[O,I]            (bf16 out)
//   weight grad  dW[O,I] += dy[N,O]^T x[N,I]          (fp32 out, accumulated)
#pragma once
#include <cublasLt.h>

#include "kernels.cuh"

namespace covenant::engine::cuda {

class Gemm {
 public:
  // Returns false (and leaves the object unusable) when cuBLASLt cannot be initialised.
  bool init(size_t workspace_bytes = size_t(32) << 20);
  ~Gemm();
  cublasStatus_t forward(bf16* y, const bf16* x, const bf16* w, int N, int I, int O,
                         cudaStream_t s);
  cublasStatus_t input_grad(bf16* dx, const bf16* dy, const bf16* w, int N, int I, int O,
                            cudaStream_t s);
  cublasStatus_t weight_grad(float* dw, const bf16* dy, const bf16* x, int N, int I, int O,
                             cudaStream_t s);

 private:
  // Column-major D[m,n] = op(A)[m,k] op(B)[k,n] + beta * D.
  cublasStatus_t run(bool ta, bool tb, int m, int n, int k, const bf16* A, int lda, const bf16* B,
                     int ldb, void* D, cudaDataType_t dtype, int ldd, float beta, cudaStream_t s);
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

}  // namespace covenant::engine::cuda
