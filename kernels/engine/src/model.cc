#include "model.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/attention.h"
#include "cpu/cross_entropy.h"
#include "cpu/matmul.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"
#include "rng.h"

namespace covenant::engine {

namespace {
// Indices of a layer's tensors in params_, in the order they are registered.
enum LayerParam { kAttnNorm, kQ, kK, kV, kO, kMlpNorm, kGate, kUp, kDown, kPerLayer };
}  // namespace

std::vector<ParamInfo> parameter_layout(const ModelConfig& config) {
  std::vector<ParamInfo> params;
  const int64_t V = config.vocab_size, C = config.dim, F = config.ffn_dim, KV = config.kv_dim();
  size_t offset = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    ParamInfo p;
    p.name = name;
    p.shape = shape;
    p.numel = 1;
    for (int64_t d : shape) p.numel *= size_t(d);
    p.offset = offset;
    p.decay = shape.size() == 2;
    offset += p.numel;
    params.push_back(p);
  };
  add("model.embed_tokens.weight", {V, C});
  for (int l = 0; l < config.n_layers; l++) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    add(pre + "input_layernorm.weight", {C});
    add(pre + "self_attn.q_proj.weight", {C, C});
    add(pre + "self_attn.k_proj.weight", {KV, C});
    add(pre + "self_attn.v_proj.weight", {KV, C});
    add(pre + "self_attn.o_proj.weight", {C, C});
    add(pre + "post_attention_layernorm.weight", {C});
    add(pre + "mlp.gate_proj.weight", {F, C});
    add(pre + "mlp.up_proj.weight", {F, C});
    add(pre + "mlp.down_proj.weight", {C, F});
  }
  add("model.norm.weight", {C});
  add("lm_head.weight", {V, C});
  return params;
}

Model::Model(const ModelConfig& config) : config_(config) {
  const std::string err = config.validate();
  if (!err.empty()) throw std::invalid_argument("model config: " + err);
  params_ = parameter_layout(config);
  const size_t offset = params_.back().offset + params_.back().numel;
  weights_.assign(offset, 0.0f);
  grads_.assign(offset, 0.0f);
  acts_.resize(config.n_layers);
}

