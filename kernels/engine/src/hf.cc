#include "hf.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cpu/attention.h"
#include "cpu/matmul.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"
#include "json.h"
#include "safetensors.h"
#include "trainer.h"

namespace covenant::engine::hf {

namespace {
constexpr uint64_t kMaxHeader = 100 << 20;
constexpr uint64_t kMaxConfigBytes = 16 << 20;
const char* kEngineFormat = "covenant-engine/1";
const char* kExpAvg = "optimizer.exp_avg.";
const char* kExpAvgSq = "optimizer.exp_avg_sq.";
const char kWorkerMagic[] = "covenant-ckpt\n";
constexpr size_t kWorkerMagicLen = sizeof(kWorkerMagic) - 1;
// The byte tokenizer's end-of-document token (ByteTokenizer::eos()) under Hugging Face.
const char* kEosText = "<|end_of_text|>";

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

using safetensors::dtype_bytes;

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf or nan (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalise into a float (exact).
    int e = -1;
    uint32_t m = man;
    do {
      e++;
      m <<= 1;
    } while ((m & 0x400) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string read_text(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  in.seekg(0, std::ios::end);
  const auto size = uint64_t(in.tellg());
  if (size > kMaxConfigBytes) return path + ": larger than " + std::to_string(kMaxConfigBytes);
  in.seekg(0);
  std::string s(size, '\0');
  in.read(s.data(), std::streamsize(size));
  if (!in) return "cannot read " + path;
  *out = std::move(s);
  return "";
}

std::string write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot open " + tmp + " for writing: " + std::strerror(errno);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return "short write to " + tmp;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
  }
  return "";
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string make_dirs(const std::string& dir) {
  std::string part;
  for (size_t i = 0; i <= dir.size(); i++) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return "cannot create " + part + ": " + std::strerror(errno);
      }
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return dir + " is not a directory";
  return "";
}

// A JSON value's text for error messages (strings quoted, containers abbreviated).
std::string value_text(const json::Value& v) {
  switch (v.kind) {
    case json::Value::kNull:
      return "null";
    case json::Value::kBool:
      return v.boolean ? "true" : "false";
    case json::Value::kNumber: {
      char buf[40];
      for (int digits = 1; digits <= 17; digits++) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v.number);
        if (std::strtod(buf, nullptr) == v.number) break;
      }
      return buf;
    }
    case json::Value::kString:
      return json::quote(v.string);
    case json::Value::kArray:
      return "an array";
    case json::Value::kObject: {
      std::string s = "{";
      for (size_t i = 0; i < v.object.size() && i < 4; i++) {
        s += (i ? ", " : "") + json::quote(v.object[i].first) + ": " +
             value_text(v.object[i].second);
      }
      return s + (v.object.size() > 4 ? ", ...}" : "}");
    }
  }
  return "?";
}

// An integer field of a JSON object: absent -> def (or an error when def < 0).
std::string int_field(const json::Value& obj, const std::string& where, const std::string& key,
                      long def, int* out) {
  const json::Value* v = obj.get(key);
  if (!v || v->kind == json::Value::kNull) {
    if (def < 0) return where + key + " is missing";
    *out = int(def);
    return "";
  }
  if (v->kind != json::Value::kNumber || v->number != std::floor(v->number) || v->number < 1 ||
      v->number > 2147483647.0) {
    return where + key + " is " + value_text(*v) + ", expected a positive integer";
  }
  *out = int(v->number);
  return "";
}

std::string float_field(const json::Value& obj, const std::string& where, const std::string& key,
                        double def, float* out) {
  const json::Value* v = obj.get(key);
  if (!v || v->kind == json::Value::kNull) {
    if (def < 0) return where + key + " is missing";
    *out = float(def);
    return "";
  }
  if (v->kind != json::Value::kNumber || !(v->number > 0) || !std::isfinite(float(v->number))) {
    return where + key + " is " + value_text(*v) + ", expected a positive number";
  }
  *out = float(v->number);
  return "";
}

std::string parse_int(const std::map<std::string, std::string>& meta, const std::string& key,
                      int* out) {
  auto it = meta.find(key);
  if (it == meta.end()) return "metadata " + key + " missing";
  char* end = nullptr;
  const long v = std::strtol(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || v <= 0 || v > 2147483647L) {
    return "metadata " + key + " is \"" + it->second + "\", expected a positive integer";
  }
  *out = int(v);
  return "";
}

std::string parse_float(const std::map<std::string, std::string>& meta, const std::string& key,
                        float* out) {
  auto it = meta.find(key);
  if (it == meta.end()) return "metadata " + key + " missing";
  char* end = nullptr;
  const float v = std::strtof(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
    return "metadata " + key + " is \"" + it->second + "\", expected a positive number";
  }
  *out = v;
  return "";
}

