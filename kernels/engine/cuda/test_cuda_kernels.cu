// Every GPU kernel against the CPU reference on the same (bf16-rounded) inputs. Needs a GPU:
// without one it says so and exits 77, which CTest reports as skipped.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cpu/attention.h"
#include "cpu/cross_entropy.h"
#include "cpu/matmul.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"
#include "gemm.cuh"
#include "kernels.cuh"
#include "rng.h"

using namespace covenant::engine;
using cuda::bf16;

namespace {

int failures = 0;

std::vector<float> randn(size_t n, uint64_t seed, float scale) {
  Rng r(seed);
  std::vector<float> v(n);
  for (float& x : v) x = __bfloat162float(__float2bfloat16(float(r.normal()) * scale));
  return v;
}

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    cudaMalloc(&p, sizeof(T) * n);
    cudaMemset(p, 0, sizeof(T) * n);
  }
  ~Dev() { cudaFree(p); }
};

Dev<bf16>* up16(const std::vector<float>& v) {
  auto* d = new Dev<bf16>(v.size());
  std::vector<bf16> h(v.size());
  for (size_t i = 0; i < v.size(); i++) h[i] = __float2bfloat16(v[i]);
  cudaMemcpy(d->p, h.data(), sizeof(bf16) * h.size(), cudaMemcpyHostToDevice);
  return d;
}
Dev<float>* up32(const std::vector<float>& v) {
  auto* d = new Dev<float>(v.size());
  cudaMemcpy(d->p, v.data(), sizeof(float) * v.size(), cudaMemcpyHostToDevice);
  return d;
}
std::vector<float> down(const Dev<bf16>& d) {
  std::vector<bf16> h(d.n);
  cudaMemcpy(h.data(), d.p, sizeof(bf16) * d.n, cudaMemcpyDeviceToHost);
  std::vector<float> v(d.n);
  for (size_t i = 0; i < d.n; i++) v[i] = __bfloat162float(h[i]);
  return v;
}
std::vector<float> down(const Dev<float>& d) {
  std::vector<float> v(d.n);
  cudaMemcpy(v.data(), d.p, sizeof(float) * d.n, cudaMemcpyDeviceToHost);
  return v;
}

