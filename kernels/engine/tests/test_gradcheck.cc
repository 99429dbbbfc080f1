// Backward pass against central finite differences on llama3-tiny: for every parameter tensor,
// the directional derivative along its own gradient, and along one random direction over all
// parameters, must match the analytic gradient.
#include <cmath>
#include <cstdio>
#include <vector>

#include "check.h"
#include "model.h"
#include "rng.h"

using namespace covenant::engine;

int main() {
  ModelConfig c;
  CHECK(preset("llama3-tiny", &c));
  Model model(c);
  model.init(1234);
  const int B = 2, T = 32;
  Rng rng(99);
  std::vector<int32_t> in(B * T), tgt(B * T);
  for (int i = 0; i < B * T; i++) {
    in[i] = int32_t(rng.next() % c.vocab_size);
    tgt[i] = int32_t(rng.next() % c.vocab_size);
  }
  // Larger weights than the init's so every layer contributes clearly measurable gradients.
  for (size_t i = 0; i < model.num_params(); i++) {
    if (model.params()[0].offset <= i) model.weights()[i] *= 3.0f;
  }
  for (const ParamInfo& p : model.params()) {
    if (p.shape.size() == 1) {
      for (size_t i = 0; i < p.numel; i++)
        model.weights()[p.offset + i] = 1.0f + 0.3f * float(rng.normal());
    }
  }
  model.zero_grad();
  const float loss0 = model.forward(in.data(), tgt.data(), B, T);
  model.backward(1.0f);
  std::vector<float> grad(model.grads(), model.grads() + model.num_params());
  std::printf("loss %.6f\n", loss0);
  CHECK(std::isfinite(loss0));

  auto loss_at = [&](const std::vector<float>& dir, size_t off, size_t n, double h) {
    std::vector<float> saved(model.weights() + off, model.weights() + off + n);
    for (size_t i = 0; i < n; i++) model.weights()[off + i] = saved[i] + float(h * dir[i]);
    const double lp = model.forward(in.data(), tgt.data(), B, T);
    for (size_t i = 0; i < n; i++) model.weights()[off + i] = saved[i] - float(h * dir[i]);
    const double lm = model.forward(in.data(), tgt.data(), B, T);
    for (size_t i = 0; i < n; i++) model.weights()[off + i] = saved[i];
    return (lp - lm) / (2 * h);
  };

  int failures = 0;
  double worst = 0.0;
  for (const ParamInfo& p : model.params()) {
    double norm = 0.0;
    for (size_t i = 0; i < p.numel; i++) norm += double(grad[p.offset + i]) * grad[p.offset + i];
    norm = std::sqrt(norm);
    CHECK(norm > 0.0);
    std::vector<float> dir(p.numel);
    for (size_t i = 0; i < p.numel; i++) dir[i] = float(grad[p.offset + i] / norm);
    const double h = 2e-3 / norm > 1e-1 ? 1e-1 : 2e-3 / norm;
    const double fd = loss_at(dir, p.offset, p.numel, h);
    const double rel = std::fabs(fd - norm) / norm;
    worst = rel > worst ? rel : worst;
    const bool ok = rel < 2e-2;
    failures += !ok;
    if (!ok || p.name.find("layers.0.") != std::string::npos || p.shape[0] == c.vocab_size) {
      std::printf("%-48s |g| %.4e  fd %.4e  rel %.2e %s\n", p.name.c_str(), norm, fd, rel,
                  ok ? "" : "FAIL");
    }
  }
  // One random direction through every parameter at once.
  std::vector<float> dir(model.num_params());
  double dot = 0.0, dn = 0.0;
  for (size_t i = 0; i < dir.size(); i++) {
    dir[i] = float(rng.normal());
    dn += double(dir[i]) * dir[i];
  }
  for (size_t i = 0; i < dir.size(); i++) {
    dir[i] = float(dir[i] / std::sqrt(dn));
    dot += double(dir[i]) * grad[i];
  }
  const double fd = loss_at(dir, 0, dir.size(), 1e-2);
  const double rel = std::fabs(fd - dot) / std::fabs(dot);
  std::printf("random direction: analytic %.5e  fd %.5e  rel %.2e\n", dot, fd, rel);
  std::printf("worst per-tensor relative error %.2e over %zu tensors\n", worst,
              model.params().size());
  CHECK(rel < 5e-2);
  CHECK(failures == 0);
  std::printf("ok\n");
  return 0;
}
