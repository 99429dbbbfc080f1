// Training on real English text (the system's own documentation, gathered at run time) takes
// the held-out loss well below the corpus' unigram entropy (under 0.8 of it).
#include <chrono>
#include <cmath>
#include <cstdio>

#include "check.h"
#include "corpus.h"
#include "rng.h"
#include "tokenizer.h"
#include "trainer.h"

using namespace covenant::engine;

int main() {
  const std::string dir = temp_dir("train");
  ByteTokenizer tok;
  const auto docs = system_documents(4 << 20);
  std::vector<int32_t> train, held_out;
  for (size_t i = 0; i < docs.size(); i++) {
    auto& dst = i % 20 == 19 ? held_out : train;  // every 20th document is held out
    tok.encode(docs[i], &dst);
    dst.push_back(tok.eos());
  }
  std::printf("corpus: %zu documents, %zu training and %zu held-out tokens\n", docs.size(),
              train.size(), held_out.size());
  CHECK(train.size() > 200000 && held_out.size() > 10000);
  ShardHeader h;
  h.vocab_size = 257;
  h.tokenizer = tok.kind();
  CHECK_OK(write_shard(dir + "/train.bin", h, train));

  std::vector<double> counts(257, 0.0);
  for (int32_t t : train) counts[t] += 1;
  double unigram = 0.0;
  for (double c : counts) {
    if (c > 0) unigram -= c / train.size() * std::log(c / train.size());
  }

  // For scale: the conditional entropy of a byte given the previous byte on the training set.
  std::vector<double> pairs(257 * 257, 0.0);
  for (size_t i = 1; i < train.size(); i++) pairs[size_t(train[i - 1]) * 257 + train[i]] += 1;
  double bigram = 0.0;
  for (int a = 0; a < 257; a++) {
    for (int b = 0; b < 257; b++) {
      const double n = pairs[size_t(a) * 257 + b];
      if (n > 0) bigram -= n / (train.size() - 1) * std::log(n / counts[a]);
    }
  }
  std::printf("unigram entropy %.4f nats, bigram conditional entropy %.4f nats\n", unigram, bigram);

  ModelConfig c;
  c.name = "corpus-test";
  c.vocab_size = 257;
  c.dim = 128;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 384;
  c.max_seq_len = 64;
  c.rope_theta = 10000.0f;
  OptimConfig o;
  o.lr = 4e-3f;
  o.warmup_steps = 20;
  o.total_steps = 300;
  o.weight_decay = 0.1f;
  TrainConfig t;
  t.batch = 16;
  t.seed = 1;
  t.data_seed = 2;
  Trainer trainer(c, o, t);
  CHECK_OK(trainer.attach_shard(0, dir + "/train.bin"));

  // Fixed held-out sequences.
  const int count = 64, T = c.max_seq_len;
  std::vector<int32_t> eval(size_t(count) * (T + 1));
  for (int i = 0; i < count; i++) {
    const uint64_t off = sample_offset(3, 0, 0, i, held_out.size(), T);
    std::copy(held_out.begin() + long(off), held_out.begin() + long(off) + T + 1,
              eval.begin() + long(i) * (T + 1));
  }
  const float initial = trainer.eval_loss(eval.data(), count, T);
  const auto start = std::chrono::steady_clock::now();
  StepResult r;
  for (int s = 0; s < o.total_steps; s++) {
    r = trainer.train_step();
    CHECK(std::isfinite(r.loss));
    if (s % 50 == 0)
      std::printf("step %4lld loss %.4f lr %.2e |g| %.3f\n", (long long)r.step, r.loss, r.lr,
                  r.grad_norm);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const float final_loss = trainer.eval_loss(eval.data(), count, T);
  std::printf(
      "unigram entropy %.4f nats; held-out loss %.4f -> %.4f after %lld steps (%.0f s, %.0f "
      "tokens/s)\n",
      unigram, initial, final_loss, (long long)o.total_steps, secs,
      o.total_steps * double(t.batch) * T / secs);
  CHECK(initial > unigram);
  std::printf("held-out loss / unigram entropy = %.3f\n", final_loss / unigram);
  CHECK(final_loss < 0.8 * unigram);
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("ok\n");
  return 0;
}
