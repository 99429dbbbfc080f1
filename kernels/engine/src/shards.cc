#include "shards.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "rng.h"

namespace covenant::engine {

namespace {
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t(p[i]) << (8 * i);
  return v;
}
}  // namespace

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::string write_shard(const std::string& path, const ShardHeader& header,
                        const std::vector<int32_t>& tokens) {
  if (header.token_bytes != 2 && header.token_bytes != 4) return "token_bytes must be 2 or 4";
  if (header.token_bytes == 2 && header.vocab_size > 65536) {
    return "vocabulary of " + std::to_string(header.vocab_size) + " needs 4-byte tokens";
  }
  uint8_t h[kShardHeaderBytes] = {};
  std::memcpy(h, kShardMagic, 8);
  put32(h + 8, kShardVersion);
  put32(h + 12, header.token_bytes);
  put32(h + 16, header.vocab_size);
  put32(h + 20, header.tokenizer);
  put64(h + 24, tokens.size());
  put64(h + 32, header.vocab_hash);
  std::vector<uint8_t> body(tokens.size() * header.token_bytes);
  for (size_t i = 0; i < tokens.size(); i++) {
    const uint32_t t = uint32_t(tokens[i]);
    if (tokens[i] < 0 || t >= header.vocab_size) {
      return "token " + std::to_string(tokens[i]) + " outside the vocabulary";
    }
    for (uint32_t b = 0; b < header.token_bytes; b++) {
      body[i * header.token_bytes + b] = uint8_t(t >> (8 * b));
    }
  }
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot open " + tmp + ": " + std::strerror(errno);
  bool ok = std::fwrite(h, 1, sizeof h, f) == sizeof h &&
            std::fwrite(body.data(), 1, body.size(), f) == body.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "cannot write shard " + path;
  }
  return "";
}

std::string read_shard(const std::string& path, Shard* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open shard " + path;
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  uint8_t h[kShardHeaderBytes];
  if (size < kShardHeaderBytes || !in.read(reinterpret_cast<char*>(h), sizeof h)) {
    return path + ": shorter than the 64-byte shard header";
  }
  if (std::memcmp(h, kShardMagic, 8) != 0) return path + ": not a token shard (bad magic)";
  Shard s;
  s.path = path;
  s.header.version = get32(h + 8);
  s.header.token_bytes = get32(h + 12);
  s.header.vocab_size = get32(h + 16);
  s.header.tokenizer = get32(h + 20);
  s.header.num_tokens = get64(h + 24);
  s.header.vocab_hash = get64(h + 32);
  if (s.header.version != kShardVersion) {
    return path + ": shard version " + std::to_string(s.header.version) + " is not supported";
  }
  if (s.header.token_bytes != 2 && s.header.token_bytes != 4) {
    return path + ": token width must be 2 or 4 bytes";
  }
  const uint64_t tb = s.header.token_bytes;
  if (s.header.num_tokens > (size - kShardHeaderBytes) / tb ||
      kShardHeaderBytes + s.header.num_tokens * tb != size) {
    return path + ": header says " + std::to_string(s.header.num_tokens) +
           " tokens but the file size does not match";
  }
  std::vector<uint8_t> body(s.header.num_tokens * tb);
  in.read(reinterpret_cast<char*>(body.data()), std::streamsize(body.size()));
  if (!in) return path + ": short read";
  s.tokens.resize(s.header.num_tokens);
  for (uint64_t i = 0; i < s.header.num_tokens; i++) {
    uint32_t t = 0;
    for (uint64_t b = 0; b < tb; b++) t |= uint32_t(body[i * tb + b]) << (8 * b);
    if (t >= s.header.vocab_size) {
      return path + ": token " + std::to_string(t) + " at " + std::to_string(i) +
             " is outside the vocabulary of " + std::to_string(s.header.vocab_size);
    }
    s.tokens[i] = int32_t(t);
  }
  *out = std::move(s);
  return "";
}

uint64_t sample_offset(uint64_t seed, uint64_t shard_id, uint64_t step, uint64_t row,
                       uint64_t num_tokens, int seq_len) {
  const uint64_t span = num_tokens - uint64_t(seq_len);  // caller checks num_tokens > seq_len
  return mix(mix(mix(seed, shard_id), step), row) % span;
}

}  // namespace covenant::engine
