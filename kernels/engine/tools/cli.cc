// covenant-engine: the engine's command line.
//   info <preset> [--batch N] [--seq N]           configuration, parameters, memory needs
//   tokenize --out DIR [--bpe FILE] [--shard-tokens N] FILE...   text files -> token shards
//   train --preset P --shard FILE... [--steps N] [--batch N] [--seq N] [--lr X] [--save FILE]
//   bench [--preset P] [--batch N] [--seq N] [--steps N]        CPU tokens/s of training steps
//   grads --load CKPT --shard FILE --out FILE      loss and gradients for an outside comparison
//   export --hf DIR [--tokenizer byte|none] [--run-config run.json] CKPT   -> Hugging Face LLaMA
//   import --hf DIR OUT                            Hugging Face LLaMA -> engine checkpoint
//   logits [--run-config run.json] CKPT TOKENS OUT  logits of token sequences (safetensors)
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "hf.h"
#include "rng.h"
#include "safetensors.h"
#include "shards.h"
#include "tokenizer.h"
#include "trainer.h"

using namespace covenant::engine;

namespace {

struct Args {
  std::map<std::string, std::vector<std::string>> flags;
  std::vector<std::string> positional;
  std::string get(const std::string& k, const std::string& def) const {
    auto it = flags.find(k);
    return it == flags.end() || it->second.empty() ? def : it->second.back();
  }
  long num(const std::string& k, long def) const {
    const std::string v = get(k, "");
    if (v.empty()) return def;
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (*end != '\0') {
      std::fprintf(stderr, "--%s: expected an integer, got \"%s\"\n", k.c_str(), v.c_str());
      std::exit(2);
    }
    return n;
  }
};

Args parse(int argc, char** argv, int from) {
  Args a;
  for (int i = from; i < argc; i++) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", s.c_str());
        std::exit(2);
      }
      a.flags[s.substr(2)].push_back(argv[++i]);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

ModelConfig preset_or_die(const std::string& name) {
  ModelConfig c;
  if (!preset(name, &c)) {
    std::fprintf(stderr, "unknown preset \"%s\"; known:", name.c_str());
    for (const auto& n : preset_names()) std::fprintf(stderr, " %s", n.c_str());
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return c;
}

double gib(uint64_t b) { return double(b) / double(1ULL << 30); }

int cmd_info(const Args& a) {
  if (a.positional.empty()) {
    std::fprintf(stderr, "usage: covenant-engine info <preset> [--batch N] [--seq N]\n");
    return 2;
  }
  const ModelConfig c = preset_or_die(a.positional[0]);
  const int batch = int(a.num("batch", 1)), seq = int(a.num("seq", c.max_seq_len));
  const MemoryEstimate m = estimate_memory(c, batch, seq);
  std::printf("preset        %s\n", c.name.c_str());
  std::printf(
      "shape         vocab %d, dim %d, layers %d, heads %d (kv %d), ffn %d, seq %d, rope theta "
      "%g\n",
      c.vocab_size, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.max_seq_len,
      c.rope_theta);
  std::printf("parameters    %llu (%.3f B)\n", (unsigned long long)m.parameters,
              m.parameters / 1e9);
  std::printf("weights       %.2f GiB fp32 master, %.2f GiB bf16 compute copy\n",
              gib(m.weights_fp32), gib(m.weights_bf16));
  std::printf("gradients     %.2f GiB fp32\n", gib(m.gradients_fp32));
  std::printf("AdamW state   %.2f GiB fp32 (two moments)\n", gib(m.adamw_state));
  std::printf("activations   %.2f GiB fp32 for batch %d x seq %d (CPU backend)\n",
              gib(m.activations_fp32), batch, seq);
  std::printf("total (CPU)   %.2f GiB; weights+grads+AdamW per GPU when sharded over 8: %.2f GiB\n",
              gib(m.total_fp32), gib(m.weights_fp32 + m.gradients_fp32 + m.adamw_state) / 8);
  return 0;
}

int cmd_tokenize(const Args& a) {
  const std::string out = a.get("out", "");
  if (out.empty() || a.positional.empty()) {
    std::fprintf(
        stderr,
        "usage: covenant-engine tokenize --out DIR [--bpe FILE] [--shard-tokens N] FILE...\n");
    return 2;
  }
  std::unique_ptr<Tokenizer> tok;
  uint64_t vocab_hash = 0;
  const std::string bpe_path = a.get("bpe", "");
  if (bpe_path.empty()) {
    tok = std::make_unique<ByteTokenizer>();
  } else {
    auto bpe = std::make_unique<BpeTokenizer>();
    const std::string err = bpe->load(bpe_path);
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    std::ifstream in(bpe_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    vocab_hash = fnv1a(ss.str());
    tok = std::move(bpe);
  }
  const long per_shard = a.num("shard-tokens", 100000000);
  if (per_shard < 1024) {
    std::fprintf(stderr, "--shard-tokens must be at least 1024\n");
    return 2;
  }
  if (std::system(("mkdir -p '" + out + "'").c_str()) != 0) return 1;
  ShardHeader h;
  h.vocab_size = uint32_t(tok->vocab_size());
  h.token_bytes = h.vocab_size <= 65536 ? 2 : 4;
  h.tokenizer = tok->kind();
  h.vocab_hash = vocab_hash;
  std::vector<int32_t> buf;
  int shard = 0;
  uint64_t total = 0;
  auto flush = [&](bool all) {
    while (buf.size() >= size_t(per_shard) || (all && !buf.empty())) {
      const size_t n = std::min(buf.size(), size_t(per_shard));
      std::vector<int32_t> part(buf.begin(), buf.begin() + long(n));
      char name[64];
      std::snprintf(name, sizeof name, "/shard_%05d.bin", shard++);
      const std::string err = write_shard(out + name, h, part);
      if (!err.empty()) {
        std::fprintf(stderr, "%s\n", err.c_str());
        std::exit(1);
      }
      std::printf("%s%s: %zu tokens\n", out.c_str(), name, n);
      total += n;
      buf.erase(buf.begin(), buf.begin() + long(n));
    }
  };
  for (const std::string& f : a.positional) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot open %s\n", f.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    tok->encode(ss.str(), &buf);
    buf.push_back(tok->eos());
    flush(false);
  }
  flush(true);
  std::printf("%llu tokens in %d shards (vocabulary %u)\n", (unsigned long long)total, shard,
              h.vocab_size);
  return 0;
}

ModelConfig model_from(const Args& a) {
  ModelConfig c = preset_or_die(a.get("preset", "llama3-tiny"));
  return c;
}

int cmd_train(const Args& a) {
  const ModelConfig c = model_from(a);
  OptimConfig o;
  o.lr = std::strtof(a.get("lr", "1e-3").c_str(), nullptr);
  o.total_steps = a.num("steps", 100);
  o.warmup_steps = a.num("warmup", o.total_steps / 10);
  TrainConfig t;
  t.batch = int(a.num("batch", 8));
  t.seq_len = int(a.num("seq", 0));
  t.grad_accum = int(a.num("accum", 1));
  t.seed = uint64_t(a.num("seed", 0));
  t.data_seed = uint64_t(a.num("data-seed", 0));
  auto it = a.flags.find("shard");
  if (it == a.flags.end()) {
    std::fprintf(stderr, "train needs at least one --shard FILE\n");
    return 2;
  }
  try {
    Trainer trainer(c, o, t);
    for (size_t i = 0; i < it->second.size(); i++) {
      const std::string err = trainer.attach_shard(i, it->second[i]);
      if (!err.empty()) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 1;
      }
    }
    const std::string resume = a.get("load", "");
    if (!resume.empty()) {
      const std::string err = trainer.load(resume);
      if (!err.empty()) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 1;
      }
    }
    while (trainer.step() < o.total_steps) {
      const auto t0 = std::chrono::steady_clock::now();
      const StepResult r = trainer.train_step();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("step %5lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tokens/s\n", (long long)r.step,
                  r.loss, r.lr, r.grad_norm,
                  double(t.batch) * t.grad_accum * trainer.train_config().seq_len / s);
      std::fflush(stdout);
    }
    const std::string save = a.get("save", "");
    if (!save.empty()) {
      const std::string err = trainer.save(save);
      if (!err.empty()) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}

int cmd_bench(const Args& a) {
  ModelConfig c = model_from(a);
  const int B = int(a.num("batch", 8)), T = int(a.num("seq", c.max_seq_len));
  const int steps = int(a.num("steps", 5));
  if (T <= 0 || T > c.max_seq_len || B <= 0 || steps <= 0) {
    std::fprintf(stderr, "bench: batch, seq and steps must be positive, seq <= %d\n",
                 c.max_seq_len);
    return 2;
  }
  Model model(c);
  model.init(1);
  AdamW opt(model.num_params());
  OptimConfig o;
  Rng rng(7);
  std::vector<int32_t> in(size_t(B) * T), tgt(size_t(B) * T);
  for (size_t i = 0; i < in.size(); i++) {
    in[i] = int32_t(rng.next() % 256);
    tgt[i] = int32_t(rng.next() % 256);
  }
  auto step = [&] {
    model.zero_grad();
    model.forward(in.data(), tgt.data(), B, T);
    model.backward(1.0f);
    opt.step(model, o, 1e-4f);
  };
  step();  // warm-up: allocation, page faults
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  for (int s = 0; s < steps; s++) step();
  const double cpu_secs = double(std::clock() - c0) / CLOCKS_PER_SEC;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = double(B) * T * steps;
  // Model FLOPs per token: 6 per parameter (forward + backward) plus causal attention
  // (QK^T and PV, forward + backward, about half the T x T square).
  const double flops = 6.0 * double(parameter_count(c)) + 6.0 * c.n_layers * double(T) * c.dim;
  // Wall-clock rate, and the rate per CPU-second (what the threads got; robust to a busy host).
  std::printf(
      "%s batch %d seq %d threads %d: %.0f tokens/s (%.2f GFLOP/s), %.3f s/step; "
      "%.0f tokens per CPU-second\n",
      c.name.c_str(), B, T, omp_get_max_threads(), tokens / secs, flops * tokens / secs / 1e9,
      secs / steps, tokens / cpu_secs);
  return 0;
}

// Loss and gradients of a checkpoint's weights on the first sequences of a shard, for
// comparison with an independent implementation (scripts/torch_reference.py).
int cmd_grads(const Args& a) {
  const std::string ckpt = a.get("load", ""), shard_path = a.get("shard", ""),
                    out = a.get("out", "");
  if (ckpt.empty() || shard_path.empty() || out.empty()) {
    std::fprintf(stderr,
                 "usage: covenant-engine grads --preset P --load CKPT --shard FILE --out FILE "
                 "[--batch N] [--seq N]\n");
    return 2;
  }
  const ModelConfig c = model_from(a);
  const int B = int(a.num("batch", 2)), T = int(a.num("seq", c.max_seq_len));
  try {
    TrainConfig t;
    t.batch = B;
    t.seq_len = T;
    Trainer trainer(c, OptimConfig(), t);
    std::string err = trainer.load(ckpt);
    Shard s;
    if (err.empty()) err = read_shard(shard_path, &s);
    if (err.empty() && s.tokens.size() < size_t(B) * (T + 1)) err = shard_path + ": too few tokens";
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    Model& m = trainer.model();
    m.zero_grad();
    const float loss = trainer.eval_loss(s.tokens.data(), B, T);
    m.backward(1.0f);
    std::vector<safetensors::TensorRef> refs;
    for (const ParamInfo& p : m.params())
      refs.push_back({"grad." + p.name, p.shape, m.grads() + p.offset});
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", loss);
    err = safetensors::write(
        out, refs, {{"loss", buf}, {"batch", std::to_string(B)}, {"seq_len", std::to_string(T)}});
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    std::printf("loss %s over %d x %d tokens; gradients in %s\n", buf, B, T, out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}

// An engine checkpoint, or a worker checkpoint with the run's resolved configuration.
std::string load_weights(const Args& a, const std::string& path, hf::Weights* w) {
  const std::string run_config = a.get("run-config", "");
  if (!hf::is_worker_checkpoint(path)) {
    const std::string err = hf::read_engine_checkpoint(path, w);
    if (err.empty() && !run_config.empty()) {
      std::fprintf(stderr, "note: %s is an engine checkpoint; its own shape is used, not %s\n",
                   path.c_str(), run_config.c_str());
    }
    return err;
  }
  if (run_config.empty()) {
    return path +
           " is a worker checkpoint, which does not record the model's heads, rotary theta, "
           "norm epsilon or sequence length: pass the run's run.json with --run-config";
  }
  ModelConfig c;
  std::string run;
  std::string err = hf::config_from_run_json(run_config, &c, &run);
  if (!err.empty()) return err;
  hf::WorkerCheckpointInfo info;
  err = hf::read_worker_checkpoint(path, c, w, &info);
  if (!err.empty()) return err;
  if (!run.empty() && info.run != run) {
    return path + " is a checkpoint of run " + info.run + ", " + run_config + " is of run " + run;
  }
  std::printf(
      "worker checkpoint: run %s, weights after round %lld; fp32 body %llu bytes at offset %llu "
      "(%s)\n",
      info.run.c_str(), (long long)info.round, (unsigned long long)info.data_bytes,
      (unsigned long long)info.data_offset,
      info.momentum ? "weights, then the outer momentum, which the export leaves out"
                    : "its SHA-256 is the state bucket's digest");
  return "";
}

int cmd_export(const Args& a) {
  const std::string dir = a.get("hf", "");
  if (dir.empty() || a.positional.size() != 1) {
    std::fprintf(stderr,
                 "usage: covenant-engine export --hf DIR [--tokenizer byte|none] "
                 "[--run-config run.json] CHECKPOINT\n");
    return 2;
  }
  hf::Weights w;
  std::string err = load_weights(a, a.positional[0], &w);
  hf::ExportOptions o;
  o.tokenizer = a.get("tokenizer", "byte");
  if (err.empty()) err = hf::export_hf(w, dir, o);
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  const ModelConfig& c = w.config;
  std::printf("%s: LlamaForCausalLM, %zu tensors, %zu parameters (fp32, %.1f MiB)\n", dir.c_str(),
              w.params.size(), w.data.size(), 4.0 * double(w.data.size()) / (1 << 20));
  std::printf(
      "  hidden %d, layers %d, heads %d (kv %d), ffn %d, vocab %d, max positions %d, "
      "rope_theta %s, rms_norm_eps %s\n",
      c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size, c.max_seq_len,
      hf::float_text(c.rope_theta).c_str(), hf::float_text(c.norm_eps).c_str());
  std::printf("  files: config.json model.safetensors%s\n",
              o.tokenizer == "byte" ? " tokenizer.json tokenizer_config.json "
                                      "special_tokens_map.json generation_config.json"
                                    : "");
  return 0;
}

int cmd_import(const Args& a) {
  const std::string dir = a.get("hf", "");
  if (dir.empty() || a.positional.size() != 1) {
    std::fprintf(stderr, "usage: covenant-engine import --hf DIR OUT-CHECKPOINT\n");
    return 2;
  }
  hf::Weights w;
  std::vector<std::string> notes;
  std::string err = hf::import_hf(dir, &w, &notes);
  if (err.empty()) err = hf::write_engine_checkpoint(a.positional[0], w);
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  const ModelConfig& c = w.config;
  std::printf(
      "%s: engine checkpoint, %zu parameters; vocab %d, dim %d, layers %d, heads %d (kv %d), "
      "ffn %d, max_seq_len %d, rope_theta %s, norm_eps %s; AdamW moments zero, step 0\n",
      a.positional[0].c_str(), w.data.size(), c.vocab_size, c.dim, c.n_layers, c.n_heads,
      c.n_kv_heads, c.ffn_dim, c.max_seq_len, hf::float_text(c.rope_theta).c_str(),
      hf::float_text(c.norm_eps).c_str());
  return 0;
}

// Logits of the sequences in a text file (one sequence of token ids per line, all of one
// length), for comparison with another implementation (scripts/hf_check.py).
int cmd_logits(const Args& a) {
  if (a.positional.size() != 3) {
    std::fprintf(stderr,
                 "usage: covenant-engine logits [--run-config run.json] CHECKPOINT TOKENS OUT\n"
                 "  TOKENS: one sequence of token ids per line, every line the same length\n");
    return 2;
  }
  hf::Weights w;
  std::string err = load_weights(a, a.positional[0], &w);
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::ifstream in(a.positional[1]);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", a.positional[1].c_str());
    return 1;
  }
  std::vector<int32_t> tokens;
  int B = 0, T = 0;
  std::string line;
  for (int lineno = 1; std::getline(in, line); lineno++) {
    std::istringstream ls(line);
    std::string word;
    int n = 0;
    while (ls >> word) {
      char* end = nullptr;
      const long id = std::strtol(word.c_str(), &end, 10);
      if (*end != '\0' || id < 0 || id >= w.config.vocab_size) {
        std::fprintf(stderr, "%s:%d: \"%s\" is not a token id in [0, %d)\n",
                     a.positional[1].c_str(), lineno, word.c_str(), w.config.vocab_size);
        return 1;
      }
      tokens.push_back(int32_t(id));
      n++;
    }
    if (n == 0) continue;
    if (B > 0 && n != T) {
      std::fprintf(stderr, "%s:%d: %d tokens, the first sequence has %d\n", a.positional[1].c_str(),
                   lineno, n, T);
      return 1;
    }
    T = n;
    B++;
  }
  if (B == 0) {
    std::fprintf(stderr, "%s: no sequences\n", a.positional[1].c_str());
    return 1;
  }
  std::vector<float> logits;
  err = hf::forward_logits(w, tokens.data(), B, T, &logits);
  if (err.empty()) {
    err = safetensors::write(a.positional[2],
                             {{"logits", {B, T, w.config.vocab_size}, logits.data()}},
                             {{"batch", std::to_string(B)}, {"seq_len", std::to_string(T)}});
  }
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::printf("logits of %d x %d tokens (vocabulary %d) in %s\n", B, T, w.config.vocab_size,
              a.positional[2].c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  const Args a = parse(argc, argv, 2);
  if (cmd == "info") return cmd_info(a);
  if (cmd == "tokenize") return cmd_tokenize(a);
  if (cmd == "train") return cmd_train(a);
  if (cmd == "bench") return cmd_bench(a);
  if (cmd == "grads") return cmd_grads(a);
  if (cmd == "export") return cmd_export(a);
  if (cmd == "import") return cmd_import(a);
  if (cmd == "logits") return cmd_logits(a);
  std::fprintf(
      stderr,
      "usage: covenant-engine <command> [options]\n"
      "  info <preset> [--batch N] [--seq N]\n"
      "  tokenize --out DIR [--bpe FILE] [--shard-tokens N] FILE...\n"
      "  train [--preset P] --shard FILE... [--steps N] [--batch N] [--seq N] [--accum N]\n"
      "        [--lr X] [--warmup N] [--seed N] [--data-seed N] [--load FILE] [--save FILE]\n"
      "  bench [--preset P] [--batch N] [--seq N] [--steps N]\n"
      "  grads [--preset P] --load CKPT --shard FILE --out FILE [--batch N] [--seq N]\n"
      "  export --hf DIR [--tokenizer byte|none] [--run-config run.json] CHECKPOINT\n"
      "  import --hf DIR OUT-CHECKPOINT\n"
      "  logits [--run-config run.json] CHECKPOINT TOKENS OUT\n");
  return cmd.empty() ? 2 : 2;
}
