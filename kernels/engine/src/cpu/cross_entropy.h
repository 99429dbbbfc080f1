// Softmax cross-entropy over logits[N,V]. The forward pass turns logits into probabilities in
// place; the backward pass turns them into gradients d(loss * scale)/d(logits) in place.
#pragma once
#include <cmath>
#include <cstdint>

namespace covenant::engine::cpu {

// losses[n] = -log p(target); returns nothing, the caller sums in a fixed order.
inline void cross_entropy_forward(float* losses, float* logits, const int32_t* targets, int N,
                                  int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float* l = logits + size_t(n) * V;
    float maxv = l[0];
    for (int i = 1; i < V; i++) maxv = l[i] > maxv ? l[i] : maxv;
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
      l[i] = std::exp(l[i] - maxv);
      sum += l[i];
    }
    const float inv = float(1.0 / sum);
    for (int i = 0; i < V; i++) l[i] *= inv;
    losses[n] = float(-std::log(double(l[targets[n]] > 0 ? l[targets[n]] : 1e-30f)));
  }
}

inline void cross_entropy_backward(float* probs, const int32_t* targets, int N, int V,
                                   float scale) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float* p = probs + size_t(n) * V;
    for (int i = 0; i < V; i++) p[i] *= scale;
    p[targets[n]] -= scale;
  }
}

}  // namespace covenant::engine::cpu
