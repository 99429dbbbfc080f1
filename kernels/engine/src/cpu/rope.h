// Rotary position embeddings in the "rotate half" layout: dimension i pairs with i + head_dim/2.
#pragma once
#include <cmath>
#include <vector>

namespace covenant::engine::cpu {

// cos/sin tables [T, head_dim/2] computed in double precision.
inline void rope_tables(std::vector<float>* cos_t, std::vector<float>* sin_t, int T, int hd,
                        float theta) {
  const int half = hd / 2;
  cos_t->resize(size_t(T) * half);
  sin_t->resize(size_t(T) * half);
  for (int t = 0; t < T; t++) {
    for (int i = 0; i < half; i++) {
      const double freq = std::pow(double(theta), -2.0 * i / hd);
      (*cos_t)[size_t(t) * half + i] = float(std::cos(t * freq));
      (*sin_t)[size_t(t) * half + i] = float(std::sin(t * freq));
    }
  }
}

// In place on x[B*T, heads*hd]. `inverse` applies the transposed rotation (the backward pass).
inline void rope_apply(float* x, const float* cos_t, const float* sin_t, int B, int T, int heads,
                       int hd, bool inverse) {
  const int half = hd / 2;
  const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
  for (int bt = 0; bt < B * T; bt++) {
    const int t = bt % T;
    const float* c = cos_t + size_t(t) * half;
    const float* s = sin_t + size_t(t) * half;
    for (int h = 0; h < heads; h++) {
      float* v = x + (size_t(bt) * heads + h) * hd;
      for (int i = 0; i < half; i++) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - sign * b * s[i];
        v[i + half] = b * c[i] + sign * a * s[i];
      }
    }
  }
}

}  // namespace covenant::engine::cpu
