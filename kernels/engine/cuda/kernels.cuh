// CUDA kernels of the engine's GPU backend: bf16 activations, fp32 accumulation, fp32 master
// weights. Each launcher has a CPU reference in src/cpu/ and a check in test_cuda_kernels.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace covenant::engine::cuda {

using bf16 = __nv_bfloat16;

// y = x * rsqrt(mean(x^2) + eps) * w; rstd saved for the backward pass. One warp per row.
void rmsnorm_forward(bf16* y, float* rstd, const bf16* x, const bf16* w, int N, int C, float eps,
                     cudaStream_t s);
// dx += input gradient (fp32 residual stream), dw += weight gradient (fp32, atomics).
void rmsnorm_backward(float* dx, float* dw, const bf16* dy, const bf16* x, const float* rstd,
                      const bf16* w, int N, int C, cudaStream_t s);

// Rotary embeddings in place on x[B*T, heads, hd] ("rotate half" layout); inverse for backward.
void rope(bf16* x, int B, int T, int heads, int hd, float theta, bool inverse, cudaStream_t s);

void swiglu_forward(bf16* h, const bf16* g, const bf16* u, size_t n, cudaStream_t s);
void swiglu_backward(bf16* dg, bf16* du, const bf16* dh, const bf16* g, const bf16* u, size_t n,
                     cudaStream_t s);

// Flash-style causal grouped-query attention: online softmax, no T x T matrix is stored.
// q[B,T,H,hd], k/v[B,T,KV,hd], y[B,T,H,hd]; lse[B,H,T] (log-sum-exp) kept for backward.
void attention_forward(bf16* y, float* lse, const bf16* q, const bf16* k, const bf16* v, int B,
                       int T, int H, int KV, int hd, cudaStream_t s);
// Recomputes probabilities from lse. dq is overwritten; dk and dv (fp32) must be zeroed.
void attention_backward(float* dq, float* dk, float* dv, const bf16* dy, const bf16* y,
                        const float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                        int H, int KV, int hd, cudaStream_t s);

// Fused softmax cross-entropy: losses[n] and dlogits = (softmax - onehot) * scale, in bf16.
// dlogits may alias logits (the training step overwrites the logits with their gradient).
void cross_entropy(float* losses, bf16* dlogits, const bf16* logits, const int32_t* targets, int N,
                   int V, float scale, cudaStream_t s);

// AdamW on fp32 master weights; refreshes the bf16 compute copy in the same pass.
void adamw(float* w, bf16* w16, const float* g, float* m, float* v, size_t n, float lr, float beta1,
           float beta2, float eps, float weight_decay, float grad_scale, int64_t t, cudaStream_t s);

void to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s);
// x *= s (bf16)
void scale(bf16* x, size_t n, float s, cudaStream_t stream);
// out = a + b (bf16, fp32 arithmetic); out may alias a.
void add(bf16* out, const bf16* a, const bf16* b, size_t n, cudaStream_t s);
// x[n, :] = emb[tokens[n], :]
void embedding_forward(bf16* x, const bf16* emb, const int32_t* tokens, int N, int C,
                       cudaStream_t s);
// demb[tokens[n], :] += dx[n, :] (fp32 atomics)
void embedding_backward(float* demb, const float* dx, const int32_t* tokens, int N, int C,
                        cudaStream_t s);
// *out += sum of squares of g (fp32 atomics; *out must be zeroed by the caller)
void sum_squares(float* out, const float* g, size_t n, cudaStream_t s);
void to_f32(float* out, const bf16* in, size_t n, cudaStream_t s);

}  // namespace covenant::engine::cuda
