// Presets build their configurations; parameter counts and memory estimates are plausible.
#include <cstdio>

#include "check.h"
#include "config.h"

using namespace covenant::engine;

int main() {
  CHECK(preset_names().size() == 6);
  for (const std::string& name : preset_names()) {
    ModelConfig c;
    CHECK(preset(name, &c));
    CHECK(c.validate().empty());
    const MemoryEstimate m = estimate_memory(c, 1, c.max_seq_len);
    std::printf("%-12s params %.3fB, fp32 weights+grads+AdamW %.1f GiB, activations/seq %.2f GiB\n",
                name.c_str(), m.parameters / 1e9,
                (m.weights_fp32 + m.gradients_fp32 + m.adamw_state) / double(1ULL << 30),
                m.activations_fp32 / double(1ULL << 30));
    CHECK(m.adamw_state == 2 * m.weights_fp32);
  }
  ModelConfig c;
  CHECK(preset("llama3-72b", &c));
  CHECK(c.n_layers == 80 && c.dim == 8192 && c.n_heads == 64 && c.n_kv_heads == 8);
  CHECK(c.ffn_dim == 28672 && c.vocab_size == 262144 && c.max_seq_len == 2048);
  const uint64_t p72 = parameter_count(c);
  CHECK(p72 > 72'000'000'000ULL && p72 < 73'000'000'000ULL);
  CHECK(preset("llama3-8b", &c));
  CHECK(parameter_count(c) > 8'000'000'000ULL && parameter_count(c) < 8'100'000'000ULL);
  CHECK(preset("llama3-tiny", &c));
  CHECK(parameter_count(c) > 100'000 && parameter_count(c) < 1'000'000);
  CHECK(!preset("llama3-nope", &c));

  ModelConfig bad = c;
  bad.n_kv_heads = 3;
  CHECK(bad.validate().find("n_kv_heads") != std::string::npos);
  bad = c;
  bad.dim = 250;
  CHECK(bad.validate().find("n_heads") != std::string::npos);
  bad = c;
  bad.vocab_size = 0;
  CHECK(bad.validate().find("vocab_size") != std::string::npos);
  std::printf("ok\n");
  return 0;
}