// What Trainer::save writes (trainer.cc), with no optimizer step, so Trainer::load accepts it.
std::map<std::string, std::string> engine_metadata(const ModelConfig& c) {
  auto meta = config_metadata(c);
  meta["optimizer.step"] = "0";
  return meta;
}

// GPT-2's reversible map of bytes to printable characters, which Hugging Face's ByteLevel
// pre-tokenizer and decoder use: printable Latin-1 bytes stand for themselves, the others
// take code points from 256 up, in byte order.
std::vector<std::string> byte_chars() {
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; b++) {
    const unsigned cp = printable(b) ? unsigned(b) : unsigned(next++);
    std::string s;
    if (cp < 0x80) {
      s.push_back(char(cp));
    } else {
      s.push_back(char(0xC0 | (cp >> 6)));
      s.push_back(char(0x80 | (cp & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}
}  // namespace

std::string float_text(float v) {
  char buf[40];
  if (std::fabs(v) < 1e15f && v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.1f", double(v));  // 500000.0, as Python writes it
    return buf;
  }
  for (int digits = 1; digits <= 9; digits++) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;  // "1e-05": valid JSON, and Python reads it as the same float
}

std::vector<ParamInfo> layout(const ModelConfig& config) { return parameter_layout(config); }

namespace {
// Tensors of a configuration's layout: checked against a file before layout() builds the
// list, so an absurd num_hidden_layers cannot make it allocate without bound.
uint64_t tensor_count(const ModelConfig& c) { return 9 * uint64_t(c.n_layers) + 3; }

size_t total_numel(const std::vector<ParamInfo>& params) {
  return params.empty() ? 0 : params.back().offset + params.back().numel;
}
}  // namespace

std::string TensorFile::open(const std::string& path) {
  path_ = path;
  entries_.clear();
  metadata_.clear();
  std::ifstream in;
  safetensors::Header h;
  const std::string err = safetensors::read_header(path, &in, &h);
  if (!err.empty()) return err;
  entries_ = std::move(h.entries);
  metadata_ = std::move(h.metadata);
  data_start_ = h.data_start;
  return "";
}

std::string TensorFile::read(const std::string& name, float* dst) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return path_ + ": tensor " + name + " missing";
  const Entry& e = it->second;
  const int width = dtype_bytes(e.dtype);
  if (e.dtype != "F32" && e.dtype != "BF16" && e.dtype != "F16") {
    return path_ + ": tensor " + name + " has dtype " + e.dtype + "; F32, BF16 and F16 are read";
  }
  const uint64_t n = (e.end - e.begin) / uint64_t(width);
  std::ifstream in(path_, std::ios::binary);
  if (!in) return "cannot open " + path_;
  in.seekg(std::streamoff(data_start_ + e.begin));
  if (width == 4) {
    in.read(reinterpret_cast<char*>(dst), std::streamsize(4 * n));  // little-endian hosts only
    if (!in) return path_ + ": short read of tensor " + name;
    return "";
  }
  std::vector<uint16_t> buf(std::min<uint64_t>(n, 1 << 20));
  for (uint64_t done = 0; done < n;) {
    const uint64_t k = std::min<uint64_t>(buf.size(), n - done);
    in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(2 * k));
    if (!in) return path_ + ": short read of tensor " + name;
    for (uint64_t i = 0; i < k; i++) {
      if (e.dtype == "BF16") {
        const uint32_t bits = uint32_t(buf[i]) << 16;
        std::memcpy(dst + done + i, &bits, 4);
      } else {
        dst[done + i] = half_to_float(buf[i]);
      }
    }
    done += k;
  }
  return "";
}

std::string read_engine_checkpoint(const std::string& path, Weights* out) {
  TensorFile f;
  std::string err = f.open(path);
  if (!err.empty()) return err;
  const auto& meta = f.metadata();
  auto format = meta.find("format");
  if (format == meta.end() || format->second != kEngineFormat) {
    return path + ": not an engine checkpoint (metadata format is " +
           (format == meta.end() ? std::string("missing") : "\"" + format->second + "\"") +
           ", expected \"" + kEngineFormat + "\")";
  }
  ModelConfig c;
  auto name = meta.find("config.name");
  if (name != meta.end()) c.name = name->second;
  for (auto [key, field] : {std::pair{"config.vocab_size", &c.vocab_size},
                            {"config.dim", &c.dim},
                            {"config.n_layers", &c.n_layers},
                            {"config.n_heads", &c.n_heads},
                            {"config.n_kv_heads", &c.n_kv_heads},
                            {"config.ffn_dim", &c.ffn_dim},
                            {"config.max_seq_len", &c.max_seq_len}}) {
    err = parse_int(meta, key, field);
    if (!err.empty()) return path + ": " + err;
  }
  err = parse_float(meta, "config.rope_theta", &c.rope_theta);
  if (err.empty()) err = parse_float(meta, "config.norm_eps", &c.norm_eps);
  if (err.empty()) err = c.validate();
  if (!err.empty()) return path + ": " + err;
  if (tensor_count(c) > f.entries().size()) {
    return path + ": config.n_layers is " + std::to_string(c.n_layers) + " but the file holds " +
           std::to_string(f.entries().size()) + " tensors";
  }
  Weights w;
  w.config = c;
  w.params = layout(c);
  for (const ParamInfo& p : w.params) {
    auto it = f.entries().find(p.name);
    if (it == f.entries().end()) return path + ": tensor " + p.name + " missing";
    if (it->second.shape != p.shape) {
      return path + ": tensor " + p.name + " has shape " + shape_text(it->second.shape) +
             ", the configuration gives " + shape_text(p.shape);
    }
    if (it->second.dtype != "F32") return path + ": tensor " + p.name + " is not F32";
  }
  w.data.resize(total_numel(w.params));
  for (const ParamInfo& p : w.params) {
    err = f.read(p.name, w.data.data() + p.offset);
    if (!err.empty()) return err;
  }
  *out = std::move(w);
  return "";
}

bool is_worker_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[kWorkerMagicLen];
  in.read(head, std::streamsize(kWorkerMagicLen));
  return in && std::memcmp(head, kWorkerMagic, kWorkerMagicLen) == 0;
}

