#include <cmath>
#include <stdexcept>

#include "model_cuda.cuh"

namespace covenant::engine::cuda {

namespace {
enum LayerParam { kAttnNorm, kQ, kK, kV, kO, kMlpNorm, kGate, kUp, kDown, kPerLayer };
constexpr cudaStream_t kStream = 0;
}  // namespace

CudaModel::CudaModel(const Model& layout)
    : config_(layout.config()), params_(layout.params()), n_(layout.num_params()) {
  if (config_.head_dim() % 32 != 0 || config_.head_dim() > 256) {
    error_ = "GPU attention needs head_dim a multiple of 32 and at most 256";
    return;
  }
  bool ok = cudaMalloc(&w32_, 4 * n_) == cudaSuccess && cudaMalloc(&g32_, 4 * n_) == cudaSuccess &&
            cudaMalloc(&m_, 4 * n_) == cudaSuccess && cudaMalloc(&v_, 4 * n_) == cudaSuccess &&
            cudaMalloc(&w16_, 2 * n_) == cudaSuccess && cudaMalloc(&scalar_, 4) == cudaSuccess;
  if (!ok) {
    error_ = "cannot allocate " + std::to_string(18 * n_ >> 20) + " MiB of parameter state";
    return;
  }
  cudaMemset(m_, 0, 4 * n_);
  cudaMemset(v_, 0, 4 * n_);
  cudaMemset(g32_, 0, 4 * n_);
  if (!gemm_.init()) error_ = "cuBLASLt initialisation failed";
}

CudaModel::~CudaModel() {
  release_acts();
  for (void* p : {(void*)w32_, (void*)g32_, (void*)m_, (void*)v_, (void*)w16_, (void*)scalar_}) {
    if (p) cudaFree(p);
  }
}

void CudaModel::release_acts() {
  for (void* p : owned_) cudaFree(p);
  owned_.clear();
  acts_.clear();
  B_ = T_ = 0;
}

void CudaModel::allocate(int B, int T) {
  if (B == B_ && T == T_) return;
  release_acts();
  const size_t N = size_t(B) * T, C = config_.dim, F = config_.ffn_dim, KV = config_.kv_dim();
  const size_t V = config_.vocab_size, H = config_.n_heads;
  auto alloc = [&](auto** p, size_t count) {
    void* raw = nullptr;
    if (cudaMalloc(&raw, count * sizeof(**p)) != cudaSuccess) {
      throw std::runtime_error("GPU out of memory for activations of batch " + std::to_string(B) +
                               " x " + std::to_string(T));
    }
    owned_.push_back(raw);
    *p = static_cast<std::remove_reference_t<decltype(*p)>>(raw);
  };
  acts_.resize(config_.n_layers);
  for (LayerAct& a : acts_) {
    alloc(&a.x, N * C);
    alloc(&a.ln1, N * C);
    alloc(&a.q, N * C);
    alloc(&a.k, N * KV);
    alloc(&a.v, N * KV);
    alloc(&a.atty, N * C);
    alloc(&a.xmid, N * C);
    alloc(&a.ln2, N * C);
    alloc(&a.g, N * F);
    alloc(&a.u, N * F);
    alloc(&a.h, N * F);
    alloc(&a.rstd1, N);
    alloc(&a.lse, size_t(B) * H * T);
    alloc(&a.rstd2, N);
  }
  alloc(&xfinal_, N * C);
  alloc(&lnf_, N * C);
  alloc(&logits_, N * V);
  alloc(&dln_, N * C);
  alloc(&tmp_, N * (F > C ? F : C));
  alloc(&dx16_, N * C);
  alloc(&dh_, N * F);
  alloc(&dg_, N * F);
  alloc(&du_, N * F);
  alloc(&dq16_, N * C);
  alloc(&dk16_, N * KV);
  alloc(&dv16_, N * KV);
  alloc(&datty_, N * C);
  alloc(&rstdf_, N);
  alloc(&losses_, N);
  alloc(&dx32_, N * C);
  alloc(&dq32_, N * C);
  alloc(&dk32_, N * KV);
  alloc(&dv32_, N * KV);
  alloc(&inputs_, N);
  alloc(&targets_, N);
  B_ = B;
  T_ = T;
}

void CudaModel::upload(const float* weights) {
  cudaMemcpy(w32_, weights, 4 * n_, cudaMemcpyHostToDevice);
  to_bf16(w16_, w32_, n_, kStream);
}

void CudaModel::download(float* weights) const {
  cudaMemcpy(weights, w32_, 4 * n_, cudaMemcpyDeviceToHost);
}

void CudaModel::download_grads(float* grads) const {
  cudaMemcpy(grads, g32_, 4 * n_, cudaMemcpyDeviceToHost);
}

void CudaModel::zero_grad() { cudaMemsetAsync(g32_, 0, 4 * n_, kStream); }

float CudaModel::forward(const int32_t* inputs, const int32_t* targets, int B, int T) {
  if (T > config_.max_seq_len) throw std::invalid_argument("sequence longer than max_seq_len");
  allocate(B, T);
  const int N = B * T, C = config_.dim, F = config_.ffn_dim, KV = config_.kv_dim();
  const int H = config_.n_heads, KVH = config_.n_kv_heads, hd = config_.head_dim();
  const int V = config_.vocab_size;
  const float theta = config_.rope_theta, eps = config_.norm_eps;
  cudaMemcpy(inputs_, inputs, 4 * size_t(N), cudaMemcpyHostToDevice);
  cudaMemcpy(targets_, targets, 4 * size_t(N), cudaMemcpyHostToDevice);
  auto P = [&](int l, int which) { return 1 + l * kPerLayer + which; };
  const int L = config_.n_layers;
  embedding_forward(L > 0 ? acts_[0].x : xfinal_, w(0), inputs_, N, C, kStream);
  for (int l = 0; l < L; l++) {
    LayerAct& a = acts_[l];
    rmsnorm_forward(a.ln1, a.rstd1, a.x, w(P(l, kAttnNorm)), N, C, eps, kStream);
    gemm_.forward(a.q, a.ln1, w(P(l, kQ)), N, C, C, kStream);
    gemm_.forward(a.k, a.ln1, w(P(l, kK)), N, C, KV, kStream);
    gemm_.forward(a.v, a.ln1, w(P(l, kV)), N, C, KV, kStream);
    rope(a.q, B, T, H, hd, theta, false, kStream);
    rope(a.k, B, T, KVH, hd, theta, false, kStream);
    attention_forward(a.atty, a.lse, a.q, a.k, a.v, B, T, H, KVH, hd, kStream);
    gemm_.forward(tmp_, a.atty, w(P(l, kO)), N, C, C, kStream);
    add(a.xmid, a.x, tmp_, size_t(N) * C, kStream);
    rmsnorm_forward(a.ln2, a.rstd2, a.xmid, w(P(l, kMlpNorm)), N, C, eps, kStream);
    gemm_.forward(a.g, a.ln2, w(P(l, kGate)), N, C, F, kStream);
    gemm_.forward(a.u, a.ln2, w(P(l, kUp)), N, C, F, kStream);
    swiglu_forward(a.h, a.g, a.u, size_t(N) * F, kStream);
    gemm_.forward(tmp_, a.h, w(P(l, kDown)), N, F, C, kStream);
    add(l + 1 < L ? acts_[l + 1].x : xfinal_, a.xmid, tmp_, size_t(N) * C, kStream);
  }
  const int nf = int(params_.size());
  rmsnorm_forward(lnf_, rstdf_, xfinal_, w(nf - 2), N, C, eps, kStream);
  gemm_.forward(logits_, lnf_, w(nf - 1), N, C, V, kStream);
  // Gradients of the mean loss are written now (scale 1/N) and scaled again in backward().
  cross_entropy(losses_, logits_, logits_, targets_, N, V, 1.0f / N, kStream);
  std::vector<float> losses(N);
  cudaMemcpy(losses.data(), losses_, 4 * size_t(N), cudaMemcpyDeviceToHost);
  double sum = 0.0;
  for (float x : losses) sum += x;
  return float(sum / N);
}

void CudaModel::backward(float loss_scale) {
  const int B = B_, T = T_, N = B * T, C = config_.dim, F = config_.ffn_dim;
  const int KV = config_.kv_dim(), H = config_.n_heads, KVH = config_.n_kv_heads;
  const int hd = config_.head_dim(), V = config_.vocab_size, L = config_.n_layers;
  const float theta = config_.rope_theta;
  auto P = [&](int l, int which) { return 1 + l * kPerLayer + which; };
  const int nf = int(params_.size());
  // logits_ holds d(mean loss)/d(logits) in bf16 (the cross-entropy kernel works in place).
  bf16* dlogits = logits_;
  if (loss_scale != 1.0f) scale(dlogits, size_t(N) * V, loss_scale, kStream);
  gemm_.input_grad(dln_, dlogits, w(nf - 1), N, C, V, kStream);
  gemm_.weight_grad(grad(nf - 1), dlogits, lnf_, N, C, V, kStream);
  cudaMemsetAsync(dx32_, 0, 4 * size_t(N) * C, kStream);
  rmsnorm_backward(dx32_, grad(nf - 2), dln_, xfinal_, rstdf_, w(nf - 2), N, C, kStream);
  for (int l = L - 1; l >= 0; l--) {
    LayerAct& a = acts_[l];
    to_bf16(dx16_, dx32_, size_t(N) * C, kStream);
    gemm_.input_grad(dh_, dx16_, w(P(l, kDown)), N, F, C, kStream);
    gemm_.weight_grad(grad(P(l, kDown)), dx16_, a.h, N, F, C, kStream);
    swiglu_backward(dg_, du_, dh_, a.g, a.u, size_t(N) * F, kStream);
    gemm_.input_grad(dln_, dg_, w(P(l, kGate)), N, C, F, kStream);
    gemm_.input_grad(tmp_, du_, w(P(l, kUp)), N, C, F, kStream);
    add(dln_, dln_, tmp_, size_t(N) * C, kStream);
    gemm_.weight_grad(grad(P(l, kGate)), dg_, a.ln2, N, C, F, kStream);
    gemm_.weight_grad(grad(P(l, kUp)), du_, a.ln2, N, C, F, kStream);
    rmsnorm_backward(dx32_, grad(P(l, kMlpNorm)), dln_, a.xmid, a.rstd2, w(P(l, kMlpNorm)), N, C,
                     kStream);
    to_bf16(dx16_, dx32_, size_t(N) * C, kStream);
    gemm_.input_grad(datty_, dx16_, w(P(l, kO)), N, C, C, kStream);
    gemm_.weight_grad(grad(P(l, kO)), dx16_, a.atty, N, C, C, kStream);
    cudaMemsetAsync(dk32_, 0, 4 * size_t(N) * KV, kStream);
    cudaMemsetAsync(dv32_, 0, 4 * size_t(N) * KV, kStream);
    attention_backward(dq32_, dk32_, dv32_, datty_, a.atty, a.lse, a.q, a.k, a.v, B, T, H, KVH, hd,
                       kStream);
    to_bf16(dq16_, dq32_, size_t(N) * C, kStream);
    to_bf16(dk16_, dk32_, size_t(N) * KV, kStream);
    to_bf16(dv16_, dv32_, size_t(N) * KV, kStream);
    rope(dq16_, B, T, H, hd, theta, true, kStream);
    rope(dk16_, B, T, KVH, hd, theta, true, kStream);
    gemm_.input_grad(dln_, dq16_, w(P(l, kQ)), N, C, C, kStream);
    gemm_.input_grad(tmp_, dk16_, w(P(l, kK)), N, C, KV, kStream);
    add(dln_, dln_, tmp_, size_t(N) * C, kStream);
    gemm_.input_grad(tmp_, dv16_, w(P(l, kV)), N, C, KV, kStream);
    add(dln_, dln_, tmp_, size_t(N) * C, kStream);
    gemm_.weight_grad(grad(P(l, kQ)), dq16_, a.ln1, N, C, C, kStream);
    gemm_.weight_grad(grad(P(l, kK)), dk16_, a.ln1, N, C, KV, kStream);
    gemm_.weight_grad(grad(P(l, kV)), dv16_, a.ln1, N, C, KV, kStream);
    rmsnorm_backward(dx32_, grad(P(l, kAttnNorm)), dln_, a.x, a.rstd1, w(P(l, kAttnNorm)), N, C,
                     kStream);
  }
  embedding_backward(grad(0), dx32_, inputs_, N, C, kStream);
}

double CudaModel::adamw_step(const OptimConfig& c, float lr) {
  cudaMemsetAsync(scalar_, 0, 4, kStream);
  sum_squares(scalar_, g32_, n_, kStream);
  float ss = 0.0f;
  cudaMemcpy(&ss, scalar_, 4, cudaMemcpyDeviceToHost);
  const double norm = std::sqrt(double(ss));
  const float clip = (c.grad_clip > 0.0f && norm > c.grad_clip) ? float(c.grad_clip / norm) : 1.0f;
  t_++;
  for (const ParamInfo& p : params_) {
    adamw(w32_ + p.offset, w16_ + p.offset, g32_ + p.offset, m_ + p.offset, v_ + p.offset, p.numel,
          lr, c.beta1, c.beta2, c.eps, p.decay ? c.weight_decay : 0.0f, clip, t_, kStream);
  }
  return norm;
}

}  // namespace covenant::engine::cuda
