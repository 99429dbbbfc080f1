// save -> load -> continue is bit-identical to not stopping; bad checkpoints lose nothing.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "check.h"
#include "corpus.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "trainer.h"

using namespace covenant::engine;

namespace {
ModelConfig small_config() {
  ModelConfig c;
  c.name = "ckpt-test";
  c.vocab_size = 257;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 160;
  c.max_seq_len = 32;
  c.rope_theta = 10000.0f;
  return c;
}
bool same(const float* a, const float* b, size_t n) { return std::memcmp(a, b, 4 * n) == 0; }
}  // namespace

int main() {
  const std::string dir = temp_dir("checkpoint");
  ByteTokenizer tok;
  std::vector<int32_t> tokens;
  for (const std::string& d : system_documents(200000)) {
    tok.encode(d, &tokens);
    tokens.push_back(tok.eos());
  }
  CHECK(tokens.size() > 10000);
  ShardHeader h;
  h.vocab_size = 257;
  h.tokenizer = tok.kind();
  CHECK_OK(write_shard(dir + "/shard0.bin", h, tokens));

  OptimConfig o;
  o.lr = 3e-3f;
  o.warmup_steps = 2;
  o.total_steps = 10;
  TrainConfig t;
  t.batch = 4;
  t.grad_accum = 2;
  t.seed = 5;
  t.data_seed = 17;

  Trainer straight(small_config(), o, t);
  CHECK_OK(straight.attach_shard(0, dir + "/shard0.bin"));
  std::vector<float> losses;
  for (int i = 0; i < 6; i++) losses.push_back(straight.train_step().loss);

  Trainer first(small_config(), o, t);
  CHECK_OK(first.attach_shard(0, dir + "/shard0.bin"));
  for (int i = 0; i < 3; i++) CHECK(first.train_step().loss == losses[i]);
  const std::string ckpt = dir + "/step3.safetensors";
  CHECK_OK(first.save(ckpt));

  // A different init seed: everything must come from the checkpoint.
  TrainConfig t2 = t;
  t2.seed = 999;
  Trainer resumed(small_config(), o, t2);
  CHECK_OK(resumed.attach_shard(0, dir + "/shard0.bin"));
  CHECK_OK(resumed.load(ckpt));
  CHECK(resumed.step() == 3);
  for (int i = 3; i < 6; i++) {
    const float l = resumed.train_step().loss;
    std::printf("step %d: straight %.9g resumed %.9g\n", i + 1, losses[i], l);
    CHECK(l == losses[i]);
  }
  const size_t n = straight.model().num_params();
  CHECK(same(straight.model().weights(), resumed.model().weights(), n));
  CHECK(same(straight.optimizer().m().data(), resumed.optimizer().m().data(), n));
  CHECK(same(straight.optimizer().v().data(), resumed.optimizer().v().data(), n));

  // The file is plain safetensors with weights and both AdamW moments under readable names.
  safetensors::File f;
  CHECK_OK(safetensors::read(ckpt, &f));
  CHECK(f.tensors.count("model.layers.1.mlp.down_proj.weight"));
  CHECK(f.tensors.count("optimizer.exp_avg.lm_head.weight"));
  CHECK(f.tensors.count("optimizer.exp_avg_sq.model.norm.weight"));
  CHECK(f.metadata["optimizer.step"] == "3" && f.metadata["config.dim"] == "64");

  // A truncated file and a mismatched model are refused and change nothing.
  std::ifstream in(ckpt, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir + "/cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const std::vector<float> before(resumed.model().weights(), resumed.model().weights() + n);
  CHECK(!resumed.load(dir + "/cut.safetensors").empty());
  CHECK(same(before.data(), resumed.model().weights(), n) && resumed.step() == 6);
  ModelConfig wider = small_config();
  wider.ffn_dim = 192;
  Trainer other(wider, o, t);
  const std::string err = other.load(ckpt);
  std::printf("mismatch: %s\n", err.c_str());
  CHECK(err.find("config.ffn_dim") != std::string::npos);

  // Outer step: w -= lr * delta on one named tensor, non-finite deltas refused.
  const ParamInfo* p = resumed.model().find("model.norm.weight");
  CHECK(p != nullptr);
  std::vector<float> delta(p->numel, 0.5f);
  const float w0 = resumed.model().weights()[p->offset];
  CHECK_OK(resumed.apply_outer_step("model.norm.weight", delta.data(), delta.size(), 0.2f));
  CHECK(resumed.model().weights()[p->offset] == w0 - 0.2f * 0.5f);
  delta[3] = NAN;
  CHECK(!resumed.apply_outer_step("model.norm.weight", delta.data(), delta.size(), 1.0f).empty());
  CHECK(!resumed.apply_outer_step("nope", delta.data(), delta.size(), 1.0f).empty());
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("ok\n");
  return 0;
}
