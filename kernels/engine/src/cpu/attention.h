// Grouped-query causal attention. q[B,T,H,hd], k/v[B,T,KV,hd] (already rotated), y[B,T,H,hd].
// The forward pass keeps the probabilities att[B,H,T,T] for the backward pass.
#pragma once
#include <cmath>
#include <cstring>
#include <vector>

namespace covenant::engine::cpu {

inline void attention_forward(float* y, float* att, const float* q, const float* k, const float* v,
                              int B, int T, int H, int KV, int hd) {
  const int group = H / KV;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      for (int t = 0; t < T; t++) {
        const int kvh = h / group;
        const float* qv = q + ((size_t(b) * T + t) * H + h) * hd;
        float* p = att + ((size_t(b) * H + h) * T + t) * T;
        float maxv = -INFINITY;
        for (int t2 = 0; t2 <= t; t2++) {
          const float* kv = k + ((size_t(b) * T + t2) * KV + kvh) * hd;
          float s = 0.0f;
          for (int i = 0; i < hd; i++) s += qv[i] * kv[i];
          s *= scale;
          p[t2] = s;
          if (s > maxv) maxv = s;
        }
        float sum = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {
          p[t2] = std::exp(p[t2] - maxv);
          sum += p[t2];
        }
        const float inv = 1.0f / sum;
        for (int t2 = 0; t2 <= t; t2++) p[t2] *= inv;
        for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0.0f;
        float* yv = y + ((size_t(b) * T + t) * H + h) * hd;
        std::memset(yv, 0, sizeof(float) * hd);
        for (int t2 = 0; t2 <= t; t2++) {
          const float* vv = v + ((size_t(b) * T + t2) * KV + kvh) * hd;
          const float a = p[t2];
          for (int i = 0; i < hd; i++) yv[i] += a * vv[i];
        }
      }
    }
  }
}

// Overwrites dq, dk, dv. Parallel over (batch, kv head): every gradient element is owned by
// one thread, which keeps the result independent of the thread count.
inline void attention_backward(float* dq, float* dk, float* dv, const float* dy, const float* att,
                               const float* q, const float* k, const float* v, int B, int T, int H,
                               int KV, int hd) {
  const int group = H / KV;
  const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel
  {
    std::vector<float> dp(T);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
      for (int kvh = 0; kvh < KV; kvh++) {
        for (int t = 0; t < T; t++) {
          std::memset(dk + ((size_t(b) * T + t) * KV + kvh) * hd, 0, sizeof(float) * hd);
          std::memset(dv + ((size_t(b) * T + t) * KV + kvh) * hd, 0, sizeof(float) * hd);
        }
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
          for (int t = 0; t < T; t++) {
            const float* p = att + ((size_t(b) * H + h) * T + t) * T;
            const float* dyv = dy + ((size_t(b) * T + t) * H + h) * hd;
            const float* qv = q + ((size_t(b) * T + t) * H + h) * hd;
            float* dqv = dq + ((size_t(b) * T + t) * H + h) * hd;
            std::memset(dqv, 0, sizeof(float) * hd);
            float pdp = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
              const float* vv = v + ((size_t(b) * T + t2) * KV + kvh) * hd;
              float* dvv = dv + ((size_t(b) * T + t2) * KV + kvh) * hd;
              float s = 0.0f;
              for (int i = 0; i < hd; i++) {
                s += dyv[i] * vv[i];
                dvv[i] += p[t2] * dyv[i];
              }
              dp[t2] = s;
              pdp += p[t2] * s;
            }
            for (int t2 = 0; t2 <= t; t2++) {
              const float ds = p[t2] * (dp[t2] - pdp) * scale;
              const float* kv = k + ((size_t(b) * T + t2) * KV + kvh) * hd;
              float* dkv = dk + ((size_t(b) * T + t2) * KV + kvh) * hd;
              for (int i = 0; i < hd; i++) {
                dqv[i] += ds * kv[i];
                dkv[i] += ds * qv[i];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace covenant::engine::cpu
