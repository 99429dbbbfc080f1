// The GPU training step: the CPU model's layout and parameter names, bf16 activations and
// weights for compute, fp32 master weights, gradients and AdamW moments on the device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "adamw.h"
#include "gemm.cuh"
#include "kernels.cuh"
#include "model.h"

namespace covenant::engine::cuda {

class CudaModel {
 public:
  // Takes the configuration and parameter layout of `layout`; weights come from upload().
  explicit CudaModel(const Model& layout);
  ~CudaModel();
  // "" when the device buffers and cuBLASLt are ready, otherwise why not.
  const std::string& error() const { return error_; }

  void upload(const float* weights);    // fp32 master weights (and their bf16 copy)
  void download(float* weights) const;  // fp32 master weights
  void download_grads(float* grads) const;
  void zero_grad();
  // Mean cross-entropy; keeps activations for backward(). Tokens on the host.
  float forward(const int32_t* inputs, const int32_t* targets, int B, int T);
  void backward(float loss_scale);
  // AdamW over all tensors (clipped by the global gradient norm); returns the norm.
  double adamw_step(const OptimConfig& c, float lr);

 private:
  struct LayerAct {
    bf16 *x, *ln1, *q, *k, *v, *atty, *xmid, *ln2, *g, *u, *h;
    float *rstd1, *lse, *rstd2;
  };
  void allocate(int B, int T);
  void release_acts();
  const float* master(int idx) const { return w32_ + params_[idx].offset; }
  bf16* w(int idx) const { return w16_ + params_[idx].offset; }
  float* grad(int idx) const { return g32_ + params_[idx].offset; }

  ModelConfig config_;
  std::vector<ParamInfo> params_;
  size_t n_ = 0;
  float *w32_ = nullptr, *g32_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  bf16* w16_ = nullptr;
  Gemm gemm_;
  std::string error_;
  int64_t t_ = 0;
  int B_ = 0, T_ = 0;
  std::vector<LayerAct> acts_;
  bf16 *xfinal_ = nullptr, *lnf_ = nullptr, *logits_ = nullptr, *dln_ = nullptr, *tmp_ = nullptr;
  bf16 *dx16_ = nullptr, *dh_ = nullptr, *dg_ = nullptr, *du_ = nullptr, *dq16_ = nullptr;
  bf16 *dk16_ = nullptr, *dv16_ = nullptr, *datty_ = nullptr;
  float *rstdf_ = nullptr, *losses_ = nullptr, *dx32_ = nullptr, *dq32_ = nullptr;
  float *dk32_ = nullptr, *dv32_ = nullptr, *scalar_ = nullptr;
  int32_t *inputs_ = nullptr, *targets_ = nullptr;
  std::vector<void*> owned_;
};

}  // namespace covenant::engine::cuda
