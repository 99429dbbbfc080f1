#include "gemm.cuh"

namespace covenant::engine::cuda {

bool Gemm::init(size_t workspace_bytes) {
  if (cublasLtCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return false;
  if (cudaMalloc(&workspace_, workspace_bytes) != cudaSuccess) return false;
  workspace_bytes_ = workspace_bytes;
  return true;
}

Gemm::~Gemm() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

cublasStatus_t Gemm::run(bool ta, bool tb, int m, int n, int k, const bf16* A, int lda,
                         const bf16* B, int ldb, void* D, cudaDataType_t dtype, int ldd, float beta,
                         cudaStream_t s) {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (st == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
    st = cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda);
  }
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb);
  }
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&ld, dtype, m, n, ldd);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &workspace_bytes_, sizeof workspace_bytes_);
    st = cublasLtMatmulAlgoGetHeuristic(handle_, op, la, lb, ld, ld, pref, 1, &heuristic, &found);
    if (st == CUBLAS_STATUS_SUCCESS && found == 0) st = CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (st == CUBLAS_STATUS_SUCCESS) {
    const float alpha = 1.0f;
    st = cublasLtMatmul(handle_, op, &alpha, A, la, B, lb, &beta, D, ld, D, ld, &heuristic.algo,
                        workspace_, workspace_bytes_, s);
  }
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (ld) cublasLtMatrixLayoutDestroy(ld);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (op) cublasLtMatmulDescDestroy(op);
  return st;
}

// Row-major X[r,c] is column-major X^T with leading dimension c.
cublasStatus_t Gemm::forward(bf16* y, const bf16* x, const bf16* w, int N, int I, int O,
                             cudaStream_t s) {
  // y^T[O,N] = (W^T)^T[O,I] x^T[I,N]
  return run(true, false, O, N, I, w, I, x, I, y, CUDA_R_16BF, O, 0.0f, s);
}

cublasStatus_t Gemm::input_grad(bf16* dx, const bf16* dy, const bf16* w, int N, int I, int O,
                                cudaStream_t s) {
  // dx^T[I,N] = W^T[I,O] dy^T[O,N]
  return run(false, false, I, N, O, w, I, dy, O, dx, CUDA_R_16BF, I, 0.0f, s);
}

cublasStatus_t Gemm::weight_grad(float* dw, const bf16* dy, const bf16* x, int N, int I, int O,
                                 cudaStream_t s) {
  // dW^T[I,O] += x^T[I,N] (dy^T)^T[N,O]
  return run(false, true, I, O, N, x, I, dy, O, dw, CUDA_R_32F, I, 1.0f, s);
}

}  // namespace covenant::engine::cuda