std::string read_worker_checkpoint(const std::string& path, const ModelConfig& config, Weights* out,
                                   WorkerCheckpointInfo* info) {
  std::string err = config.validate();
  if (!err.empty()) return "model configuration: " + err;
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  uint8_t head[kWorkerMagicLen + 4];
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (!in || std::memcmp(head, kWorkerMagic, kWorkerMagicLen) != 0) {
    return path + ": not a worker checkpoint (no covenant-ckpt header)";
  }
  uint64_t hlen = 0;
  for (int i = 0; i < 4; i++) hlen |= uint64_t(head[kWorkerMagicLen + i]) << (8 * i);
  if (hlen > kMaxHeader || kWorkerMagicLen + 4 + hlen > size) {
    return path + ": checkpoint header is truncated";
  }
  std::string header(hlen, '\0');
  in.read(header.data(), std::streamsize(hlen));
  json::Value root;
  if (!in || !json::parse(header, &root, &err) || root.kind != json::Value::kObject) {
    return path + ": bad checkpoint header JSON" + (err.empty() ? "" : ": " + err);
  }
  WorkerCheckpointInfo ci;
  const json::Value* run = root.get("run");
  const json::Value* round = root.get("round");
  const json::Value* tensors = root.get("tensors");
  if (!run || run->kind != json::Value::kString || !round || round->kind != json::Value::kNumber ||
      !tensors || tensors->kind != json::Value::kArray) {
    return path + ": checkpoint header lacks run, round or tensors";
  }
  ci.run = run->string;
  ci.round = int64_t(round->number);
  if (tensors->array.size() != tensor_count(config)) {
    return path + ": checkpoint has " + std::to_string(tensors->array.size()) +
           " tensors, the model " + std::to_string(tensor_count(config));
  }
  Weights w;
  w.config = config;
  w.params = layout(config);
  for (size_t i = 0; i < w.params.size(); i++) {
    const json::Value& t = tensors->array[i];
    const json::Value* name = t.get("name");
    const json::Value* dims = t.get("dims");
    std::vector<int64_t> shape;
    if (dims && dims->kind == json::Value::kArray) {
      for (const json::Value& d : dims->array) shape.push_back(int64_t(d.number));
    }
    if (!name || name->kind != json::Value::kString || name->string != w.params[i].name ||
        shape != w.params[i].shape) {
      return path + ": checkpoint tensor " + std::to_string(i) + " is " +
             (name && name->kind == json::Value::kString ? name->string : "unnamed") + " " +
             shape_text(shape) + ", the model has " + w.params[i].name + " " +
             shape_text(w.params[i].shape);
    }
  }
  // A nesterov run's checkpoint holds the outer momentum after the weights ("momentum": true):
  // the weights are the first half of the body, the export takes them alone.
  const json::Value* momentum = root.get("momentum");
  if (momentum && momentum->kind != json::Value::kBool) {
    return path + ": checkpoint header momentum is not true or false";
  }
  ci.momentum = momentum && momentum->boolean;
  const size_t n = total_numel(w.params);
  ci.data_offset = kWorkerMagicLen + 4 + hlen;
  ci.data_bytes = size - ci.data_offset;
  const uint64_t expected = (ci.momentum ? 8 : 4) * uint64_t(n);
  if (ci.data_bytes != expected) {
    return path + ": checkpoint body is " + std::to_string(ci.data_bytes) + " bytes, expected " +
           std::to_string(expected) + (ci.momentum ? " (weights and outer momentum)" : "");
  }
  w.data.resize(n);
  in.read(reinterpret_cast<char*>(w.data.data()), std::streamsize(4 * n));
  if (!in) return path + ": short read of the checkpoint body";
  *out = std::move(w);
  if (info) *info = ci;
  return "";
}

