// The LLaMA-3-style decoder on the CPU backend (fp32): parameters as named tensors in one
// contiguous buffer, forward with cross-entropy, backward into a matching gradient buffer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace covenant::engine {

struct ParamInfo {
  std::string name;  // Hugging Face LLaMA names, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;
  size_t offset = 0;  // in floats, into the parameter buffer
  size_t numel = 0;
  bool decay = false;  // matrices take weight decay, norm gains do not
};

// The parameters of a configuration in buffer order, with their names, shapes and offsets:
// the one layout the model, its checkpoints and the Hugging Face export share.
std::vector<ParamInfo> parameter_layout(const ModelConfig& config);

class Model {
 public:
  // Throws std::invalid_argument when the configuration is not usable.
  explicit Model(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo* find(const std::string& name) const;
  size_t num_params() const { return weights_.size(); }
  float* weights() { return weights_.data(); }
  const float* weights() const { return weights_.data(); }
  float* grads() { return grads_.data(); }

  // Deterministic initialisation: N(0, 0.02), output projections scaled by 1/sqrt(2 layers),
  // norm gains 1. Each tensor has its own stream derived from (seed, tensor index).
  void init(uint64_t seed);

  // Mean cross-entropy of predicting targets[B,T] from inputs[B,T]. Keeps activations for
  // backward(). Tokens must lie in [0, vocab_size); T <= max_seq_len (checked, throws).
  float forward(const int32_t* inputs, const int32_t* targets, int B, int T);
  // Accumulates d(loss * loss_scale)/d(weights) into grads() for the last forward().
  void backward(float loss_scale);
  void zero_grad();

 private:
  void allocate(int B, int T);

  ModelConfig config_;
  std::vector<ParamInfo> params_;
  std::vector<float> weights_, grads_;

  struct LayerAct {
    std::vector<float> x, ln1, rstd1, q, k, v, att, atty, xmid, ln2, rstd2, g, u, h;
  };
  std::vector<LayerAct> acts_;
  std::vector<float> xfinal_, lnf_, rstdf_, logits_, losses_;
  std::vector<float> rope_cos_, rope_sin_;
  // Backward scratch.
  std::vector<float> dx_, dln_, dq_, dk_, dv_, datty_, dh_, dg_, du_;
  std::vector<int32_t> inputs_, targets_;
  int B_ = 0, T_ = 0, rope_T_ = 0;
};

}  // namespace covenant::engine