void expect_close(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                  double tol) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < want.size(); i++) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  const double rel = std::sqrt(num / (den > 0 ? den : 1.0));
  const bool ok = rel <= tol && std::isfinite(rel);
  std::printf("%-28s relative L2 error %.2e (tolerance %.0e) %s\n", what, rel, tol,
              ok ? "ok" : "FAIL");
  failures += !ok;
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("needs a GPU: no CUDA device, skipped\n");
    return 77;
  }
  const int B = 2, T = 64, H = 8, KV = 2, hd = 64, C = H * hd, F = 3 * C, V = 1000;
  const int N = B * T;
  cudaStream_t s = 0;

  {  // RMSNorm
    auto x = randn(size_t(N) * C, 1, 1.0f), w = randn(C, 2, 1.0f),
         dy = randn(size_t(N) * C, 3, 1.0f);
    std::vector<float> y(x.size()), rstd(N), dx(x.size(), 0.0f), dw(C, 0.0f);
    cpu::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
    cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), rstd.data(), w.data(), N, C);
    auto *dx16 = up16(x), *dw16 = up16(w), *ddy = up16(dy);
    Dev<bf16> dy16(x.size());
    Dev<float> drstd(N), ddx(x.size()), ddw(C);
    cuda::rmsnorm_forward(dy16.p, drstd.p, dx16->p, dw16->p, N, C, 1e-5f, s);
    cuda::rmsnorm_backward(ddx.p, ddw.p, ddy->p, dx16->p, drstd.p, dw16->p, N, C, s);
    expect_close("rmsnorm forward", down(dy16), y, 1e-2);
    expect_close("rmsnorm backward dx", down(ddx), dx, 1e-2);
    expect_close("rmsnorm backward dw", down(ddw), dw, 1e-2);
    delete dx16;
    delete dw16;
    delete ddy;
  }
  {  // SwiGLU
    auto g = randn(size_t(N) * F, 4, 2.0f), u = randn(size_t(N) * F, 5, 1.0f),
         dh = randn(size_t(N) * F, 6, 1.0f);
    std::vector<float> h(g.size()), dg(g.size()), du(g.size());
    cpu::swiglu_forward(h.data(), g.data(), u.data(), g.size());
    cpu::swiglu_backward(dg.data(), du.data(), dh.data(), g.data(), u.data(), g.size());
    auto *g16 = up16(g), *u16 = up16(u), *dh16 = up16(dh);
    Dev<bf16> h16(g.size()), dg16(g.size()), du16(g.size());
    cuda::swiglu_forward(h16.p, g16->p, u16->p, g.size(), s);
    cuda::swiglu_backward(dg16.p, du16.p, dh16->p, g16->p, u16->p, g.size(), s);
    expect_close("swiglu forward", down(h16), h, 1e-2);
    expect_close("swiglu backward dg", down(dg16), dg, 1e-2);
    expect_close("swiglu backward du", down(du16), du, 1e-2);
    delete g16;
    delete u16;
    delete dh16;
  }
  {  // RoPE, attention
    auto q = randn(size_t(N) * C, 7, 1.0f), k = randn(size_t(N) * KV * hd, 8, 1.0f);
    auto v = randn(size_t(N) * KV * hd, 9, 1.0f), dy = randn(size_t(N) * C, 10, 1.0f);
    std::vector<float> cs, sn;
    cpu::rope_tables(&cs, &sn, T, hd, 10000.0f);
    std::vector<float> qr = q, kr = k;
    cpu::rope_apply(qr.data(), cs.data(), sn.data(), B, T, H, hd, false);
    cpu::rope_apply(kr.data(), cs.data(), sn.data(), B, T, KV, hd, false);
    auto *q16 = up16(q), *k16 = up16(k), *v16 = up16(v), *dy16 = up16(dy);
    cuda::rope(q16->p, B, T, H, hd, 10000.0f, false, s);
    cuda::rope(k16->p, B, T, KV, hd, 10000.0f, false, s);
    expect_close("rope forward", down(*q16), qr, 1e-2);
    // Attention on the GPU's rotated values, reference on the same values.
    qr = down(*q16);
    kr = down(*k16);
    std::vector<float> y(q.size()), att(size_t(B) * H * T * T), dq(q.size()), dk(k.size()),
        dv(v.size());
    cpu::attention_forward(y.data(), att.data(), qr.data(), kr.data(), v.data(), B, T, H, KV, hd);
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), dy.data(), att.data(), qr.data(),
                            kr.data(), v.data(), B, T, H, KV, hd);
    Dev<bf16> y16(q.size());
    Dev<float> lse(size_t(B) * H * T), ddq(q.size()), ddk(k.size()), ddv(v.size());
    cuda::attention_forward(y16.p, lse.p, q16->p, k16->p, v16->p, B, T, H, KV, hd, s);
    cuda::attention_backward(ddq.p, ddk.p, ddv.p, dy16->p, y16.p, lse.p, q16->p, k16->p, v16->p, B,
                             T, H, KV, hd, s);
    expect_close("attention forward", down(y16), y, 1e-2);
    expect_close("attention backward dq", down(ddq), dq, 2e-2);
    expect_close("attention backward dk", down(ddk), dk, 2e-2);
    expect_close("attention backward dv", down(ddv), dv, 2e-2);
    delete q16;
    delete k16;
    delete v16;
    delete dy16;
  }
  {  // GEMMs
    const int I = C, O = F;
    auto x = randn(size_t(N) * I, 11, 1.0f), w = randn(size_t(O) * I, 12, 0.05f),
         dy = randn(size_t(N) * O, 13, 1.0f);
    std::vector<float> y(size_t(N) * O), dx(x.size()), dw(w.size(), 0.0f);
    cpu::matmul_forward(y.data(), x.data(), w.data(), N, I, O);
    cpu::matmul_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), N, I, O);
    cuda::Gemm gemm;
    if (!gemm.init()) {
      std::printf("cuBLASLt init failed\n");
      return 1;
    }
    auto *x16 = up16(x), *w16 = up16(w), *dy16 = up16(dy);
    Dev<bf16> y16(y.size()), dx16(dx.size());
    Dev<float> ddw(dw.size());
    const bool ok = gemm.forward(y16.p, x16->p, w16->p, N, I, O, s) == CUBLAS_STATUS_SUCCESS &&
                    gemm.input_grad(dx16.p, dy16->p, w16->p, N, I, O, s) == CUBLAS_STATUS_SUCCESS &&
                    gemm.weight_grad(ddw.p, dy16->p, x16->p, N, I, O, s) == CUBLAS_STATUS_SUCCESS;
    if (!ok) {
      std::printf("cuBLASLt matmul failed\n");
      failures++;
    }
    expect_close("gemm forward", down(y16), y, 1e-2);
    expect_close("gemm input grad", down(dx16), dx, 1e-2);
    expect_close("gemm weight grad", down(ddw), dw, 1e-2);
    delete x16;
    delete w16;
    delete dy16;
  }
  {  // Cross-entropy
    auto logits = randn(size_t(N) * V, 14, 2.0f);
    std::vector<int32_t> tgt(N);
    for (int n = 0; n < N; n++) tgt[n] = (n * 37) % V;
    std::vector<float> probs = logits, losses(N);
    cpu::cross_entropy_forward(losses.data(), probs.data(), tgt.data(), N, V);
    cpu::cross_entropy_backward(probs.data(), tgt.data(), N, V, 1.0f / N);
    auto* l16 = up16(logits);
    Dev<int32_t> dt(N);
    cudaMemcpy(dt.p, tgt.data(), sizeof(int32_t) * N, cudaMemcpyHostToDevice);
    Dev<float> dl(N);
    Dev<bf16> dlog(logits.size());
    cuda::cross_entropy(dl.p, dlog.p, l16->p, dt.p, N, V, 1.0f / N, s);
    expect_close("cross-entropy losses", down(dl), losses, 1e-3);
    expect_close("cross-entropy dlogits", down(dlog), probs, 1e-2);
    delete l16;
  }
  {  // AdamW (fp32 master weights)
    const size_t n = 10000;
    auto w = randn(n, 15, 0.1f), g = randn(n, 16, 1.0f), m = randn(n, 17, 0.01f),
         v = randn(n, 18, 0.01f);
    for (float& x : v) x = x * x;
    auto *dw = up32(w), *dg = up32(g), *dm = up32(m), *dv = up32(v);
    Dev<bf16> w16(n);
    cuda::adamw(dw->p, w16.p, dg->p, dm->p, dv->p, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 3, s);
    const float bc1 = 1.0f - std::pow(0.9f, 3.0f), bc2 = 1.0f - std::pow(0.95f, 3.0f);
    for (size_t i = 0; i < n; i++) {
      const float gi = g[i] * 0.5f;
      m[i] = 0.9f * m[i] + 0.1f * gi;
      v[i] = 0.95f * v[i] + 0.05f * gi * gi;
      w[i] -= 1e-3f * ((m[i] / bc1) / (std::sqrt(v[i] / bc2) + 1e-8f) + 0.1f * w[i]);
    }
    expect_close("adamw weights", down(*dw), w, 1e-6);
    expect_close("adamw bf16 copy", down(w16), w, 1e-2);
    delete dw;
    delete dg;
    delete dm;
    delete dv;
  }
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    std::printf("CUDA error: %s\n", cudaGetErrorString(err));
    return 1;
  }
  std::printf(failures == 0 ? "ok\n" : "%d checks failed\n", failures);
  return failures == 0 ? 0 : 1;
}
