// Tokenizers: the built-in byte-level one, and byte-pair encoding from a tiktoken-format
// vocabulary file (one "base64(token bytes) rank" per line, as LLaMA-3 ships).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace covenant::engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual void encode(const std::string& text, std::vector<int32_t>* out) const = 0;
  virtual std::string decode(const std::vector<int32_t>& tokens) const = 0;
  virtual int vocab_size() const = 0;
  virtual int eos() const = 0;        // appended after every document
  virtual uint32_t kind() const = 0;  // recorded in shard headers: 1 byte-level, 2 BPE
};

// Token = byte value; 256 is end-of-document. Vocabulary 257.
class ByteTokenizer : public Tokenizer {
 public:
  void encode(const std::string& text, std::vector<int32_t>* out) const override;
  std::string decode(const std::vector<int32_t>& tokens) const override;
  int vocab_size() const override { return 257; }
  int eos() const override { return 256; }
  uint32_t kind() const override { return 1; }
};

class BpeTokenizer : public Tokenizer {
 public:
  // Returns "" or what is wrong with which line of the file.
  std::string load(const std::string& path);
  std::string load_from_string(const std::string& contents);
  void encode(const std::string& text, std::vector<int32_t>* out) const override;
  std::string decode(const std::vector<int32_t>& tokens) const override;
  // Ranks plus one end-of-document token after the highest rank.
  int vocab_size() const override { return int(id_to_bytes_.size()) + 1; }
  int eos() const override { return int(id_to_bytes_.size()); }
  uint32_t kind() const override { return 2; }

 private:
  void encode_piece(const std::string& piece, std::vector<int32_t>* out) const;
  std::unordered_map<std::string, int32_t> ranks_;
  std::vector<std::string> id_to_bytes_;
};

// Splits text into pre-tokens: an optional leading space with a run of letters, runs of up to
// three digits, an optional leading space with punctuation, and whitespace runs. A simplified
// ASCII-minded version of the pattern tiktoken uses; non-ASCII bytes count as letters.
std::vector<std::string> pretokenize(const std::string& text);

}  // namespace covenant::engine