const ParamInfo* Model::find(const std::string& name) const {
  for (const ParamInfo& p : params_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

void Model::init(uint64_t seed) {
  const float std_dev = 0.02f;
  const float out_scale = 1.0f / std::sqrt(2.0f * config_.n_layers);
  for (size_t t = 0; t < params_.size(); t++) {
    const ParamInfo& p = params_[t];
    float* w = weights_.data() + p.offset;
    if (p.shape.size() == 1) {
      for (size_t i = 0; i < p.numel; i++) w[i] = 1.0f;
      continue;
    }
    const bool residual_out =
        p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos;
    const float s = residual_out ? std_dev * out_scale : std_dev;
    Rng rng(mix(seed, t));
    for (size_t i = 0; i < p.numel; i++) w[i] = float(rng.normal()) * s;
  }
  zero_grad();
}

void Model::zero_grad() { std::memset(grads_.data(), 0, sizeof(float) * grads_.size()); }

void Model::allocate(int B, int T) {
  if (B == B_ && T == T_) return;
  const size_t N = size_t(B) * T, C = config_.dim, F = config_.ffn_dim, KV = config_.kv_dim();
  const size_t V = config_.vocab_size, H = config_.n_heads;
  for (LayerAct& a : acts_) {
    a.x.resize(N * C);
    a.ln1.resize(N * C);
    a.rstd1.resize(N);
    a.q.resize(N * C);
    a.k.resize(N * KV);
    a.v.resize(N * KV);
    a.att.resize(size_t(B) * H * T * T);
    a.atty.resize(N * C);
    a.xmid.resize(N * C);
    a.ln2.resize(N * C);
    a.rstd2.resize(N);
    a.g.resize(N * F);
    a.u.resize(N * F);
    a.h.resize(N * F);
  }
  xfinal_.resize(N * C);
  lnf_.resize(N * C);
  rstdf_.resize(N);
  logits_.resize(N * V);
  losses_.resize(N);
  dx_.resize(N * C);
  dln_.resize(N * C);
  dq_.resize(N * C);
  dk_.resize(N * KV);
  dv_.resize(N * KV);
  datty_.resize(N * C);
  dh_.resize(N * F);
  dg_.resize(N * F);
  du_.resize(N * F);
  inputs_.resize(N);
  targets_.resize(N);
  if (T > rope_T_) {
    cpu::rope_tables(&rope_cos_, &rope_sin_, T, config_.head_dim(), config_.rope_theta);
    rope_T_ = T;
  }
  B_ = B;
  T_ = T;
}

float Model::forward(const int32_t* inputs, const int32_t* targets, int B, int T) {
  if (B <= 0 || T <= 0 || T > config_.max_seq_len) {
    throw std::invalid_argument("forward: batch " + std::to_string(B) + " x sequence " +
                                std::to_string(T) + " outside 1.." +
                                std::to_string(config_.max_seq_len));
  }
  const int N = B * T;
  const int V = config_.vocab_size, C = config_.dim, F = config_.ffn_dim, KV = config_.kv_dim();
  const int H = config_.n_heads, KVH = config_.n_kv_heads, hd = config_.head_dim();
  for (int n = 0; n < N; n++) {
    if (inputs[n] < 0 || inputs[n] >= V || targets[n] < 0 || targets[n] >= V) {
      throw std::invalid_argument("forward: token at position " + std::to_string(n) +
                                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
  }
  allocate(B, T);
  std::memcpy(inputs_.data(), inputs, sizeof(int32_t) * N);
  std::memcpy(targets_.data(), targets, sizeof(int32_t) * N);
  const float* w = weights_.data();
  auto P = [&](int l, int which) { return w + params_[1 + l * kPerLayer + which].offset; };

  // Embedding lookup into the first layer's residual input.
  float* x = acts_.empty() ? xfinal_.data() : acts_[0].x.data();
  const float* emb = w + params_[0].offset;
  for (int n = 0; n < N; n++) std::memcpy(x + size_t(n) * C, emb + size_t(inputs[n]) * C, 4 * C);

  for (int l = 0; l < config_.n_layers; l++) {
    LayerAct& a = acts_[l];
    cpu::rmsnorm_forward(a.ln1.data(), a.rstd1.data(), a.x.data(), P(l, kAttnNorm), N, C,
                         config_.norm_eps);
    cpu::matmul_forward(a.q.data(), a.ln1.data(), P(l, kQ), N, C, C);
    cpu::matmul_forward(a.k.data(), a.ln1.data(), P(l, kK), N, C, KV);
    cpu::matmul_forward(a.v.data(), a.ln1.data(), P(l, kV), N, C, KV);
    cpu::rope_apply(a.q.data(), rope_cos_.data(), rope_sin_.data(), B, T, H, hd, false);
    cpu::rope_apply(a.k.data(), rope_cos_.data(), rope_sin_.data(), B, T, KVH, hd, false);
    cpu::attention_forward(a.atty.data(), a.att.data(), a.q.data(), a.k.data(), a.v.data(), B, T, H,
                           KVH, hd);
    cpu::matmul_forward(a.xmid.data(), a.atty.data(), P(l, kO), N, C, C);
    for (size_t i = 0; i < size_t(N) * C; i++) a.xmid[i] += a.x[i];
    cpu::rmsnorm_forward(a.ln2.data(), a.rstd2.data(), a.xmid.data(), P(l, kMlpNorm), N, C,
                         config_.norm_eps);
    cpu::matmul_forward(a.g.data(), a.ln2.data(), P(l, kGate), N, C, F);
    cpu::matmul_forward(a.u.data(), a.ln2.data(), P(l, kUp), N, C, F);
    cpu::swiglu_forward(a.h.data(), a.g.data(), a.u.data(), size_t(N) * F);
    float* next = l + 1 < config_.n_layers ? acts_[l + 1].x.data() : xfinal_.data();
    cpu::matmul_forward(next, a.h.data(), P(l, kDown), N, F, C);
    for (size_t i = 0; i < size_t(N) * C; i++) next[i] += a.xmid[i];
  }
  const size_t nf = params_.size();
  cpu::rmsnorm_forward(lnf_.data(), rstdf_.data(), xfinal_.data(), w + params_[nf - 2].offset, N, C,
                       config_.norm_eps);
  cpu::matmul_forward(logits_.data(), lnf_.data(), w + params_[nf - 1].offset, N, C, V);
  cpu::cross_entropy_forward(losses_.data(), logits_.data(), targets, N, V);
  double sum = 0.0;
  for (int n = 0; n < N; n++) sum += losses_[n];
  return float(sum / N);
}

void Model::backward(float loss_scale) {
  if (B_ == 0) throw std::logic_error("backward() called before forward()");
  const int B = B_, T = T_, N = B * T;
  const int V = config_.vocab_size, C = config_.dim, F = config_.ffn_dim, KV = config_.kv_dim();
  const int H = config_.n_heads, KVH = config_.n_kv_heads, hd = config_.head_dim();
  const float* w = weights_.data();
  float* g = grads_.data();
  auto P = [&](int l, int which) { return w + params_[1 + l * kPerLayer + which].offset; };
  auto G = [&](int l, int which) { return g + params_[1 + l * kPerLayer + which].offset; };
  const size_t nf = params_.size();

  // Loss is the mean over N tokens.
  cpu::cross_entropy_backward(logits_.data(), targets_.data(), N, V, loss_scale / N);
  cpu::matmul_backward(dln_.data(), g + params_[nf - 1].offset, logits_.data(), lnf_.data(),
                       w + params_[nf - 1].offset, N, C, V);
  std::memset(dx_.data(), 0, sizeof(float) * dx_.size());
  cpu::rmsnorm_backward(dx_.data(), g + params_[nf - 2].offset, dln_.data(), xfinal_.data(),
                        rstdf_.data(), w + params_[nf - 2].offset, N, C);
  // dx_ now holds d(loss)/d(residual stream) and is carried down through the layers.
  for (int l = config_.n_layers - 1; l >= 0; l--) {
    LayerAct& a = acts_[l];
    // MLP block: next = xmid + down(swiglu(gate(ln2), up(ln2))).
    cpu::matmul_backward(dh_.data(), G(l, kDown), dx_.data(), a.h.data(), P(l, kDown), N, F, C);
    cpu::swiglu_backward(dg_.data(), du_.data(), dh_.data(), a.g.data(), a.u.data(), size_t(N) * F);
    cpu::matmul_backward(dln_.data(), G(l, kGate), dg_.data(), a.ln2.data(), P(l, kGate), N, C, F);
    // The up projection's input gradient is added to the gate's: reuse datty_ as scratch.
    cpu::matmul_backward(datty_.data(), G(l, kUp), du_.data(), a.ln2.data(), P(l, kUp), N, C, F);
    for (size_t i = 0; i < size_t(N) * C; i++) dln_[i] += datty_[i];
    cpu::rmsnorm_backward(dx_.data(), G(l, kMlpNorm), dln_.data(), a.xmid.data(), a.rstd2.data(),
                          P(l, kMlpNorm), N, C);
    // Attention block: xmid = x + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))).
    cpu::matmul_backward(datty_.data(), G(l, kO), dx_.data(), a.atty.data(), P(l, kO), N, C, C);
    cpu::attention_backward(dq_.data(), dk_.data(), dv_.data(), datty_.data(), a.att.data(),
                            a.q.data(), a.k.data(), a.v.data(), B, T, H, KVH, hd);
    cpu::rope_apply(dq_.data(), rope_cos_.data(), rope_sin_.data(), B, T, H, hd, true);
    cpu::rope_apply(dk_.data(), rope_cos_.data(), rope_sin_.data(), B, T, KVH, hd, true);
    cpu::matmul_backward(dln_.data(), G(l, kQ), dq_.data(), a.ln1.data(), P(l, kQ), N, C, C);
    cpu::matmul_backward(datty_.data(), G(l, kK), dk_.data(), a.ln1.data(), P(l, kK), N, C, KV);
    for (size_t i = 0; i < size_t(N) * C; i++) dln_[i] += datty_[i];
    cpu::matmul_backward(datty_.data(), G(l, kV), dv_.data(), a.ln1.data(), P(l, kV), N, C, KV);
    for (size_t i = 0; i < size_t(N) * C; i++) dln_[i] += datty_[i];
    cpu::rmsnorm_backward(dx_.data(), G(l, kAttnNorm), dln_.data(), a.x.data(), a.rstd1.data(),
                          P(l, kAttnNorm), N, C);
  }
  // Embedding: rows gathered by token id, summed in position order.
  float* gemb = g + params_[0].offset;
  for (int n = 0; n < N; n++) {
    float* row = gemb + size_t(inputs_[n]) * C;
    const float* d = dx_.data() + size_t(n) * C;
    for (int i = 0; i < C; i++) row[i] += d[i];
  }
}

}  // namespace covenant::engine
