#include <algorithm>
#include <cmath>

#include "kernels.cuh"

namespace covenant::engine::cuda {

namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 b(float x) { return __float2bfloat16(x); }

unsigned blocks_for(size_t n, unsigned threads) { return unsigned((n + threads - 1) / threads); }

__global__ void rmsnorm_forward_k(bf16* y, float* rstd, const bf16* x, const bf16* w, int N, int C,
                                  float eps) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* xr = x + size_t(row) * C;
  float ss = 0.0f;
  for (int i = lane; i < C; i += 32) ss += f(xr[i]) * f(xr[i]);
  ss = warp_sum(ss);
  const float s = rsqrtf(ss / C + eps);
  if (lane == 0) rstd[row] = s;
  bf16* yr = y + size_t(row) * C;
  for (int i = lane; i < C; i += 32) yr[i] = b(f(xr[i]) * s * f(w[i]));
}

__global__ void rmsnorm_backward_k(float* dx, float* dw, const bf16* dy, const bf16* x,
                                   const float* rstd, const bf16* w, int N, int C) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16* xr = x + size_t(row) * C;
  const bf16* dyr = dy + size_t(row) * C;
  const float s = rstd[row];
  float dot = 0.0f;
  for (int i = lane; i < C; i += 32) dot += f(dyr[i]) * f(w[i]) * f(xr[i]);
  dot = warp_sum(dot);
  const float k = dot * s * s * s / C;
  float* dxr = dx + size_t(row) * C;
  for (int i = lane; i < C; i += 32) {
    dxr[i] += f(dyr[i]) * f(w[i]) * s - f(xr[i]) * k;
    atomicAdd(dw + i, f(dyr[i]) * f(xr[i]) * s);
  }
}

__global__ void rope_k(bf16* x, int T, int heads, int hd, float theta, float sign, size_t total) {
  const size_t idx = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int half = hd / 2;
  const int i = int(idx % half);
  const size_t vec = idx / half;  // (bt, head)
  const int t = int((vec / heads) % T);
  const float freq = powf(theta, -2.0f * i / hd);
  float sn, cs;
  sincosf(t * freq, &sn, &cs);
  bf16* v = x + vec * hd;
  const float a = f(v[i]), c = f(v[i + half]);
  v[i] = b(a * cs - sign * c * sn);
  v[i + half] = b(c * cs + sign * a * sn);
}

__global__ void swiglu_forward_k(bf16* h, const bf16* g, const bf16* u, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gv = f(g[i]);
  h[i] = b(gv / (1.0f + __expf(-gv)) * f(u[i]));
}

__global__ void swiglu_backward_k(bf16* dg, bf16* du, const bf16* dh, const bf16* g, const bf16* u,
                                  size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gv = f(g[i]), s = 1.0f / (1.0f + __expf(-gv));
  du[i] = b(f(dh[i]) * gv * s);
  dg[i] = b(f(dh[i]) * f(u[i]) * s * (1.0f + gv * (1.0f - s)));
}

// One warp per (b, h, query t); each lane owns hd/32 dimensions (hd a multiple of 32, <= 256).
constexpr int kMaxPerLane = 8;

__global__ void attention_forward_k(bf16* y, float* lse, const bf16* q, const bf16* k,
                                    const bf16* v, int B, int T, int H, int KV, int hd) {
  const size_t warp = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= size_t(B) * H * T) return;
  const int t = int(warp % T), h = int((warp / T) % H), bb = int(warp / (size_t(T) * H));
  const int kvh = h / (H / KV), per = hd / 32;
  const float scale = rsqrtf(float(hd));
  float qv[kMaxPerLane], acc[kMaxPerLane];
  const bf16* qp = q + ((size_t(bb) * T + t) * H + h) * hd;
  for (int j = 0; j < per; j++) {
    qv[j] = f(qp[lane + 32 * j]) * scale;
    acc[j] = 0.0f;
  }
  float mx = -INFINITY, l = 0.0f;
  for (int t2 = 0; t2 <= t; t2++) {
    const bf16* kp = k + ((size_t(bb) * T + t2) * KV + kvh) * hd;
    const bf16* vp = v + ((size_t(bb) * T + t2) * KV + kvh) * hd;
    float sc = 0.0f;
    for (int j = 0; j < per; j++) sc += qv[j] * f(kp[lane + 32 * j]);
    sc = warp_sum(sc);
    const float nm = fmaxf(mx, sc);
    const float corr = __expf(mx - nm), p = __expf(sc - nm);
    l = l * corr + p;
    for (int j = 0; j < per; j++) acc[j] = acc[j] * corr + p * f(vp[lane + 32 * j]);
    mx = nm;
  }
  bf16* yp = y + ((size_t(bb) * T + t) * H + h) * hd;
  for (int j = 0; j < per; j++) yp[lane + 32 * j] = b(acc[j] / l);
  if (lane == 0) lse[(size_t(bb) * H + h) * T + t] = mx + logf(l);
}