std::string config_from_run_json(const std::string& path, ModelConfig* out, std::string* run) {
  std::string text;
  std::string err = read_text(path, &text);
  if (!err.empty()) return err;
  json::Value root;
  if (!json::parse(text, &root, &err)) return path + ": bad JSON: " + err;
  const json::Value* kind = root.get("kind");
  if (root.kind != json::Value::kObject || !kind || kind->kind != json::Value::kString ||
      kind->string != "ResolvedRunConfig") {
    return path + ": not a resolved run configuration (kind ResolvedRunConfig)";
  }
  const json::Value* model = root.get("model");
  const json::Value* data = root.get("data");
  if (!model || model->kind != json::Value::kObject || !data ||
      data->kind != json::Value::kObject) {
    return path + ": model or data missing";
  }
  ModelConfig c;
  const json::Value* preset = model->get("preset");
  c.name = preset && preset->kind == json::Value::kString ? preset->string : "run";
  for (auto [key, field] : {std::pair{"vocab", &c.vocab_size},
                            {"hidden", &c.dim},
                            {"layers", &c.n_layers},
                            {"heads", &c.n_heads},
                            {"kvHeads", &c.n_kv_heads},
                            {"ffn", &c.ffn_dim}}) {
    err = int_field(*model, "model.", key, -1, field);
    if (!err.empty()) return path + ": " + err;
  }
  err = int_field(*data, "data.", "sequenceLength", -1, &c.max_seq_len);
  if (err.empty()) err = float_field(*model, "model.", "ropeTheta", -1, &c.rope_theta);
  if (err.empty()) err = float_field(*model, "model.", "normEps", -1, &c.norm_eps);
  if (err.empty()) err = c.validate();
  if (!err.empty()) return path + ": " + err;
  const json::Value* r = root.get("run");
  const json::Value* rname = r ? r->get("name") : nullptr;
  if (run) *run = rname && rname->kind == json::Value::kString ? rname->string : "";
  *out = c;
  return "";
}

std::string write_engine_checkpoint(const std::string& path, const Weights& w) {
  size_t largest = 0;
  for (const ParamInfo& p : w.params) largest = std::max(largest, p.numel);
  const std::vector<float> zeros(largest, 0.0f);
  std::vector<safetensors::TensorRef> refs;
  for (const ParamInfo& p : w.params) {
    refs.push_back({p.name, p.shape, w.data.data() + p.offset});
    refs.push_back({kExpAvg + p.name, p.shape, zeros.data()});
    refs.push_back({kExpAvgSq + p.name, p.shape, zeros.data()});
  }
  return safetensors::write(path, refs, engine_metadata(w.config));
}

std::string llama_config_json(const ModelConfig& c, int bos, int eos) {
  auto id = [](int v) { return v < 0 ? std::string("null") : std::to_string(v); };
  std::ostringstream s;
  s << "{\n"
    << "  \"architectures\": [\"LlamaForCausalLM\"],\n"
    << "  \"model_type\": \"llama\",\n"
    << "  \"hidden_size\": " << c.dim << ",\n"
    << "  \"intermediate_size\": " << c.ffn_dim << ",\n"
    << "  \"num_hidden_layers\": " << c.n_layers << ",\n"
    << "  \"num_attention_heads\": " << c.n_heads << ",\n"
    << "  \"num_key_value_heads\": " << c.n_kv_heads << ",\n"
    << "  \"head_dim\": " << c.head_dim() << ",\n"
    << "  \"hidden_act\": \"silu\",\n"
    << "  \"rms_norm_eps\": " << float_text(c.norm_eps) << ",\n"
    << "  \"rope_theta\": " << float_text(c.rope_theta) << ",\n"
    << "  \"rope_scaling\": null,\n"
    << "  \"attention_bias\": false,\n"
    << "  \"attention_dropout\": 0.0,\n"
    << "  \"mlp_bias\": false,\n"
    << "  \"max_position_embeddings\": " << c.max_seq_len << ",\n"
    << "  \"vocab_size\": " << c.vocab_size << ",\n"
    << "  \"tie_word_embeddings\": false,\n"
    << "  \"initializer_range\": 0.02,\n"
    << "  \"pretraining_tp\": 1,\n"
    << "  \"use_cache\": true,\n"
    << "  \"torch_dtype\": \"float32\",\n"
    << "  \"bos_token_id\": " << id(bos) << ",\n"
    << "  \"eos_token_id\": " << id(eos) << "\n"
    << "}\n";
  return s.str();
}

