// AdamW with decoupled weight decay, global-norm gradient clipping, warmup + cosine schedule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace covenant::engine {

struct OptimConfig {
  float lr = 3e-4f;           // peak learning rate
  float min_lr_ratio = 0.1f;  // final learning rate = lr * min_lr_ratio
  int64_t warmup_steps = 0;   // linear warmup from lr / warmup_steps
  int64_t total_steps = 0;    // cosine decay until here; 0 keeps lr constant after warmup
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // applied to matrices only
  float grad_clip = 1.0f;     // global L2 norm; <= 0 disables
  std::string validate() const;
};

// Learning rate used by optimizer step `step` (0-based).
float learning_rate(const OptimConfig& c, int64_t step);

// L2 norm of the whole gradient, summed per tensor in a fixed order.
double grad_norm(const float* g, size_t n);

class AdamW {
 public:
  explicit AdamW(size_t num_params) : m_(num_params, 0.0f), v_(num_params, 0.0f) {}
  // One update from model.grads(); returns the gradient norm before clipping.
  double step(Model& model, const OptimConfig& c, float lr);
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  void reset();

 private:
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

}  // namespace covenant::engine
