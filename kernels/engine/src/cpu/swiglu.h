// SwiGLU: h = silu(g) * u, with silu(g) = g * sigmoid(g).
#pragma once
#include <cmath>
#include <cstddef>

namespace covenant::engine::cpu {

inline void swiglu_forward(float* h, const float* g, const float* u, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + std::exp(-g[i]));
    h[i] = g[i] * s * u[i];
  }
}

// Overwrites dg and du.
inline void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                            size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + std::exp(-g[i]));
    const float silu = g[i] * s;
    du[i] = dh[i] * silu;
    dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace covenant::engine::cpu