std::string parse_llama_config(const std::string& text, ModelConfig* out, bool* tied) {
  json::Value root;
  std::string err;
  if (!json::parse(text, &root, &err)) return "config.json: bad JSON: " + err;
  if (root.kind != json::Value::kObject) return "config.json: not a JSON object";
  const std::string at = "config.json: ";
  const json::Value* mt = root.get("model_type");
  if (!mt || mt->kind != json::Value::kString || mt->string != "llama") {
    return at + "model_type is " + (mt ? value_text(*mt) : std::string("missing")) +
           ", only \"llama\" is read";
  }
  if (const json::Value* arch = root.get("architectures");
      arch && arch->kind != json::Value::kNull) {
    bool causal = false;
    std::string names;
    if (arch->kind == json::Value::kArray) {
      for (const json::Value& a : arch->array) {
        if (a.kind == json::Value::kString && a.string == "LlamaForCausalLM") causal = true;
        names += (names.empty() ? "" : ", ") + value_text(a);
      }
    }
    if (!causal) {
      return at + "architectures is [" + names + "], expected it to name \"LlamaForCausalLM\"";
    }
  }
  // What the engine's decoder cannot represent, by field: each must be absent or neutral.
  auto neutral = [&](const char* key, const char* need) -> std::string {
    const json::Value* v = root.get(key);
    if (!v || v->kind == json::Value::kNull) return "";
    if (v->kind == json::Value::kBool && !v->boolean) return "";
    if (v->kind == json::Value::kObject && std::string(key) == "rope_scaling") {
      // {"rope_type": "default"} (or "type") is plain rotary embeddings spelled out.
      const json::Value* t = v->get("rope_type");
      if (!t) t = v->get("type");
      if (t && t->kind == json::Value::kString && t->string == "default") return "";
    }
    return at + key + " is " + value_text(*v) + "; the engine supports " + need;
  };
  for (auto [key, need] :
       {std::pair{"rope_scaling", "plain rotary embeddings only (rope_scaling null)"},
        {"attention_bias", "no attention bias (attention_bias false)"},
        {"mlp_bias", "no MLP bias (mlp_bias false)"},
        {"quantization_config", "unquantized weights only"},
        {"sliding_window", "full causal attention only"}}) {
    err = neutral(key, need);
    if (!err.empty()) return err;
  }
  if (const json::Value* act = root.get("hidden_act");
      act && !(act->kind == json::Value::kString && act->string == "silu")) {
    return at + "hidden_act is " + value_text(*act) + "; the engine's MLP is SwiGLU (\"silu\")";
  }
  ModelConfig c;
  c.name = "hf-import";
  for (auto [key, field] : {std::pair{"hidden_size", &c.dim},
                            {"intermediate_size", &c.ffn_dim},
                            {"num_hidden_layers", &c.n_layers},
                            {"num_attention_heads", &c.n_heads},
                            {"vocab_size", &c.vocab_size}}) {
    err = int_field(root, at, key, -1, field);
    if (!err.empty()) return err;
  }
  // Hugging Face's LlamaConfig defaults for what a config.json may leave out.
  err = int_field(root, at, "num_key_value_heads", c.n_heads, &c.n_kv_heads);
  if (err.empty()) err = int_field(root, at, "max_position_embeddings", 2048, &c.max_seq_len);
  if (err.empty()) err = float_field(root, at, "rms_norm_eps", 1e-6, &c.norm_eps);
  if (!err.empty()) return err;
  // rope_theta at the top level, or inside rope_parameters (newer transformers releases).
  const json::Value* rp = root.get("rope_parameters");
  if (rp && rp->kind == json::Value::kObject) {
    const json::Value* type = rp->get("rope_type");
    if (type && !(type->kind == json::Value::kString && type->string == "default")) {
      return at + "rope_parameters.rope_type is " + value_text(*type) +
             "; the engine supports plain rotary embeddings only (\"default\")";
    }
    if (rp->get("rope_theta")) {
      err = float_field(*rp, at + "rope_parameters.", "rope_theta", -1, &c.rope_theta);
    } else {
      err = float_field(root, at, "rope_theta", 10000.0, &c.rope_theta);
    }
  } else if (rp && rp->kind != json::Value::kNull) {
    return at + "rope_parameters is " + value_text(*rp) + ", expected an object";
  } else {
    err = float_field(root, at, "rope_theta", 10000.0, &c.rope_theta);
  }
  if (!err.empty()) return err;
  if (const json::Value* hd = root.get("head_dim"); hd && hd->kind != json::Value::kNull) {
    int head_dim = 0;
    err = int_field(root, at, "head_dim", -1, &head_dim);
    if (!err.empty()) return err;
    if (c.n_heads <= 0 || head_dim * c.n_heads != c.dim) {
      return at + "head_dim is " + std::to_string(head_dim) + "; the engine needs hidden_size / " +
             "num_attention_heads (" + std::to_string(c.dim) + " / " + std::to_string(c.n_heads) +
             ")";
    }
  }
  bool tie = false;
  if (const json::Value* t = root.get("tie_word_embeddings"); t && t->kind != json::Value::kNull) {
    if (t->kind != json::Value::kBool) {
      return at + "tie_word_embeddings is " + value_text(*t) + ", expected true or false";
    }
    tie = t->boolean;
  }
  err = c.validate();
  if (!err.empty()) return at + "the shape is not usable by the engine: " + err;
  *out = c;
  *tied = tie;
  return "";
}

