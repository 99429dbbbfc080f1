// Hugging Face export and import: both round trips bit-identical, config.json and tokenizer
// files, tensor names and shapes, bf16 / f16 / sharded input, worker checkpoints, and refusals
// that name the field or tensor.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "check.h"
#include "cpu/cross_entropy.h"
#include "hf.h"
#include "json.h"
#include "rng.h"
#include "safetensors.h"
#include "trainer.h"

using namespace covenant::engine;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

#define CHECK_ERR(expr, part)                                                                  \
  do {                                                                                         \
    const std::string e_ = (expr);                                                             \
    if (!contains(e_, part)) {                                                                 \
      std::fprintf(stderr, "%s:%d: %s gave \"%s\", expected it to contain \"%s\"\n", __FILE__, \
                   __LINE__, #expr, e_.c_str(), std::string(part).c_str());                    \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  CHECK(out.good());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool same_bytes(const float* a, const float* b, size_t n) { return std::memcmp(a, b, 4 * n) == 0; }

ModelConfig small_config() {
  ModelConfig c;
  c.name = "hf-test";
  c.vocab_size = 300;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 160;
  c.max_seq_len = 32;
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-5f;
  return c;
}

// Random values everywhere (norm gains too), plus a negative zero and a subnormal.
void fill(std::vector<float>* v, uint64_t seed) {
  Rng rng(seed);
  for (float& x : *v) x = float(rng.normal()) * 0.05f;
  (*v)[3] = -0.0f;
  (*v)[5] = 1e-40f;
}

// A config.json as transformers writes it for the small configuration; `edits` replace or add
// top-level fields (raw JSON values); an empty value removes the field.
std::string hf_config(const std::vector<std::pair<std::string, std::string>>& edits = {}) {
  std::vector<std::pair<std::string, std::string>> f = {{"architectures", "[\"LlamaForCausalLM\"]"},
                                                        {"attention_bias", "false"},
                                                        {"attention_dropout", "0.0"},
                                                        {"bos_token_id", "1"},
                                                        {"eos_token_id", "2"},
                                                        {"hidden_act", "\"silu\""},
                                                        {"hidden_size", "64"},
                                                        {"initializer_range", "0.02"},
                                                        {"intermediate_size", "160"},
                                                        {"max_position_embeddings", "32"},
                                                        {"mlp_bias", "false"},
                                                        {"model_type", "\"llama\""},
                                                        {"num_attention_heads", "4"},
                                                        {"num_hidden_layers", "2"},
                                                        {"num_key_value_heads", "2"},
                                                        {"pretraining_tp", "1"},
                                                        {"rms_norm_eps", "1e-06"},
                                                        {"rope_scaling", "null"},
                                                        {"rope_theta", "500000.0"},
                                                        {"tie_word_embeddings", "false"},
                                                        {"torch_dtype", "\"float32\""},
                                                        {"transformers_version", "\"4.44.0\""},
                                                        {"use_cache", "true"},
                                                        {"vocab_size", "300"}};
  for (const auto& [k, v] : edits) {
    bool found = false;
    for (auto& kv : f) {
      if (kv.first == k) {
        kv.second = v;
        found = true;
      }
    }
    if (!found) f.push_back({k, v});
  }
  std::string s = "{";
  for (const auto& [k, v] : f) {
    if (v.empty()) continue;
    s += (s.size() > 1 ? ",\n  " : "\n  ") + json::quote(k) + ": " + v;
  }
  return s + "\n}\n";
}

// A safetensors file with tensors of any dtype (raw little-endian bytes), as another tool
// would write it.
struct RawTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
void write_raw_safetensors(const std::string& path, const std::vector<RawTensor>& ts) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  size_t off = 0;
  for (const RawTensor& t : ts) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); i++)
      shape += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "," + json::quote(t.name) + ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(off) + "," +
              std::to_string(off + t.bytes.size()) + "]}";
    off += t.bytes.size();
  }
  header += "}";
  std::string out(8, '\0');
  for (int i = 0; i < 8; i++) out[i] = char(uint64_t(header.size()) >> (8 * i));
  out += header;
  for (const RawTensor& t : ts) out += t.bytes;
  write_file(path, out);
}

std::string bytes_of(const float* p, size_t n) {
  return std::string(reinterpret_cast<const char*>(p), 4 * n);
}