__global__ void attention_backward_k(float* dq, float* dk, float* dv, const bf16* dy, const bf16* y,
                                     const float* lse, const bf16* q, const bf16* k, const bf16* v,
                                     int B, int T, int H, int KV, int hd) {
  const size_t warp = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= size_t(B) * H * T) return;
  const int t = int(warp % T), h = int((warp / T) % H), bb = int(warp / (size_t(T) * H));
  const int kvh = h / (H / KV), per = hd / 32;
  const float scale = rsqrtf(float(hd));
  const size_t row = (size_t(bb) * T + t) * H + h;
  float qv[kMaxPerLane], dyv[kMaxPerLane], dqv[kMaxPerLane];
  float D = 0.0f;
  for (int j = 0; j < per; j++) {
    const int d = lane + 32 * j;
    qv[j] = f(q[row * hd + d]);
    dyv[j] = f(dy[row * hd + d]);
    dqv[j] = 0.0f;
    D += dyv[j] * f(y[row * hd + d]);
  }
  D = warp_sum(D);
  const float L = lse[(size_t(bb) * H + h) * T + t];
  for (int t2 = 0; t2 <= t; t2++) {
    const size_t kv_row = ((size_t(bb) * T + t2) * KV + kvh) * hd;
    float sc = 0.0f, dp = 0.0f;
    for (int j = 0; j < per; j++) {
      const int d = lane + 32 * j;
      sc += qv[j] * f(k[kv_row + d]);
      dp += dyv[j] * f(v[kv_row + d]);
    }
    sc = warp_sum(sc) * scale;
    dp = warp_sum(dp);
    const float p = __expf(sc - L);
    const float ds = p * (dp - D) * scale;
    for (int j = 0; j < per; j++) {
      const int d = lane + 32 * j;
      dqv[j] += ds * f(k[kv_row + d]);
      atomicAdd(dk + kv_row + d, ds * qv[j]);
      atomicAdd(dv + kv_row + d, p * dyv[j]);
    }
  }
  for (int j = 0; j < per; j++) dq[row * hd + lane + 32 * j] = dqv[j];
}

__global__ void cross_entropy_k(float* losses, bf16* dlogits, const bf16* logits,
                                const int32_t* targets, int N, int V, float scale) {
  const int row = blockIdx.x;
  if (row >= N) return;
  const bf16* l = logits + size_t(row) * V;
  const int tgt = targets[row];
  const float target_logit = f(l[tgt]);  // read before any thread overwrites (in-place use)
  __shared__ float red[32];
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, f(l[i]));
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < int(blockDim.x / 32); w++) mx = fmaxf(mx, red[w]);
  __syncthreads();
  float sum = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += __expf(f(l[i]) - mx);
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = sum;
  __syncthreads();
  sum = 0.0f;
  for (int w = 0; w < int(blockDim.x / 32); w++) sum += red[w];
  if (threadIdx.x == 0) losses[row] = logf(sum) + mx - target_logit;
  bf16* d = dlogits + size_t(row) * V;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float p = __expf(f(l[i]) - mx) / sum;
    d[i] = b((p - (i == tgt ? 1.0f : 0.0f)) * scale);
  }
}

__global__ void adamw_k(float* w, bf16* w16, const float* g, float* m, float* v, size_t n, float lr,
                        float beta1, float beta2, float eps, float wd, float grad_scale, float bc1,
                        float bc2) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gi = g[i] * grad_scale;
  const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
  const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  const float wi = w[i] - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * w[i]);
  w[i] = wi;
  if (w16) w16[i] = b(wi);
}

__global__ void to_bf16_k(bf16* out, const float* in, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = b(in[i]);
}
__global__ void to_f32_k(float* out, const bf16* in, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = f(in[i]);
}

__global__ void scale_k(bf16* x, size_t n, float sc) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = b(f(x[i]) * sc);
}
__global__ void add_k(bf16* out, const bf16* a, const bf16* bb, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = b(f(a[i]) + f(bb[i]));
}
__global__ void embedding_forward_k(bf16* x, const bf16* emb, const int32_t* tokens, int N, int C) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(N) * C) return;
  const size_t n = i / C, c = i % C;
  x[i] = emb[size_t(tokens[n]) * C + c];
}
__global__ void embedding_backward_k(float* demb, const float* dx, const int32_t* tokens, int N,
                                     int C) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(N) * C) return;
  const size_t n = i / C, c = i % C;
  atomicAdd(demb + size_t(tokens[n]) * C + c, dx[i]);
}
__global__ void sum_squares_k(float* out, const float* g, size_t n) {
  float acc = 0.0f;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    acc += g[i] * g[i];
  }
  acc = warp_sum(acc);
  if (threadIdx.x % 32 == 0) atomicAdd(out, acc);
}

}  // namespace