std::map<std::string, std::string> byte_tokenizer_files(int max_len) {
  const std::vector<std::string> chars = byte_chars();
  const std::string eos = json::quote(kEosText);
  // The end-of-document token: in tokenizer.json with its id, in tokenizer_config.json keyed by it.
  const std::string special = "\"content\": " + eos +
                              ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                              "\"normalized\": false, \"special\": true}";
  const std::string added = "{\"id\": 256, " + special;
  std::string vocab;
  for (int b = 0; b < 256; b++) {
    vocab += (b ? ",\n      " : "\n      ") + json::quote(chars[b]) + ": " + std::to_string(b);
  }
  std::map<std::string, std::string> files;
  // One token per byte: a byte-level BPE model with the 256 byte characters and no merges.
  files["tokenizer.json"] =
      "{\n"
      "  \"version\": \"1.0\",\n"
      "  \"truncation\": null,\n"
      "  \"padding\": null,\n"
      "  \"added_tokens\": [\n    " +
      added +
      "\n  ],\n"
      "  \"normalizer\": null,\n"
      "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
      "\"trim_offsets\": false, \"use_regex\": false},\n"
      "  \"post_processor\": null,\n"
      "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
      "\"trim_offsets\": false, \"use_regex\": false},\n"
      "  \"model\": {\n"
      "    \"type\": \"BPE\",\n"
      "    \"dropout\": null,\n"
      "    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": null,\n"
      "    \"end_of_word_suffix\": null,\n"
      "    \"fuse_unk\": false,\n"
      "    \"byte_fallback\": false,\n"
      "    \"vocab\": {" +
      vocab +
      "\n    },\n"
      "    \"merges\": []\n"
      "  }\n"
      "}\n";
  files["tokenizer_config.json"] =
      "{\n"
      "  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n"
      "  \"bos_token\": " +
      eos +
      ",\n"
      "  \"eos_token\": " +
      eos +
      ",\n"
      "  \"model_max_length\": " +
      std::to_string(max_len) +
      ",\n"
      "  \"clean_up_tokenization_spaces\": false,\n"
      "  \"added_tokens_decoder\": {\"256\": {" +
      special +
      "}\n"
      "}\n";
  files["special_tokens_map.json"] =
      "{\n  \"bos_token\": " + eos + ",\n  \"eos_token\": " + eos + "\n}\n";
  files["generation_config.json"] = "{\n  \"bos_token_id\": 256,\n  \"eos_token_id\": 256\n}\n";
  return files;
}

std::string export_hf(const Weights& w, const std::string& dir, const ExportOptions& o) {
  if (w.params.empty() || w.data.size() != total_numel(w.params)) {
    return "no weights to export, or weights that do not match their layout";
  }
  if (o.tokenizer != "byte" && o.tokenizer != "none") {
    return "tokenizer \"" + o.tokenizer + "\": expected byte or none";
  }
  const bool byte_tok = o.tokenizer == "byte";
  if (byte_tok && w.config.vocab_size < 257) {
    return "the byte tokenizer needs a vocabulary of at least 257, the model has " +
           std::to_string(w.config.vocab_size) + " (export with tokenizer none)";
  }
  std::string err = make_dirs(dir);
  if (!err.empty()) return err;
  for (const char* stale : {"model.safetensors.index.json", "pytorch_model.bin"}) {
    if (exists(dir + "/" + stale)) {
      return dir + " already holds " + stale +
             ", which would shadow the export; use a new directory";
    }
  }
  std::vector<safetensors::TensorRef> refs;
  for (const ParamInfo& p : w.params) refs.push_back({p.name, p.shape, w.data.data() + p.offset});
  err = safetensors::write(dir + "/model.safetensors", refs, {{"format", "pt"}});
  if (err.empty()) {
    err = write_text(dir + "/config.json",
                     llama_config_json(w.config, byte_tok ? 256 : -1, byte_tok ? 256 : -1));
  }
  if (err.empty() && byte_tok) {
    for (const auto& [name, text] : byte_tokenizer_files(w.config.max_seq_len)) {
      err = write_text(dir + "/" + name, text);
      if (!err.empty()) break;
    }
  }
  return err;
}

