// Hugging Face LLaMA export and import: the engine's weights as a `LlamaForCausalLM` directory
// (config.json, model.safetensors with the weights only, tokenizer files) and back.
//
// The engine already uses Hugging Face's tensor names, row-major [out, in] matrices and the
// "rotate half" rotary layout, so q_proj and k_proj need no permutation either way: export and
// import copy fp32 bytes unchanged.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "model.h"
#include "safetensors.h"

namespace covenant::engine::hf {

// The engine's parameter layout for a configuration (names, shapes, offsets), the same as
// Model(config).params(), without allocating a model. The configuration must be valid.
std::vector<ParamInfo> layout(const ModelConfig& c);

// A model's weights in the engine's layout (one fp32 buffer, `params` offsets into it).
struct Weights {
  ModelConfig config;
  std::vector<ParamInfo> params;
  std::vector<float> data;
};

// A safetensors file opened for reading tensor by tensor: the header is parsed and every
// entry's dtype, shape and byte range are checked when opened; data is read on request and
// converted to fp32 (F32 copied bit for bit, BF16 and F16 widened exactly).
class TensorFile {
 public:
  using Entry = safetensors::Entry;
  std::string open(const std::string& path);
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Reads `name` into dst (numel floats). "" or the reason.
  std::string read(const std::string& name, float* dst) const;

 private:
  std::string path_;
  uint64_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Reads the weights of an engine checkpoint (format covenant-engine/1; the model shape comes
// from its metadata, the AdamW moments are skipped).
std::string read_engine_checkpoint(const std::string& path, Weights* out);

// A worker checkpoint (worker/checkpoint.ts: "covenant-ckpt\n", u32 header length, JSON header
// with run, round and tensors, fp32 data) names its tensors but not the model's head count,
// rotary theta, norm epsilon or sequence length: those come from the run's resolved
// configuration (run.json).
bool is_worker_checkpoint(const std::string& path);
struct WorkerCheckpointInfo {
  std::string run;
  int64_t round = -1;
  uint64_t data_offset = 0,
           data_bytes = 0;  // the fp32 body (what the state bucket's digest hashes)
  bool momentum = false;    // the body also holds the outer momentum (after the weights)
};
std::string read_worker_checkpoint(const std::string& path, const ModelConfig& config, Weights* out,
                                   WorkerCheckpointInfo* info);
// The model shape of a ResolvedRunConfig (model.* and data.sequenceLength); *run = run.name.
std::string config_from_run_json(const std::string& path, ModelConfig* out, std::string* run);

// Writes an engine checkpoint of the weights with zeroed AdamW moments and step 0, loadable by
// Trainer::load with the same configuration.
std::string write_engine_checkpoint(const std::string& path, const Weights& w);

// config.json of a LlamaForCausalLM with this shape. bos/eos < 0 are written as null.
std::string llama_config_json(const ModelConfig& c, int bos, int eos);
// Parses a Hugging Face config.json into the engine's configuration; refuses, naming the
// field and its value, whatever the engine cannot represent. *tied = tie_word_embeddings.
std::string parse_llama_config(const std::string& text, ModelConfig* out, bool* tied);

struct ExportOptions {
  std::string tokenizer = "byte";  // "byte": the engine's byte-level tokenizer; "none"
};
// Writes DIR/config.json, DIR/model.safetensors (weights only, fp32) and, for the byte
// tokenizer, tokenizer.json, tokenizer_config.json, special_tokens_map.json and
// generation_config.json. Creates DIR when missing.
std::string export_hf(const Weights& w, const std::string& dir, const ExportOptions& o);

// Reads DIR/config.json and DIR/model.safetensors (or the shards of
// DIR/model.safetensors.index.json). F32, BF16 and F16 tensors are accepted; tied embeddings
// are untied by copying embed_tokens into lm_head (noted in *notes).
std::string import_hf(const std::string& dir, Weights* out, std::vector<std::string>* notes);

// The byte-level tokenizer's files as Hugging Face reads them (file name -> contents).
std::map<std::string, std::string> byte_tokenizer_files(int max_len);

// Logits [B, T, vocab] of tokens[B, T] with the engine's CPU kernels, in the order
// Model::forward runs them (its loss is a cross-entropy of exactly these logits).
std::string forward_logits(const Weights& w, const int32_t* tokens, int B, int T,
                           std::vector<float>* logits);

// Shortest decimal text that reads back as the same float.
std::string float_text(float v);

}  // namespace covenant::engine::hf