void scale(bf16* x, size_t n, float sc, cudaStream_t stream) {
  scale_k<<<blocks_for(n, 256), 256, 0, stream>>>(x, n, sc);
}
void add(bf16* out, const bf16* a, const bf16* bb, size_t n, cudaStream_t s) {
  add_k<<<blocks_for(n, 256), 256, 0, s>>>(out, a, bb, n);
}
void embedding_forward(bf16* x, const bf16* emb, const int32_t* tokens, int N, int C,
                       cudaStream_t s) {
  embedding_forward_k<<<blocks_for(size_t(N) * C, 256), 256, 0, s>>>(x, emb, tokens, N, C);
}
void embedding_backward(float* demb, const float* dx, const int32_t* tokens, int N, int C,
                        cudaStream_t s) {
  embedding_backward_k<<<blocks_for(size_t(N) * C, 256), 256, 0, s>>>(demb, dx, tokens, N, C);
}
void sum_squares(float* out, const float* g, size_t n, cudaStream_t s) {
  const unsigned blocks = unsigned(std::min<size_t>(blocks_for(n, 256), 1024));
  sum_squares_k<<<blocks, 256, 0, s>>>(out, g, n);
}

void rmsnorm_forward(bf16* y, float* rstd, const bf16* x, const bf16* w, int N, int C, float eps,
                     cudaStream_t s) {
  rmsnorm_forward_k<<<blocks_for(size_t(N) * 32, 256), 256, 0, s>>>(y, rstd, x, w, N, C, eps);
}
void rmsnorm_backward(float* dx, float* dw, const bf16* dy, const bf16* x, const float* rstd,
                      const bf16* w, int N, int C, cudaStream_t s) {
  rmsnorm_backward_k<<<blocks_for(size_t(N) * 32, 256), 256, 0, s>>>(dx, dw, dy, x, rstd, w, N, C);
}
void rope(bf16* x, int B, int T, int heads, int hd, float theta, bool inverse, cudaStream_t s) {
  const size_t total = size_t(B) * T * heads * (hd / 2);
  rope_k<<<blocks_for(total, 256), 256, 0, s>>>(x, T, heads, hd, theta, inverse ? -1.0f : 1.0f,
                                                total);
}
void swiglu_forward(bf16* h, const bf16* g, const bf16* u, size_t n, cudaStream_t s) {
  swiglu_forward_k<<<blocks_for(n, 256), 256, 0, s>>>(h, g, u, n);
}
void swiglu_backward(bf16* dg, bf16* du, const bf16* dh, const bf16* g, const bf16* u, size_t n,
                     cudaStream_t s) {
  swiglu_backward_k<<<blocks_for(n, 256), 256, 0, s>>>(dg, du, dh, g, u, n);
}
void attention_forward(bf16* y, float* lse, const bf16* q, const bf16* k, const bf16* v, int B,
                       int T, int H, int KV, int hd, cudaStream_t s) {
  const size_t threads = size_t(B) * H * T * 32;
  attention_forward_k<<<blocks_for(threads, 128), 128, 0, s>>>(y, lse, q, k, v, B, T, H, KV, hd);
}
void attention_backward(float* dq, float* dk, float* dv, const bf16* dy, const bf16* y,
                        const float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                        int H, int KV, int hd, cudaStream_t s) {
  const size_t threads = size_t(B) * H * T * 32;
  attention_backward_k<<<blocks_for(threads, 128), 128, 0, s>>>(dq, dk, dv, dy, y, lse, q, k, v, B,
                                                                T, H, KV, hd);
}
void cross_entropy(float* losses, bf16* dlogits, const bf16* logits, const int32_t* targets, int N,
                   int V, float scale, cudaStream_t s) {
  cross_entropy_k<<<N, 256, 0, s>>>(losses, dlogits, logits, targets, N, V, scale);
}
void adamw(float* w, bf16* w16, const float* g, float* m, float* v, size_t n, float lr, float beta1,
           float beta2, float eps, float weight_decay, float grad_scale, int64_t t,
           cudaStream_t s) {
  const float bc1 = 1.0f - powf(beta1, float(t)), bc2 = 1.0f - powf(beta2, float(t));
  adamw_k<<<blocks_for(n, 256), 256, 0, s>>>(w, w16, g, m, v, n, lr, beta1, beta2, eps,
                                             weight_decay, grad_scale, bc1, bc2);
}
void to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s) {
  to_bf16_k<<<blocks_for(n, 256), 256, 0, s>>>(out, in, n);
}
void to_f32(float* out, const bf16* in, size_t n, cudaStream_t s) {
  to_f32_k<<<blocks_for(n, 256), 256, 0, s>>>(out, in, n);
}

}  // namespace covenant::engine::cuda
