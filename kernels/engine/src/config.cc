#include "config.h"

namespace covenant::engine {

std::string ModelConfig::validate() const {
  auto positive = [](const char* field, int v) -> std::string {
    return v > 0 ? "" : std::string(field) + " must be > 0, got " + std::to_string(v);
  };
  for (auto [field, v] : {std::pair{"vocab_size", vocab_size},
                          {"dim", dim},
                          {"n_layers", n_layers},
                          {"n_heads", n_heads},
                          {"n_kv_heads", n_kv_heads},
                          {"ffn_dim", ffn_dim},
                          {"max_seq_len", max_seq_len}}) {
    std::string e = positive(field, v);
    if (!e.empty()) return e;
  }
  if (dim % n_heads != 0) {
    return "dim (" + std::to_string(dim) + ") must be divisible by n_heads (" +
           std::to_string(n_heads) + ")";
  }
  if (head_dim() % 2 != 0) return "head_dim (dim / n_heads) must be even for rotary embeddings";
  if (n_heads % n_kv_heads != 0) {
    return "n_heads (" + std::to_string(n_heads) + ") must be a multiple of n_kv_heads (" +
           std::to_string(n_kv_heads) + ")";
  }
  if (!(rope_theta > 1.0f)) return "rope_theta must be > 1";
  if (!(norm_eps > 0.0f)) return "norm_eps must be > 0";
  return "";
}

uint64_t parameter_count(const ModelConfig& c) {
  const uint64_t C = c.dim, V = c.vocab_size, F = c.ffn_dim, KV = c.kv_dim();
  const uint64_t per_layer = C + C * C + 2 * KV * C + C * C + C + 3 * F * C;
  return 2 * V * C + C + c.n_layers * per_layer;
}

MemoryEstimate estimate_memory(const ModelConfig& c, int batch, int seq_len) {
  MemoryEstimate m;
  const uint64_t P = parameter_count(c);
  const uint64_t N = uint64_t(batch) * seq_len;
  const uint64_t C = c.dim, F = c.ffn_dim, KV = c.kv_dim(), V = c.vocab_size;
  m.parameters = P;
  m.weights_fp32 = 4 * P;
  m.weights_bf16 = 2 * P;
  m.gradients_fp32 = 4 * P;
  m.adamw_state = 8 * P;
  // Saved per layer: residual, two norms, q, k, v, attention output, mid residual, gate, up,
  // product, plus the attention probabilities the CPU backend keeps (the GPU backend does not).
  const uint64_t per_layer =
      N * (6 * C + 2 * KV + 3 * F + 2) + uint64_t(batch) * c.n_heads * uint64_t(seq_len) * seq_len;
  m.activations_fp32 = 4 * (c.n_layers * per_layer + N * (2 * C + V + 1));
  m.total_fp32 = m.weights_fp32 + m.gradients_fp32 + m.adamw_state + m.activations_fp32;
  return m;
}

namespace {
struct Preset {
  const char* name;
  int vocab, dim, layers, heads, kv_heads, ffn, seq;
  float theta, norm_eps;
};
// The one table of presets is kernels/engine/presets.json (the operator reads it too); CMake
// writes its rows into presets.inc (kernels/engine/presets.cmake).
constexpr Preset kPresets[] = {
#include "presets.inc"
};
}  // namespace

bool preset(const std::string& name, ModelConfig* out) {
  for (const Preset& p : kPresets) {
    if (name == p.name) {
      ModelConfig c;
      c.name = p.name;
      c.vocab_size = p.vocab;
      c.dim = p.dim;
      c.n_layers = p.layers;
      c.n_heads = p.heads;
      c.n_kv_heads = p.kv_heads;
      c.ffn_dim = p.ffn;
      c.max_seq_len = p.seq;
      c.rope_theta = p.theta;
      c.norm_eps = p.norm_eps;
      *out = c;
      return true;
    }
  }
  return false;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Preset& p : kPresets) v.push_back(p.name);
    return v;
  }();
  return names;
}

}  // namespace covenant::engine
