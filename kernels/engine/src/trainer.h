// The inner loop: model + AdamW + attached shards, gradient accumulation, checkpoints.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adamw.h"
#include "model.h"
#include "shards.h"

namespace covenant::engine {

struct TrainConfig {
  int batch = 8;           // sequences per micro-batch
  int seq_len = 0;         // 0: the model's max_seq_len
  int grad_accum = 1;      // micro-batches per optimizer step
  uint64_t seed = 0;       // initialisation
  uint64_t data_seed = 0;  // sampling of sequences
  std::string validate(const ModelConfig& m) const;
};

struct StepResult {
  int64_t step = 0;   // optimizer steps taken after this one
  float loss = 0.0f;  // mean over the micro-batches
  float lr = 0.0f;
  double grad_norm = 0.0;
};

// The metadata of an engine checkpoint that describes the model (format and configuration);
// Trainer::save adds the optimizer's step, and load refuses a file whose values differ.
std::map<std::string, std::string> config_metadata(const ModelConfig& c);

class Trainer {
 public:
  // Throws std::invalid_argument with the offending field on a bad configuration.
  Trainer(const ModelConfig& model, const OptimConfig& optim, const TrainConfig& train);

  Model& model() { return model_; }
  AdamW& optimizer() { return adamw_; }
  const TrainConfig& train_config() const { return train_; }
  const OptimConfig& optim_config() const { return optim_; }
  int64_t step() const { return adamw_.steps_taken(); }

  // Adds a shard under a caller-chosen id (the run's shard number); "" or an error.
  std::string attach_shard(uint64_t shard_id, const std::string& path);
  void detach_all() { shards_.clear(); }
  size_t attached() const { return shards_.size(); }

  // One optimizer step on sequences sampled from the attached shards.
  StepResult train_step();
  // Mean loss over `count` sequences of seq_len + 1 tokens each (inputs then shifted targets).
  float eval_loss(const int32_t* tokens, int count, int seq_len);

  // Pseudo-gradient support: w -= lr * delta for the named tensor.
  std::string apply_outer_step(const std::string& name, const float* delta, size_t n, float lr);

  std::string save(const std::string& path) const;
  // Restores weights, AdamW moments and the step counter; the model shape must match.
  std::string load(const std::string& path);

 private:
  void fill_batch(int64_t step, int micro, std::vector<int32_t>* in, std::vector<int32_t>* tgt);
  ModelConfig model_config_;
  OptimConfig optim_;
  TrainConfig train_;
  Model model_;
  AdamW adamw_;
  struct Attached {
    uint64_t id;
    std::shared_ptr<Shard> shard;
  };
  std::vector<Attached> shards_;
  std::vector<int32_t> in_, tgt_;
};

}  // namespace covenant::engine
