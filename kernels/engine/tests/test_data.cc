// Token shards, the byte-level and BPE tokenizers, and deterministic sampling.
#include <cstdio>
#include <fstream>
#include <set>

#include "check.h"
#include "shards.h"
#include "tokenizer.h"

using namespace covenant::engine;

namespace {
std::string b64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; k--) out += a[(v >> (6 * k)) & 63];
  }
  if (in.size() - i == 1) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += std::string{a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (in.size() - i == 2) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += std::string{a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
}  // namespace

int main() {
  const std::string dir = temp_dir("data");

  // Byte tokenizer round trip.
  ByteTokenizer bt;
  std::vector<int32_t> toks;
  const std::string text = "Hello, shards! \xc3\xa9t\xc3\xa9 42";
  bt.encode(text, &toks);
  CHECK(toks.size() == text.size());
  CHECK(bt.decode(toks) == text);

  // Shard round trip, 2- and 4-byte tokens.
  for (uint32_t width : {2u, 4u}) {
    ShardHeader h;
    h.token_bytes = width;
    h.vocab_size = width == 2 ? 257 : 100000;
    h.tokenizer = 1;
    std::vector<int32_t> t;
    for (int i = 0; i < 1000; i++) t.push_back((i * 37) % (width == 2 ? 257 : 99991));
    const std::string path = dir + "/s" + std::to_string(width) + ".bin";
    CHECK_OK(write_shard(path, h, t));
    Shard s;
    CHECK_OK(read_shard(path, &s));
    CHECK(s.tokens == t);
    CHECK(s.header.num_tokens == 1000 && s.header.vocab_size == h.vocab_size);
  }
  // Malformed shards are rejected with a reason.
  Shard s;
  write_file(dir + "/bad_magic.bin", std::string(64, 'x'));
  CHECK(read_shard(dir + "/bad_magic.bin", &s).find("magic") != std::string::npos);
  {
    std::ifstream in(dir + "/s2.bin", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_file(dir + "/truncated.bin", bytes.substr(0, bytes.size() - 3));
    CHECK(read_shard(dir + "/truncated.bin", &s).find("does not match") != std::string::npos);
    bytes[64] = char(0xff);  // first token becomes 0x7fff, above the vocabulary of 257
    bytes[65] = char(0x7f);
    write_file(dir + "/oov.bin", bytes);
    CHECK(read_shard(dir + "/oov.bin", &s).find("outside the vocabulary") != std::string::npos);
  }
  CHECK(read_shard(dir + "/missing.bin", &s).find("cannot open") != std::string::npos);
  ShardHeader narrow;
  narrow.token_bytes = 2;
  narrow.vocab_size = 70000;
  CHECK(!write_shard(dir + "/x.bin", narrow, {1}).empty());

  // Sampling is a pure function of (seed, shard, step, row) and stays in range.
  std::set<uint64_t> seen;
  for (uint64_t row = 0; row < 64; row++) {
    const uint64_t a = sample_offset(7, 3, 11, row, 10000, 128);
    CHECK(a == sample_offset(7, 3, 11, row, 10000, 128));
    CHECK(a + 128 < 10000);
    seen.insert(a);
  }
  CHECK(seen.size() > 60);
  CHECK(sample_offset(7, 3, 11, 0, 10000, 128) != sample_offset(8, 3, 11, 0, 10000, 128) ||
        sample_offset(7, 3, 12, 0, 10000, 128) != sample_offset(7, 3, 11, 0, 10000, 128));

  // BPE: 256 single bytes, then merges "th", "the", " the", "in", "ing".
  std::string vocab;
  int rank = 0;
  for (int b = 0; b < 256; b++)
    vocab += b64(std::string(1, char(b))) + " " + std::to_string(rank++) + "\n";
  for (const char* m : {"th", "the", " t", " the", "in", "ing"}) {
    vocab += b64(m) + " " + std::to_string(rank++) + "\n";
  }
  write_file(dir + "/vocab.tiktoken", vocab);
  BpeTokenizer bpe;
  CHECK_OK(bpe.load(dir + "/vocab.tiktoken"));
  CHECK(bpe.vocab_size() == 263 && bpe.eos() == 262);
  std::vector<int32_t> enc;
  bpe.encode("the thing sings", &enc);
  // Lowest rank merges first, so " thing" becomes [ ][th][ing], not [ t][h][ing].
  CHECK((enc == std::vector<int32_t>{257, 32, 256, 261, 32, 115, 261, 115}));
  CHECK(bpe.decode(enc) == "the thing sings");
  std::vector<int32_t> ing;
  bpe.encode("ing", &ing);
  CHECK(ing.size() == 1 && ing[0] == 261);
  std::vector<int32_t> athe;
  bpe.encode(" the", &athe);
  CHECK(athe.size() == 1 && athe[0] == 259);
  // Pre-tokenization keeps a leading space with the word and splits digits in threes.
  const auto pieces = pretokenize("a 12345 b!");
  CHECK(pieces.size() == 6);
  CHECK(pieces[0] == "a" && pieces[1] == " " && pieces[2] == "123" && pieces[3] == "45");
  CHECK(pieces[4] == " b" && pieces[5] == "!");
  // Bad vocabularies.
  CHECK(bpe.load_from_string("!!!! 0\n").find("base64") != std::string::npos);
  CHECK(bpe.load_from_string(b64("a") + " x\n").find("rank") != std::string::npos);
  CHECK(bpe.load_from_string(b64("a") + " 0\n").find("byte") != std::string::npos);
  CHECK(bpe.load_from_string(b64("a") + " 1\n").find("missing") != std::string::npos);
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("ok\n");
  return 0;
}
