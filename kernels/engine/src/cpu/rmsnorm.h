// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w.
#pragma once
#include <cmath>

namespace covenant::engine::cpu {

inline void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int N, int C,
                            float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* xr = x + size_t(n) * C;
    double ss = 0.0;
    for (int i = 0; i < C; i++) ss += double(xr[i]) * xr[i];
    const float s = float(1.0 / std::sqrt(ss / C + eps));
    rstd[n] = s;
    float* yr = y + size_t(n) * C;
    for (int i = 0; i < C; i++) yr[i] = xr[i] * s * w[i];
  }
}

// dx[N,C] += input gradient; dw[C] += weight gradient.
inline void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x,
                             const float* rstd, const float* w, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* xr = x + size_t(n) * C;
    const float* dyr = dy + size_t(n) * C;
    float* dxr = dx + size_t(n) * C;
    const float s = rstd[n];
    double dot = 0.0;
    for (int i = 0; i < C; i++) dot += double(dyr[i]) * w[i] * xr[i];
    const float k = float(dot) * s * s * s / C;
    for (int i = 0; i < C; i++) dxr[i] += dyr[i] * w[i] * s - xr[i] * k;
  }
  // Weight gradient summed over rows in order, parallel over channels.
#pragma omp parallel for schedule(static)
  for (int i = 0; i < C; i++) {
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dy[size_t(n) * C + i] * x[size_t(n) * C + i] * rstd[n];
    dw[i] += acc;
  }
}

}  // namespace covenant::engine::cpu
