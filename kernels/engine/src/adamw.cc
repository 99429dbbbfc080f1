#include "adamw.h"

#include <cmath>
#include <cstring>

namespace covenant::engine {

std::string OptimConfig::validate() const {
  if (!(lr > 0.0f) || !std::isfinite(lr)) return "lr must be a finite number > 0";
  if (!(min_lr_ratio >= 0.0f && min_lr_ratio <= 1.0f)) return "min_lr_ratio must be in [0, 1]";
  if (warmup_steps < 0 || total_steps < 0) return "warmup_steps and total_steps must be >= 0";
  if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f)) {
    return "beta1 and beta2 must be in [0, 1)";
  }
  if (!(eps > 0.0f)) return "eps must be > 0";
  if (!(weight_decay >= 0.0f)) return "weight_decay must be >= 0";
  if (std::isnan(grad_clip)) return "grad_clip must be a number";
  return "";
}

float learning_rate(const OptimConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    return c.lr * float(step + 1) / float(c.warmup_steps);
  }
  if (c.total_steps <= c.warmup_steps) return c.lr;
  const double span = double(c.total_steps - c.warmup_steps);
  const double progress = std::min(1.0, double(step - c.warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  const double min_lr = double(c.lr) * c.min_lr_ratio;
  return float(min_lr + (double(c.lr) - min_lr) * cosine);
}

double grad_norm(const float* g, size_t n) {
  // Fixed-size blocks summed in parallel, then the block sums in order: deterministic.
  constexpr size_t kBlock = 1 << 16;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < blocks; b++) {
    double s = 0.0;
    const size_t end = std::min(n, (b + 1) * kBlock);
    for (size_t i = b * kBlock; i < end; i++) s += double(g[i]) * g[i];
    partial[b] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

double AdamW::step(Model& model, const OptimConfig& c, float lr) {
  float* g = model.grads();
  float* w = model.weights();
  const double norm = grad_norm(g, model.num_params());
  float clip = 1.0f;
  if (c.grad_clip > 0.0f && norm > c.grad_clip) clip = float(c.grad_clip / norm);
  t_++;
  const float bc1 = 1.0f - std::pow(c.beta1, float(t_));
  const float bc2 = 1.0f - std::pow(c.beta2, float(t_));
  for (const ParamInfo& p : model.params()) {
    const float wd = p.decay ? c.weight_decay : 0.0f;
    float* pw = w + p.offset;
    const float* pg = g + p.offset;
    float* pm = m_.data() + p.offset;
    float* pv = v_.data() + p.offset;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p.numel; i++) {
      const float gi = pg[i] * clip;
      pm[i] = c.beta1 * pm[i] + (1.0f - c.beta1) * gi;
      pv[i] = c.beta2 * pv[i] + (1.0f - c.beta2) * gi * gi;
      const float mhat = pm[i] / bc1;
      const float vhat = pv[i] / bc2;
      pw[i] -= lr * (mhat / (std::sqrt(vhat) + c.eps) + wd * pw[i]);
    }
  }
  return norm;
}

void AdamW::reset() {
  std::fill(m_.begin(), m_.end(), 0.0f);
  std::fill(v_.begin(), v_.end(), 0.0f);
  t_ = 0;
}

}  // namespace covenant::engine