std::string import_hf(const std::string& dir, Weights* out, std::vector<std::string>* notes) {
  std::string text;
  std::string err = read_text(dir + "/config.json", &text);
  if (!err.empty()) return err;
  ModelConfig c;
  bool tied = false;
  err = parse_llama_config(text, &c, &tied);
  if (!err.empty()) return dir + "/" + err;

  // Which file holds each tensor: model.safetensors, or the shards named by the index.
  std::map<std::string, TensorFile> files;
  std::map<std::string, std::string> where;  // tensor -> file name
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (exists(dir + "/model.safetensors")) {
    err = files["model.safetensors"].open(dir + "/model.safetensors");
    if (!err.empty()) return err;
    for (const auto& [name, e] : files["model.safetensors"].entries()) {
      where[name] = "model.safetensors";
    }
  } else if (exists(index_path)) {
    err = read_text(index_path, &text);
    if (!err.empty()) return err;
    json::Value index;
    if (!json::parse(text, &index, &err)) return index_path + ": bad JSON: " + err;
    const json::Value* map = index.get("weight_map");
    if (index.kind != json::Value::kObject || !map || map->kind != json::Value::kObject) {
      return index_path + ": weight_map missing";
    }
    for (const auto& [name, file] : map->object) {
      if (file.kind != json::Value::kString || file.string.empty() ||
          file.string.find('/') != std::string::npos || file.string[0] == '.') {
        return index_path + ": weight_map names " + value_text(file) + " for " + name +
               ", expected a file name in " + dir;
      }
      if (!files.count(file.string)) {
        err = files[file.string].open(dir + "/" + file.string);
        if (!err.empty()) return err;
      }
      if (!files[file.string].entries().count(name)) {
        return index_path + ": " + name + " is not in " + file.string;
      }
      where[name] = file.string;
    }
  } else if (exists(dir + "/pytorch_model.bin")) {
    return dir +
           " holds pytorch_model.bin only; only safetensors weights are read (save the "
           "model again with safe_serialization=True)";
  } else {
    return dir + " has no model.safetensors or model.safetensors.index.json";
  }

  if (tensor_count(c) > where.size() + 1) {  // + 1: lm_head.weight may be tied
    return dir + "/config.json: num_hidden_layers is " + std::to_string(c.n_layers) +
           " but the weights hold " + std::to_string(where.size()) + " tensors";
  }
  Weights w;
  w.config = c;
  w.params = layout(c);
  std::map<std::string, const ParamInfo*> expected;
  for (const ParamInfo& p : w.params) expected[p.name] = &p;
  for (const auto& [name, file] : where) {
    if (expected.count(name)) continue;
    // Older checkpoints carry the rotary frequencies as a buffer.
    const std::string suffix = ".inv_freq";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      notes->push_back("ignored " + name + " (recomputed from rope_theta)");
      continue;
    }
    return dir + "/" + file + ": tensor " + name + " has no place in the engine's model" +
           (name.find("bias") != std::string::npos ? " (the engine has no biases)" : "");
  }
  bool untie = false;
  if (!where.count("lm_head.weight")) {
    if (!tied) {
      return dir + ": lm_head.weight missing and tie_word_embeddings is false";
    }
    untie = true;
  }
  for (const ParamInfo& p : w.params) {
    if (untie && p.name == "lm_head.weight") continue;
    auto it = where.find(p.name);
    if (it == where.end()) return dir + ": tensor " + p.name + " missing";
    const TensorFile::Entry& e = files[it->second].entries().at(p.name);
    if (e.shape != p.shape) {
      return dir + "/" + it->second + ": tensor " + p.name + " has shape " + shape_text(e.shape) +
             ", config.json gives " + shape_text(p.shape);
    }
    if (e.dtype != "F32" && e.dtype != "BF16" && e.dtype != "F16") {
      return dir + "/" + it->second + ": tensor " + p.name + " has dtype " + e.dtype +
             "; F32, BF16 and F16 are read";
    }
  }
  w.data.resize(total_numel(w.params));
  std::map<std::string, int> dtypes;
  for (const ParamInfo& p : w.params) {
    float* dst = w.data.data() + p.offset;
    if (untie && p.name == "lm_head.weight") {
      const ParamInfo& emb = w.params.front();
      std::memcpy(dst, w.data.data() + emb.offset, sizeof(float) * p.numel);
      continue;
    }
    const TensorFile& f = files[where[p.name]];
    err = f.read(p.name, dst);
    if (!err.empty()) return err;
    dtypes[f.entries().at(p.name).dtype]++;
    for (size_t i = 0; i < p.numel; i++) {
      if (!std::isfinite(dst[i])) {
        return dir + ": tensor " + p.name + " has a non-finite value at index " + std::to_string(i);
      }
    }
  }
  for (const auto& [dtype, count] : dtypes) {
    if (dtype != "F32") {
      notes->push_back(std::to_string(count) + " " + dtype + " tensors widened to F32 exactly");
    }
  }
  if (untie) {
    notes->push_back(
        "tie_word_embeddings is true: lm_head.weight is a copy of model.embed_tokens.weight "
        "(the engine's output head is untied; they train apart from here)");
  }
  *out = std::move(w);
  return "";
}

