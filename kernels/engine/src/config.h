// Model configuration and the named presets of the LLaMA-3-style family.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace covenant::engine {

struct ModelConfig {
  std::string name = "custom";
  int vocab_size = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int ffn_dim = 0;
  int max_seq_len = 0;
  float rope_theta = 500000.0f;
  float norm_eps = 1e-5f;

  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_dim(); }
  // Empty when the configuration is usable, otherwise what is wrong with which field.
  std::string validate() const;
};

// Parameter count of a configuration (untied embedding and output head).
uint64_t parameter_count(const ModelConfig& c);

// Memory a training process needs, in bytes, for one batch of `tokens` tokens.
struct MemoryEstimate {
  uint64_t parameters = 0;
  uint64_t weights_fp32 = 0;  // master weights
  uint64_t weights_bf16 = 0;  // compute copy on the GPU backend
  uint64_t gradients_fp32 = 0;
  uint64_t adamw_state = 0;  // two fp32 moments
  uint64_t activations_fp32 = 0;
  uint64_t total_fp32 = 0;  // CPU backend total
};
MemoryEstimate estimate_memory(const ModelConfig& c, int batch, int seq_len);

// Fills `out` with the named preset; false when no preset has that name. The presets are the
// rows of kernels/engine/presets.json, compiled in (the operator reads the same file).
bool preset(const std::string& name, ModelConfig* out);
const std::vector<std::string>& preset_names();

}  // namespace covenant::engine
