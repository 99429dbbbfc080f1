#include "trainer.h"

#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

#include "rng.h"
#include "safetensors.h"

namespace covenant::engine {

std::string TrainConfig::validate(const ModelConfig& m) const {
  if (batch <= 0) return "batch must be > 0";
  if (seq_len < 0 || seq_len > m.max_seq_len) {
    return "seq_len must be in [1, " + std::to_string(m.max_seq_len) + "] (0 for the maximum)";
  }
  if (grad_accum <= 0) return "grad_accum must be > 0";
  return "";
}

namespace {
TrainConfig resolved(const TrainConfig& t, const ModelConfig& m) {
  TrainConfig r = t;
  if (r.seq_len == 0) r.seq_len = m.max_seq_len;
  return r;
}
ModelConfig checked(const ModelConfig& m, const OptimConfig& o, const TrainConfig& t) {
  std::string err = m.validate();
  if (err.empty()) err = o.validate();
  if (err.empty()) err = t.validate(m);
  if (!err.empty()) throw std::invalid_argument(err);
  return m;
}
}  // namespace

Trainer::Trainer(const ModelConfig& model, const OptimConfig& optim, const TrainConfig& train)
    : model_config_(checked(model, optim, train)),
      optim_(optim),
      train_(resolved(train, model)),
      model_(model),
      adamw_(model_.num_params()) {
  model_.init(train_.seed);
}

std::string Trainer::attach_shard(uint64_t shard_id, const std::string& path) {
  auto s = std::make_shared<Shard>();
  std::string err = read_shard(path, s.get());
  if (!err.empty()) return err;
  if (s->header.vocab_size > uint32_t(model_config_.vocab_size)) {
    return path + ": shard vocabulary " + std::to_string(s->header.vocab_size) +
           " exceeds the model's " + std::to_string(model_config_.vocab_size);
  }
  if (s->header.num_tokens <= uint64_t(train_.seq_len) + 1) {
    return path + ": " + std::to_string(s->header.num_tokens) +
           " tokens is too few for sequences of " + std::to_string(train_.seq_len);
  }
  shards_.push_back({shard_id, std::move(s)});
  return "";
}

void Trainer::fill_batch(int64_t step, int micro, std::vector<int32_t>* in,
                         std::vector<int32_t>* tgt) {
  const int B = train_.batch, T = train_.seq_len;
  in->resize(size_t(B) * T);
  tgt->resize(size_t(B) * T);
  for (int b = 0; b < B; b++) {
    const uint64_t row = uint64_t(micro) * B + b;
    const Attached& a = shards_[mix(mix(train_.data_seed, uint64_t(step)), row) % shards_.size()];
    const uint64_t off =
        sample_offset(train_.data_seed, a.id, uint64_t(step), row, a.shard->tokens.size(), T);
    const int32_t* src = a.shard->tokens.data() + off;
    std::memcpy(in->data() + size_t(b) * T, src, sizeof(int32_t) * T);
    std::memcpy(tgt->data() + size_t(b) * T, src + 1, sizeof(int32_t) * T);
  }
}

StepResult Trainer::train_step() {
  if (shards_.empty()) throw std::logic_error("train_step: no shards attached");
  const int64_t step = adamw_.steps_taken();
  model_.zero_grad();
  double loss = 0.0;
  for (int micro = 0; micro < train_.grad_accum; micro++) {
    fill_batch(step, micro, &in_, &tgt_);
    loss += model_.forward(in_.data(), tgt_.data(), train_.batch, train_.seq_len);
    model_.backward(1.0f / float(train_.grad_accum));
  }
  StepResult r;
  r.lr = learning_rate(optim_, step);
  r.grad_norm = adamw_.step(model_, optim_, r.lr);
  r.loss = float(loss / train_.grad_accum);
  r.step = adamw_.steps_taken();
  return r;
}

float Trainer::eval_loss(const int32_t* tokens, int count, int seq_len) {
  if (count <= 0) throw std::invalid_argument("eval_loss: count must be > 0");
  std::vector<int32_t> in(size_t(count) * seq_len), tgt(size_t(count) * seq_len);
  for (int c = 0; c < count; c++) {
    const int32_t* src = tokens + size_t(c) * (seq_len + 1);
    std::memcpy(in.data() + size_t(c) * seq_len, src, sizeof(int32_t) * seq_len);
    std::memcpy(tgt.data() + size_t(c) * seq_len, src + 1, sizeof(int32_t) * seq_len);
  }
  return model_.forward(in.data(), tgt.data(), count, seq_len);
}

std::string Trainer::apply_outer_step(const std::string& name, const float* delta, size_t n,
                                      float lr) {
  const ParamInfo* p = model_.find(name);
  if (!p) return "no parameter named " + name;
  if (n != p->numel) {
    return name + ": expected " + std::to_string(p->numel) + " values, got " + std::to_string(n);
  }
  for (size_t i = 0; i < n; i++) {
    if (!std::isfinite(delta[i]))
      return name + ": delta has a non-finite value at " + std::to_string(i);
  }
  float* w = model_.weights() + p->offset;
  for (size_t i = 0; i < n; i++) w[i] -= lr * delta[i];
  return "";
}

std::map<std::string, std::string> config_metadata(const ModelConfig& c) {
  char theta[32], eps[32];
  snprintf(theta, sizeof theta, "%.9g", c.rope_theta);
  snprintf(eps, sizeof eps, "%.9g", c.norm_eps);
  return {{"format", "covenant-engine/1"},
          {"config.name", c.name},
          {"config.vocab_size", std::to_string(c.vocab_size)},
          {"config.dim", std::to_string(c.dim)},
          {"config.n_layers", std::to_string(c.n_layers)},
          {"config.n_heads", std::to_string(c.n_heads)},
          {"config.n_kv_heads", std::to_string(c.n_kv_heads)},
          {"config.ffn_dim", std::to_string(c.ffn_dim)},
          {"config.max_seq_len", std::to_string(c.max_seq_len)},
          {"config.rope_theta", theta},
          {"config.norm_eps", eps}};
}

namespace {
const char* kExpAvg = "optimizer.exp_avg.";
const char* kExpAvgSq = "optimizer.exp_avg_sq.";
}  // namespace

std::string Trainer::save(const std::string& path) const {
  std::vector<safetensors::TensorRef> refs;
  auto& m = const_cast<AdamW&>(adamw_);
  for (const ParamInfo& p : model_.params()) {
    refs.push_back({p.name, p.shape, model_.weights() + p.offset});
    refs.push_back({kExpAvg + p.name, p.shape, m.m().data() + p.offset});
    refs.push_back({kExpAvgSq + p.name, p.shape, m.v().data() + p.offset});
  }
  auto meta = config_metadata(model_config_);
  meta["optimizer.step"] = std::to_string(adamw_.steps_taken());
  return safetensors::write(path, refs, meta);
}

std::string Trainer::load(const std::string& path) {
  safetensors::File f;
  std::string err = safetensors::read(path, &f);
  if (!err.empty()) return err;
  const auto expected = config_metadata(model_config_);
  for (const auto& [k, v] : expected) {
    if (k == "config.name") continue;
    auto it = f.metadata.find(k);
    if (it == f.metadata.end() || it->second != v) {
      return path + ": checkpoint " + k + " is " +
             (it == f.metadata.end() ? std::string("missing") : it->second) + ", the model has " +
             v;
    }
  }
  auto step_it = f.metadata.find("optimizer.step");
  if (step_it == f.metadata.end()) return path + ": optimizer.step missing from metadata";
  char* end = nullptr;
  const long long step = std::strtoll(step_it->second.c_str(), &end, 10);
  if (*end != '\0' || step < 0) return path + ": optimizer.step is not a count";
  // Validate everything before changing anything, so a bad file loses nothing.
  for (const ParamInfo& p : model_.params()) {
    for (const std::string& name : {p.name, kExpAvg + p.name, kExpAvgSq + p.name}) {
      auto it = f.tensors.find(name);
      if (it == f.tensors.end()) return path + ": tensor " + name + " missing";
      if (it->second.shape != p.shape) return path + ": tensor " + name + " has the wrong shape";
    }
  }
  for (const ParamInfo& p : model_.params()) {
    auto copy = [&](const std::string& name, float* dst) {
      std::memcpy(dst, f.tensors[name].data.data(), sizeof(float) * p.numel);
    };
    copy(p.name, model_.weights() + p.offset);
    copy(kExpAvg + p.name, adamw_.m().data() + p.offset);
    copy(kExpAvgSq + p.name, adamw_.v().data() + p.offset);
  }
  adamw_.set_steps_taken(step);
  return "";
}

}  // namespace covenant::engine
