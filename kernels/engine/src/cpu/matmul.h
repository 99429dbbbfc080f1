// y[N,O] = x[N,I] W[O,I]^T and its backward, fp32, OpenMP over rows.
// Every output element is summed by one thread in a fixed order, so results do not depend on
// the thread count or the SIMD width.
#pragma once
#include <cstring>
#include <vector>

namespace covenant::engine::cpu {

inline void matmul_forward(float* y, const float* x, const float* w, int N, int I, int O) {
  // W^T [I, O] lets every row of y be built from contiguous, vectorisable updates.
  static thread_local std::vector<float> wt;
  wt.resize(size_t(I) * O);
  float* t = wt.data();
#pragma omp parallel for schedule(static)
  for (int o = 0; o < O; o++) {
    for (int i = 0; i < I; i++) t[size_t(i) * O + o] = w[size_t(o) * I + i];
  }
  constexpr int R = 4;  // rows per tile share each load of W^T
  const int tiles = (N + R - 1) / R;
#pragma omp parallel for schedule(static)
  for (int tile = 0; tile < tiles; tile++) {
    const int n0 = tile * R;
    const int rows = N - n0 < R ? N - n0 : R;
    for (int r = 0; r < rows; r++) std::memset(y + size_t(n0 + r) * O, 0, sizeof(float) * O);
    if (rows == R) {
      float* y0 = y + size_t(n0) * O;
      float* y1 = y0 + O;
      float* y2 = y1 + O;
      float* y3 = y2 + O;
      const float* x0 = x + size_t(n0) * I;
      for (int i = 0; i < I; i++) {
        const float a0 = x0[i], a1 = x0[I + i], a2 = x0[2 * I + i], a3 = x0[3 * I + i];
        const float* tr = t + size_t(i) * O;
        for (int o = 0; o < O; o++) {
          const float wv = tr[o];
          y0[o] += a0 * wv;
          y1[o] += a1 * wv;
          y2[o] += a2 * wv;
          y3[o] += a3 * wv;
        }
      }
    } else {
      for (int r = 0; r < rows; r++) {
        float* yr = y + size_t(n0 + r) * O;
        const float* xr = x + size_t(n0 + r) * I;
        for (int i = 0; i < I; i++) {
          const float a = xr[i];
          const float* tr = t + size_t(i) * O;
          for (int o = 0; o < O; o++) yr[o] += a * tr[o];
        }
      }
    }
  }
}

// dx[N,I] (overwritten) = dy[N,O] W[O,I]; dw[O,I] += dy^T x.
inline void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                            int N, int I, int O) {
  if (dx != nullptr) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
      float* dxr = dx + size_t(n) * I;
      std::memset(dxr, 0, sizeof(float) * I);
      const float* dyr = dy + size_t(n) * O;
      for (int o = 0; o < O; o++) {
        const float a = dyr[o];
        const float* wr = w + size_t(o) * I;
        for (int i = 0; i < I; i++) dxr[i] += a * wr[i];
      }
    }
  }
  constexpr int R = 4;  // outputs per tile
  const int tiles = (O + R - 1) / R;
#pragma omp parallel for schedule(static)
  for (int tile = 0; tile < tiles; tile++) {
    const int o0 = tile * R;
    const int outs = O - o0 < R ? O - o0 : R;
    for (int n = 0; n < N; n++) {
      const float* xr = x + size_t(n) * I;
      const float* dyr = dy + size_t(n) * O + o0;
      for (int r = 0; r < outs; r++) {
        const float a = dyr[r];
        float* dwr = dw + size_t(o0 + r) * I;
        for (int i = 0; i < I; i++) dwr[i] += a * xr[i];
      }
    }
  }
}

}  // namespace covenant::engine::cpu