// An HF-style directory for the small configuration: every tensor in F32, in reverse order.
std::vector<RawTensor> hf_tensors(const ModelConfig& c, const std::vector<float>& data) {
  std::vector<RawTensor> ts;
  const auto params = hf::layout(c);
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    ts.push_back({it->name, "F32", it->shape, bytes_of(data.data() + it->offset, it->numel)});
  }
  return ts;
}

std::string fresh_dir(const std::string& base, const std::string& name) {
  const std::string d = base + "/" + name;
  CHECK(std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str()) == 0);
  return d;
}

std::string try_import(const std::string& dir) {
  hf::Weights w;
  std::vector<std::string> notes;
  return hf::import_hf(dir, &w, &notes);
}

const json::Value& field(const json::Value& obj, const std::string& key) {
  const json::Value* v = obj.get(key);
  if (!v) {
    std::fprintf(stderr, "config.json lacks %s\n", key.c_str());
    std::exit(1);
  }
  return *v;
}

}  // namespace

int main() {
  const std::string dir = temp_dir("hf");

  // The layout the export and import use is the model's own.
  {
    ModelConfig c;
    CHECK(preset("llama3-tiny", &c));
    const Model m(c);
    const auto l = hf::layout(c);
    CHECK(l.size() == m.params().size());
    for (size_t i = 0; i < l.size(); i++) {
      CHECK(l[i].name == m.params()[i].name && l[i].shape == m.params()[i].shape &&
            l[i].offset == m.params()[i].offset && l[i].numel == m.params()[i].numel);
    }
  }
  CHECK(hf::float_text(1e-5f) == "1e-05");
  CHECK(hf::float_text(1e-6f) == "1e-06");
  CHECK(hf::float_text(500000.0f) == "500000.0");
  CHECK(hf::float_text(10000.0f) == "10000.0");

  // Engine checkpoint -> HF -> engine checkpoint, on the llama3-tiny preset.
  ModelConfig tiny;
  CHECK(preset("llama3-tiny", &tiny));
  const std::string ckpt = dir + "/tiny.safetensors";
  std::vector<float> original;
  {
    TrainConfig t;
    t.batch = 1;
    Trainer trainer(tiny, OptimConfig(), t);
    std::vector<float> w(trainer.model().num_params());
    fill(&w, 11);
    std::memcpy(trainer.model().weights(), w.data(), 4 * w.size());
    std::fill(trainer.optimizer().m().begin(), trainer.optimizer().m().end(), 0.5f);
    trainer.optimizer().set_steps_taken(7);
    CHECK_OK(trainer.save(ckpt));
    original = w;
  }
  hf::Weights w;
  CHECK_OK(hf::read_engine_checkpoint(ckpt, &w));
  CHECK(w.config.name == "llama3-tiny" && w.config.dim == tiny.dim &&
        w.config.norm_eps == tiny.norm_eps && w.config.rope_theta == tiny.rope_theta);
  CHECK(w.data.size() == original.size() &&
        same_bytes(w.data.data(), original.data(), w.data.size()));

  const std::string out = dir + "/export";
  CHECK_OK(hf::export_hf(w, out, hf::ExportOptions()));
  {
    json::Value cfg;
    std::string err;
    CHECK(json::parse(read_file(out + "/config.json"), &cfg, &err));
    CHECK(field(cfg, "architectures").array.size() == 1 &&
          field(cfg, "architectures").array[0].string == "LlamaForCausalLM");
    CHECK(field(cfg, "model_type").string == "llama");
    CHECK(field(cfg, "hidden_size").number == tiny.dim);
    CHECK(field(cfg, "intermediate_size").number == tiny.ffn_dim);
    CHECK(field(cfg, "num_hidden_layers").number == tiny.n_layers);
    CHECK(field(cfg, "num_attention_heads").number == tiny.n_heads);
    CHECK(field(cfg, "num_key_value_heads").number == tiny.n_kv_heads);
    CHECK(field(cfg, "head_dim").number == tiny.dim / tiny.n_heads);
    CHECK(field(cfg, "max_position_embeddings").number == tiny.max_seq_len);
    CHECK(field(cfg, "vocab_size").number == tiny.vocab_size);
    CHECK(float(field(cfg, "rms_norm_eps").number) == tiny.norm_eps);
    CHECK(field(cfg, "rms_norm_eps").number == 1e-5);  // not Hugging Face's default of 1e-6
    CHECK(float(field(cfg, "rope_theta").number) == tiny.rope_theta);
    CHECK(field(cfg, "tie_word_embeddings").kind == json::Value::kBool &&
          !field(cfg, "tie_word_embeddings").boolean);
    CHECK(field(cfg, "rope_scaling").kind == json::Value::kNull);
    CHECK(field(cfg, "hidden_act").string == "silu");
    CHECK(field(cfg, "torch_dtype").string == "float32");
    CHECK(field(cfg, "bos_token_id").number == 256 && field(cfg, "eos_token_id").number == 256);
  }
  {
    // Weights only, under Hugging Face names, fp32, bit for bit; a third of the checkpoint.
    safetensors::File f;
    CHECK_OK(safetensors::read(out + "/model.safetensors", &f));
    CHECK(f.metadata["format"] == "pt");
    CHECK(f.tensors.size() == w.params.size());
    for (const ParamInfo& p : w.params) {
      CHECK(f.tensors.count(p.name) == 1);
      CHECK(f.tensors[p.name].shape == p.shape);
      CHECK(same_bytes(f.tensors[p.name].data.data(), original.data() + p.offset, p.numel));
    }
    const std::string last = "model.layers." + std::to_string(tiny.n_layers - 1) + ".";
    CHECK(f.tensors.count(last + "self_attn.q_proj.weight") == 1);
    CHECK((f.tensors[last + "self_attn.k_proj.weight"].shape ==
           std::vector<int64_t>{tiny.kv_dim(), tiny.dim}));
    CHECK((f.tensors["model.layers.0.mlp.down_proj.weight"].shape ==
           std::vector<int64_t>{tiny.dim, tiny.ffn_dim}));
    CHECK((f.tensors["lm_head.weight"].shape == std::vector<int64_t>{tiny.vocab_size, tiny.dim}));
    const size_t ck = read_file(ckpt).size(), ex = read_file(out + "/model.safetensors").size();
    CHECK(ex * 3 > ck - 65536 && ex * 3 < ck + 65536);
  }
  {
    // Tokenizer: 256 byte tokens (ids = byte values) plus the end-of-document token 256.
    json::Value tok;
    std::string err;
    CHECK(json::parse(read_file(out + "/tokenizer.json"), &tok, &err));
    const json::Value& model = field(tok, "model");
    CHECK(field(model, "type").string == "BPE");
    const json::Value& vocab = field(model, "vocab");
    CHECK(vocab.object.size() == 256);
    std::vector<bool> seen(256, false);
    for (const auto& [piece, id] : vocab.object) {
      CHECK(id.number >= 0 && id.number < 256 && !seen[int(id.number)]);
      seen[int(id.number)] = true;
    }
    CHECK(vocab.get("A")->number == 'A' && vocab.get("!")->number == '!');
    CHECK(vocab.get("\xc4\xa0")->number == ' ');  // U+0120 stands for the space byte
    CHECK(vocab.get("\xc3\xbf")->number == 0xff);
    const json::Value& added = field(tok, "added_tokens");
    CHECK(added.array.size() == 1 && field(added.array[0], "id").number == 256 &&
          field(added.array[0], "content").string == "<|end_of_text|>" &&
          field(added.array[0], "special").boolean);
    json::Value tc, stm, gen;
    CHECK(json::parse(read_file(out + "/tokenizer_config.json"), &tc, &err));
    CHECK(field(tc, "eos_token").string == "<|end_of_text|>");
    CHECK(json::parse(read_file(out + "/special_tokens_map.json"), &stm, &err));
    CHECK(json::parse(read_file(out + "/generation_config.json"), &gen, &err));
    CHECK(field(gen, "eos_token_id").number == 256);
  }
  {
    // import(export(ckpt)): the weights byte for byte, moments zero, step 0, loadable.
    hf::Weights back;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(out, &back, &notes));
    CHECK(notes.empty());
    CHECK(back.config.dim == tiny.dim && back.config.vocab_size == tiny.vocab_size &&
          back.config.max_seq_len == tiny.max_seq_len && back.config.norm_eps == tiny.norm_eps &&
          back.config.rope_theta == tiny.rope_theta && back.config.n_kv_heads == tiny.n_kv_heads);
    CHECK(same_bytes(back.data.data(), original.data(), original.size()));
    const std::string ckpt2 = dir + "/tiny-back.safetensors";
    CHECK_OK(hf::write_engine_checkpoint(ckpt2, back));
    safetensors::File a, b;
    CHECK_OK(safetensors::read(ckpt, &a));
    CHECK_OK(safetensors::read(ckpt2, &b));
    for (const ParamInfo& p : w.params) {
      CHECK(same_bytes(a.tensors[p.name].data.data(), b.tensors[p.name].data.data(), p.numel));
    }
    TrainConfig t;
    t.batch = 1;
    Trainer loaded(tiny, OptimConfig(), t);
    CHECK_OK(loaded.load(ckpt2));
    CHECK(loaded.step() == 0);
    CHECK(same_bytes(loaded.model().weights(), original.data(), original.size()));
    for (float m : loaded.optimizer().m()) CHECK(m == 0.0f);
    for (float v : loaded.optimizer().v()) CHECK(v == 0.0f);
  }
  {
    // forward_logits is the engine's forward: the cross-entropy of its logits is the loss
    // Model::forward returns, bit for bit.
    Model m(tiny);
    std::memcpy(m.weights(), original.data(), 4 * original.size());
    const int B = 2, T = 24;
    std::vector<int32_t> in(B * T), tgt(B * T);
    Rng rng(3);
    for (int i = 0; i < B * T; i++) {
      in[i] = int32_t(rng.next() % 257);
      tgt[i] = int32_t(rng.next() % 257);
    }
    const float loss = m.forward(in.data(), tgt.data(), B, T);
    std::vector<float> logits, losses(B * T);
    CHECK_OK(hf::forward_logits(w, in.data(), B, T, &logits));
    CHECK(logits.size() == size_t(B) * T * tiny.vocab_size);
    cpu::cross_entropy_forward(losses.data(), logits.data(), tgt.data(), B * T, tiny.vocab_size);
    double sum = 0.0;
    for (float l : losses) sum += l;
    CHECK(float(sum / (B * T)) == loss);
    in[5] = tiny.vocab_size;
    CHECK_ERR(hf::forward_logits(w, in.data(), B, T, &logits), "outside the vocabulary");
  }

  // HF directory -> engine checkpoint -> HF directory, on a small configuration.
  const ModelConfig sc = [] {
    ModelConfig c = small_config();
    c.norm_eps = 1e-6f;
    c.rope_theta = 500000.0f;
    return c;
  }();
  const auto sp = hf::layout(sc);
  std::vector<float> hfw(sp.back().offset + sp.back().numel);
  fill(&hfw, 21);
  const std::string src = fresh_dir(dir, "hf-src");
  write_file(src + "/config.json", hf_config());
  write_raw_safetensors(src + "/model.safetensors", hf_tensors(sc, hfw));
  {
    hf::Weights in;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(src, &in, &notes));
    CHECK(in.config.norm_eps == 1e-6f && in.config.rope_theta == 500000.0f &&
          in.config.n_kv_heads == 2 && in.config.max_seq_len == 32);
    const std::string ck = dir + "/small.safetensors";
    CHECK_OK(hf::write_engine_checkpoint(ck, in));
    hf::Weights again;
    CHECK_OK(hf::read_engine_checkpoint(ck, &again));
    const std::string dst = fresh_dir(dir, "hf-dst");
    CHECK_OK(hf::export_hf(again, dst, hf::ExportOptions()));
    safetensors::File f;
    CHECK_OK(safetensors::read(dst + "/model.safetensors", &f));
    CHECK(f.tensors.size() == sp.size());
    for (const RawTensor& t : hf_tensors(sc, hfw)) {
      CHECK(f.tensors.count(t.name) == 1 && f.tensors[t.name].shape == t.shape);
      CHECK(bytes_of(f.tensors[t.name].data.data(), f.tensors[t.name].data.size()) == t.bytes);
    }
    json::Value cfg;
    std::string err;
    CHECK(json::parse(read_file(dst + "/config.json"), &cfg, &err));
    CHECK(field(cfg, "rms_norm_eps").number == 1e-6);
    CHECK(field(cfg, "rope_theta").number == 500000.0);
  }
  {
    // Defaults of Hugging Face's LlamaConfig: no num_key_value_heads -> one per head; no
    // rms_norm_eps -> 1e-6; rope_theta inside rope_parameters.
    const std::string d = fresh_dir(dir, "hf-defaults");
    ModelConfig c = sc;
    c.n_kv_heads = 4;
    const auto lp = hf::layout(c);
    std::vector<float> v(lp.back().offset + lp.back().numel);
    fill(&v, 5);
    write_file(
        d + "/config.json",
        hf_config({{"num_key_value_heads", ""},
                   {"rms_norm_eps", ""},
                   {"rope_theta", ""},
                   {"rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 250000.0}"}}));
    write_raw_safetensors(d + "/model.safetensors", hf_tensors(c, v));
    hf::Weights in;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(d, &in, &notes));
    CHECK(in.config.n_kv_heads == 4 && in.config.norm_eps == 1e-6f &&
          in.config.rope_theta == 250000.0f);
  }
  {
    // BF16 and F16 tensors are widened exactly; an old inv_freq buffer is ignored.
    const std::string d = fresh_dir(dir, "hf-bf16");
    write_file(d + "/config.json", hf_config());
    std::vector<RawTensor> ts = hf_tensors(sc, hfw);
    std::vector<float> expect = hfw;
    for (RawTensor& t : ts) {
      const ParamInfo* p = nullptr;
      for (const ParamInfo& q : sp) {
        if (q.name == t.name) p = &q;
      }
      std::string raw;
      for (size_t i = 0; i < p->numel; i++) {
        uint32_t bits;
        std::memcpy(&bits, hfw.data() + p->offset + i, 4);
        uint16_t h = uint16_t(bits >> 16);  // truncation: any bf16 pattern will do
        if (t.name == "model.norm.weight") {
          // F16 patterns: subnormals, zero, -0, the largest finite, 1, 1/3.
          const uint16_t f16[] = {0x0001, 0x03ff, 0x0000, 0x8000, 0x7bff, 0x3c00, 0x3555, 0x8401};
          h = f16[i % 8];
          const float val[] = {
              std::ldexp(1.0f, -24),    std::ldexp(1023.0f, -24), 0.0f, -0.0f, 65504.0f, 1.0f,
              std::ldexp(1365.0f, -12), -std::ldexp(1025.0f, -24)};
          expect[p->offset + i] = val[i % 8];
        } else {
          const uint32_t wide = uint32_t(h) << 16;
          std::memcpy(&expect[p->offset + i], &wide, 4);
        }
        raw.append(reinterpret_cast<const char*>(&h), 2);
      }
      t.dtype = t.name == "model.norm.weight" ? "F16" : "BF16";
      t.bytes = raw;
    }
    ts.push_back(
        {"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {8}, std::string(32, '\0')});
    write_raw_safetensors(d + "/model.safetensors", ts);
    hf::Weights in;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(d, &in, &notes));
    CHECK(same_bytes(in.data.data(), expect.data(), expect.size()));
    bool noted_bf16 = false, noted_inv = false;
    for (const std::string& n : notes) {
      noted_bf16 |= contains(n, "BF16");
      noted_inv |= contains(n, "inv_freq");
    }
    CHECK(noted_bf16 && noted_inv);
  }
  {
    // Sharded weights through model.safetensors.index.json.
    const std::string d = fresh_dir(dir, "hf-sharded");
    write_file(d + "/config.json", hf_config());
    std::vector<RawTensor> ts = hf_tensors(sc, hfw), a, b;
    std::string map;
    for (size_t i = 0; i < ts.size(); i++) {
      const char* file =
          i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
      (i % 2 ? b : a).push_back(ts[i]);
      map += (map.empty() ? "" : ", ") + json::quote(ts[i].name) + ": " + json::quote(file);
    }
    write_raw_safetensors(d + "/model-00001-of-00002.safetensors", a);
    write_raw_safetensors(d + "/model-00002-of-00002.safetensors", b);
    write_file(d + "/model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {" + map + "}}");
    hf::Weights in;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(d, &in, &notes));
    CHECK(same_bytes(in.data.data(), hfw.data(), hfw.size()));
    write_file(d + "/model.safetensors.index.json",
               "{\"weight_map\": {\"lm_head.weight\": \"../hf-src/model.safetensors\"}}");
    CHECK_ERR(try_import(d), "expected a file name");
  }
  {
    // Tied embeddings are untied by copying; without the flag a missing head is refused.
    const std::string d = fresh_dir(dir, "hf-tied");
    write_file(d + "/config.json", hf_config({{"tie_word_embeddings", "true"}}));
    std::vector<RawTensor> ts = hf_tensors(sc, hfw);
    ts.erase(ts.begin());  // lm_head.weight (reverse order)
    CHECK(ts.front().name == "model.norm.weight");
    write_raw_safetensors(d + "/model.safetensors", ts);
    hf::Weights in;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(d, &in, &notes));
    CHECK(same_bytes(in.data.data() + in.params.back().offset, hfw.data(), in.params.back().numel));
    CHECK(notes.size() == 1 && contains(notes[0], "tie_word_embeddings"));
    write_file(d + "/config.json", hf_config());
    CHECK_ERR(try_import(d), "lm_head.weight missing and tie_word_embeddings is false");
  }

  // Refusals of what the engine cannot represent, each naming the field and its value.
  const std::string bad = fresh_dir(dir, "hf-bad");
  write_raw_safetensors(bad + "/model.safetensors", hf_tensors(sc, hfw));
  auto refused = [&](const std::vector<std::pair<std::string, std::string>>& edits,
                     const std::string& part) {
    write_file(bad + "/config.json", hf_config(edits));
    const std::string err = try_import(bad);
    if (!contains(err, part)) {
      std::fprintf(stderr, "tampered config.json gave \"%s\", expected \"%s\"\n", err.c_str(),
                   part.c_str());
      std::exit(1);
    }
  };
  refused({{"rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}"}},
          "rope_scaling is {\"rope_type\": \"llama3\", \"factor\": 8}");
  refused({{"attention_bias", "true"}}, "attention_bias is true");
  refused({{"mlp_bias", "true"}}, "mlp_bias is true");
  refused({{"model_type", "\"mistral\""}}, "model_type is \"mistral\"");
  refused({{"model_type", ""}}, "model_type is missing");
  refused({{"architectures", "[\"LlamaForSequenceClassification\"]"}},
          "architectures is [\"LlamaForSequenceClassification\"]");
  refused({{"hidden_act", "\"gelu\""}}, "hidden_act is \"gelu\"");
  refused({{"head_dim", "32"}}, "head_dim is 32");
  refused({{"hidden_size", "\"64\""}}, "hidden_size is \"64\", expected a positive integer");
  refused({{"hidden_size", "64.5"}}, "hidden_size is 64.5");
  refused({{"vocab_size", ""}}, "vocab_size is missing");
  refused({{"num_attention_heads", "3"}}, "must be divisible by n_heads (3)");
  refused({{"num_hidden_layers", "2000000000"}},
          "num_hidden_layers is 2000000000 but the weights hold 21 tensors");
  refused({{"rms_norm_eps", "-1e-5"}}, "rms_norm_eps is -1e-05");
  refused({{"rope_parameters", "{\"rope_type\": \"yarn\", \"factor\": 4.0}"}},
          "rope_parameters.rope_type is \"yarn\"");
  refused({{"quantization_config", "{\"quant_method\": \"gptq\"}"}}, "quantization_config is");
  refused({{"sliding_window", "4096"}}, "sliding_window is 4096");
  refused({{"tie_word_embeddings", "\"yes\""}}, "tie_word_embeddings is \"yes\"");
  refused({{"vocab_size", "301"}},
          "model.embed_tokens.weight has shape [300, 64], config.json gives [301, 64]");
  write_file(bad + "/config.json", hf_config({{"rope_scaling", "{\"rope_type\": \"default\"}"}}));
  CHECK_OK(try_import(bad));
  write_file(bad + "/config.json", "{\"model_type\": \"llama\",");
  CHECK_ERR(try_import(bad), "config.json: bad JSON");

  // Tensors: an extra bias, a wrong dtype, a non-finite value, malformed files.
  write_file(bad + "/config.json", hf_config());
  {
    std::vector<RawTensor> ts = hf_tensors(sc, hfw);
    ts.push_back({"model.layers.1.self_attn.q_proj.bias", "F32", {64}, std::string(256, '\0')});
    write_raw_safetensors(bad + "/model.safetensors", ts);
    CHECK_ERR(try_import(bad), "model.layers.1.self_attn.q_proj.bias has no place");
    ts.pop_back();
    ts[3].dtype = "I32";
    write_raw_safetensors(bad + "/model.safetensors", ts);
    CHECK_ERR(try_import(bad), ts[3].name + " has dtype I32");
    ts = hf_tensors(sc, hfw);
    const float nan = std::nanf("");
    std::memcpy(&ts[0].bytes[40], &nan, 4);
    write_raw_safetensors(bad + "/model.safetensors", ts);
    CHECK_ERR(try_import(bad), "lm_head.weight has a non-finite value at index 10");
    ts = hf_tensors(sc, hfw);
    write_raw_safetensors(bad + "/model.safetensors", ts);
    const std::string whole = read_file(bad + "/model.safetensors");
    write_file(bad + "/model.safetensors", whole.substr(0, whole.size() - 100));
    CHECK_ERR(try_import(bad), "data_offsets outside the file");
    write_file(bad + "/model.safetensors", std::string("\xff\xff\xff\xff\0\0\0\0{}", 10));
    CHECK_ERR(try_import(bad), "header length");
    write_file(bad + "/model.safetensors", std::string("\x08\0\0\0\0\0\0\0{\"a\":1} ", 16));
    CHECK_ERR(try_import(bad), "tensor a lacks dtype");
    write_file(bad + "/model.safetensors", std::string("\x04\0\0\0\0\0\0\0{[]}", 12));
    CHECK_ERR(try_import(bad), "bad header JSON");
    write_file(bad + "/model.safetensors", "abc");
    CHECK_ERR(try_import(bad), "too short");
    CHECK(std::remove((bad + "/model.safetensors").c_str()) == 0);
    write_file(bad + "/pytorch_model.bin", "x");
    CHECK_ERR(try_import(bad), "only safetensors weights are read");
    CHECK_ERR(try_import(dir + "/no-such-dir"), "cannot open");
  }

  // Engine checkpoints that are not: another format, a truncated file.
  {
    hf::Weights x;
    CHECK_ERR(hf::read_engine_checkpoint(src + "/model.safetensors", &x),
              "not an engine checkpoint (metadata format is \"pt\"");
    const std::string whole = read_file(ckpt);
    write_file(dir + "/truncated.safetensors", whole.substr(0, whole.size() / 2));
    CHECK_ERR(hf::read_engine_checkpoint(dir + "/truncated.safetensors", &x), "data_offsets");
    CHECK_ERR(hf::export_hf(x, dir + "/never", hf::ExportOptions()), "no weights to export");
  }
  {
    // Export options: no tokenizer, or one the vocabulary cannot hold.
    hf::Weights small;
    small.config = small_config();
    small.config.vocab_size = 200;
    small.params = hf::layout(small.config);
    small.data.assign(small.params.back().offset + small.params.back().numel, 0.25f);
    CHECK_ERR(hf::export_hf(small, dir + "/x", hf::ExportOptions()),
              "the byte tokenizer needs a vocabulary of at least 257");
    hf::ExportOptions none;
    none.tokenizer = "none";
    const std::string d = fresh_dir(dir, "no-tok");
    CHECK_OK(hf::export_hf(small, d, none));
    CHECK(read_file(d + "/tokenizer.json").empty());
    json::Value cfg;
    std::string err;
    CHECK(json::parse(read_file(d + "/config.json"), &cfg, &err));
    CHECK(field(cfg, "eos_token_id").kind == json::Value::kNull);
    none.tokenizer = "gpt2";
    CHECK_ERR(hf::export_hf(small, d, none), "tokenizer \"gpt2\": expected byte or none");
    write_file(d + "/model.safetensors.index.json", "{}");
    none.tokenizer = "none";
    CHECK_ERR(hf::export_hf(small, d, none), "already holds model.safetensors.index.json");
  }

  // Worker checkpoints (worker/checkpoint.ts) with the run's resolved configuration.
  {
    const ModelConfig c = small_config();
    const auto lp = hf::layout(c);
    std::vector<float> v(lp.back().offset + lp.back().numel);
    fill(&v, 9);
    auto worker_ckpt = [&](const std::string& path, const std::vector<ParamInfo>& params,
                           size_t drop, bool momentum = false) {
      std::string header = "{\"run\":\"demo\",\"round\":9,\"tensors\":[";
      for (size_t i = 0; i < params.size(); i++) {
        header += std::string(i ? "," : "") + "{\"name\":" + json::quote(params[i].name) +
                  ",\"dims\":[" + std::to_string(params[i].shape[0]) +
                  (params[i].shape.size() > 1 ? "," + std::to_string(params[i].shape[1]) : "") +
                  "]}";
      }
      header += momentum ? "],\"momentum\":true}" : "]}";
      std::string bytes = "covenant-ckpt\n";
      for (int i = 0; i < 4; i++) bytes.push_back(char(uint32_t(header.size()) >> (8 * i)));
      bytes += header + bytes_of(v.data(), v.size() - drop);
      if (momentum) {  // a nesterov run's outer momentum follows the weights
        std::vector<float> m(v.size(), -0.5f);
        bytes += bytes_of(m.data(), m.size());
      }
      write_file(path, bytes);
    };
    const std::string run_json = dir + "/run.json";
    write_file(
        run_json,
        "{\"apiVersion\":\"covenant.io/v1alpha1\",\"kind\":\"ResolvedRunConfig\","
        "\"run\":{\"name\":\"demo\",\"namespace\":\"default\",\"uid\":\"\",\"generation\":1},"
        "\"model\":{\"preset\":\"llama3-tiny\",\"layers\":2,\"hidden\":64,\"heads\":4,"
        "\"kvHeads\":2,\"ffn\":160,\"vocab\":300,\"ropeTheta\":10000,\"normEps\":1e-5,"
        "\"parameters\":1},\"data\":{\"sequenceLength\":32}}");
    ModelConfig rc;
    std::string run;
    CHECK_OK(hf::config_from_run_json(run_json, &rc, &run));
    CHECK(run == "demo" && rc.dim == 64 && rc.n_heads == 4 && rc.n_kv_heads == 2 &&
          rc.max_seq_len == 32 && rc.norm_eps == 1e-5f && rc.rope_theta == 10000.0f);
    const std::string wc = dir + "/checkpoint-9";
    worker_ckpt(wc, lp, 0);
    CHECK(hf::is_worker_checkpoint(wc) && !hf::is_worker_checkpoint(ckpt));
    hf::Weights ww;
    hf::WorkerCheckpointInfo info;
    CHECK_OK(hf::read_worker_checkpoint(wc, rc, &ww, &info));
    CHECK(info.run == "demo" && info.round == 9 && info.data_bytes == 4 * v.size());
    CHECK(same_bytes(ww.data.data(), v.data(), v.size()));
    const std::string d = fresh_dir(dir, "from-worker");
    CHECK_OK(hf::export_hf(ww, d, hf::ExportOptions()));
    hf::Weights back;
    std::vector<std::string> notes;
    CHECK_OK(hf::import_hf(d, &back, &notes));
    CHECK(same_bytes(back.data.data(), v.data(), v.size()));
    // A nesterov run's checkpoint: the weights are read, the momentum after them left out.
    worker_ckpt(wc, lp, 0, true);
    CHECK_OK(hf::read_worker_checkpoint(wc, rc, &ww, &info));
    CHECK(info.momentum && info.data_bytes == 8 * v.size());
    CHECK(same_bytes(ww.data.data(), v.data(), v.size()));
    worker_ckpt(wc, lp, 1, true);
    CHECK_ERR(hf::read_worker_checkpoint(wc, rc, &ww, &info), "(weights and outer momentum)");
    worker_ckpt(wc, lp, 1);
    CHECK_ERR(hf::read_worker_checkpoint(wc, rc, &ww, &info), "checkpoint body is");
    ModelConfig other = rc;
    other.n_kv_heads = 4;
    worker_ckpt(wc, lp, 0);
    CHECK_ERR(hf::read_worker_checkpoint(wc, other, &ww, &info),
              "is model.layers.0.self_attn.k_proj.weight [32, 64], the model has "
              "model.layers.0.self_attn.k_proj.weight [64, 64]");
    write_file(run_json, "{\"kind\":\"ResolvedRunConfig\",\"model\":{\"hidden\":64},\"data\":{}}");
    CHECK_ERR(hf::config_from_run_json(run_json, &rc, &run), "model.vocab is missing");
    write_file(run_json, "{\"kind\":\"TrainingRun\"}");
    CHECK_ERR(hf::config_from_run_json(run_json, &rc, &run), "not a resolved run configuration");
  }

  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("hf: export/import round trips bit-identical; config, tokenizer, refusals ok\n");
  return 0;
}