std::string forward_logits(const Weights& w, const int32_t* tokens, int B, int T,
                           std::vector<float>* logits) {
  const ModelConfig& c = w.config;
  if (B <= 0 || T <= 0 || T > c.max_seq_len) {
    return "batch " + std::to_string(B) + " x sequence " + std::to_string(T) + " outside 1.." +
           std::to_string(c.max_seq_len);
  }
  const int N = B * T;
  const int V = c.vocab_size, C = c.dim, F = c.ffn_dim, KV = c.kv_dim();
  const int H = c.n_heads, KVH = c.n_kv_heads, hd = c.head_dim();
  for (int n = 0; n < N; n++) {
    if (tokens[n] < 0 || tokens[n] >= V) {
      return "token " + std::to_string(tokens[n]) + " at position " + std::to_string(n) +
             " is outside the vocabulary [0, " + std::to_string(V) + ")";
    }
  }
  const float* wt = w.data.data();
  auto P = [&](int l, int which) { return wt + w.params[1 + l * 9 + which].offset; };
  std::vector<float> rope_cos, rope_sin;
  cpu::rope_tables(&rope_cos, &rope_sin, T, hd, c.rope_theta);
  std::vector<float> x(size_t(N) * C), ln(size_t(N) * C), rstd(N), q(size_t(N) * C),
      k(size_t(N) * KV), v(size_t(N) * KV), att(size_t(B) * H * T * T), atty(size_t(N) * C),
      xmid(size_t(N) * C), g(size_t(N) * F), u(size_t(N) * F), h(size_t(N) * F);
  const float* emb = wt + w.params[0].offset;
  for (int n = 0; n < N; n++) {
    std::memcpy(x.data() + size_t(n) * C, emb + size_t(tokens[n]) * C, 4 * size_t(C));
  }
  // The layer order of Model::forward (indices as registered: norm, q, k, v, o, norm, gate,
  // up, down), one layer's activations at a time.
  for (int l = 0; l < c.n_layers; l++) {
    cpu::rmsnorm_forward(ln.data(), rstd.data(), x.data(), P(l, 0), N, C, c.norm_eps);
    cpu::matmul_forward(q.data(), ln.data(), P(l, 1), N, C, C);
    cpu::matmul_forward(k.data(), ln.data(), P(l, 2), N, C, KV);
    cpu::matmul_forward(v.data(), ln.data(), P(l, 3), N, C, KV);
    cpu::rope_apply(q.data(), rope_cos.data(), rope_sin.data(), B, T, H, hd, false);
    cpu::rope_apply(k.data(), rope_cos.data(), rope_sin.data(), B, T, KVH, hd, false);
    cpu::attention_forward(atty.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, KVH, hd);
    cpu::matmul_forward(xmid.data(), atty.data(), P(l, 4), N, C, C);
    for (size_t i = 0; i < size_t(N) * C; i++) xmid[i] += x[i];
    cpu::rmsnorm_forward(ln.data(), rstd.data(), xmid.data(), P(l, 5), N, C, c.norm_eps);
    cpu::matmul_forward(g.data(), ln.data(), P(l, 6), N, C, F);
    cpu::matmul_forward(u.data(), ln.data(), P(l, 7), N, C, F);
    cpu::swiglu_forward(h.data(), g.data(), u.data(), size_t(N) * F);
    cpu::matmul_forward(x.data(), h.data(), P(l, 8), N, F, C);
    for (size_t i = 0; i < size_t(N) * C; i++) x[i] += xmid[i];
  }
  const size_t nf = w.params.size();
  cpu::rmsnorm_forward(ln.data(), rstd.data(), x.data(), wt + w.params[nf - 2].offset, N, C,
                       c.norm_eps);
  logits->resize(size_t(N) * V);
  cpu::matmul_forward(logits->data(), ln.data(), wt + w.params[nf - 1].offset, N, C, V);
  return "";
}

}  // namespace covenant::engine::hf
