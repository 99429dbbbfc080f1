// Token shards (format in docs/token-shards.md) and deterministic sequence sampling.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace covenant::engine {

constexpr char kShardMagic[8] = {'C', 'V', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kShardVersion = 1;
constexpr size_t kShardHeaderBytes = 64;

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_bytes = 2;  // 2 (uint16) or 4 (uint32), little-endian
  uint32_t vocab_size = 0;
  uint32_t tokenizer = 0;  // 1 byte-level, 2 BPE
  uint64_t num_tokens = 0;
  uint64_t vocab_hash = 0;  // FNV-1a of the BPE file, 0 for byte-level
};

std::string write_shard(const std::string& path, const ShardHeader& header,
                        const std::vector<int32_t>& tokens);

struct Shard {
  std::string path;
  ShardHeader header;
  std::vector<int32_t> tokens;
};
// Reads and validates a shard: magic, version, sizes, and every token below vocab_size.
std::string read_shard(const std::string& path, Shard* out);

// Start offset of sequence `row` of optimizer step `step` in a shard of `num_tokens` tokens,
// for sequences of seq_len + 1 tokens (inputs and shifted targets). A pure function of its
// arguments: every process that knows (seed, shard, step, row) reads the same tokens.
uint64_t sample_offset(uint64_t seed, uint64_t shard_id, uint64_t step, uint64_t row,
                       uint64_t num_tokens, int seq_len);

uint64_t fnv1a(const std::string& bytes);

}  // namespace covenant::engine
