// y[N,O] = x[N,I] W[O,I]^T and its backward, fp32, OpenMP over rows.
// Every output element is summed by one thread in a fixed order, so results do not depend on
// the thread count or the SIMD width.
#pragma once
#include <cstring>

namespace covenant::engine::cpu {

inline void matmul_forward(float* y, const float* x, const float* w, int N, int I, int O) {
  constexpr int R = 8;  // rows per tile: one 8-wide vector of accumulators per output
  const int tiles = (N + R - 1) / R;
#pragma omp parallel
  {
    float* xt = new float[size_t(I) * R];
#pragma omp for schedule(static)
    for (int tile = 0; tile < tiles; tile++) {
      const int n0 = tile * R;
      const int rows = N - n0 < R ? N - n0 : R;
      for (int i = 0; i < I; i++) {
        for (int r = 0; r < R; r++) xt[i * R + r] = r < rows ? x[size_t(n0 + r) * I + i] : 0.0f;
      }
      int o = 0;
      for (; o + 4 <= O; o += 4) {
        float acc[4][R] = {};
        const float* w0 = w + size_t(o) * I;
        const float* w1 = w0 + I;
        const float* w2 = w1 + I;
        const float* w3 = w2 + I;
        for (int i = 0; i < I; i++) {
          const float* xv = xt + i * R;
          for (int r = 0; r < R; r++) {
            acc[0][r] += xv[r] * w0[i];
            acc[1][r] += xv[r] * w1[i];
            acc[2][r] += xv[r] * w2[i];
            acc[3][r] += xv[r] * w3[i];
          }
        }
        for (int r = 0; r < rows; r++) {
          float* yr = y + size_t(n0 + r) * O + o;
          yr[0] = acc[0][r];
          yr[1] = acc[1][r];
          yr[2] = acc[2][r];
          yr[3] = acc[3][r];
        }
      }
      for (; o < O; o++) {
        float acc[R] = {};
        const float* w0 = w + size_t(o) * I;
        for (int i = 0; i < I; i++) {
          for (int r = 0; r < R; r++) acc[r] += xt[i * R + r] * w0[i];
        }
        for (int r = 0; r < rows; r++) y[size_t(n0 + r) * O + o] = acc[r];
      }
    }
    delete[] xt;
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
