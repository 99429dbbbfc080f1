#include "tokenizer.h"

#include <climits>
#include <fstream>
#include <sstream>

namespace covenant::engine {

void ByteTokenizer::encode(const std::string& text, std::vector<int32_t>* out) const {
  for (unsigned char c : text) out->push_back(c);
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& tokens) const {
  std::string s;
  for (int32_t t : tokens) {
    if (t >= 0 && t < 256) s.push_back(char(t));
  }
  return s;
}

namespace {
int b64(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(const std::string& in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = -2;
      } else {
        v[k] = b64(c);
        if (v[k] < 0) return false;
      }
    }
    if (v[2] == -2 && v[3] != -2) return false;
    out->push_back(char((v[0] << 2) | (v[1] >> 4)));
    if (v[2] != -2) out->push_back(char(((v[1] & 15) << 4) | (v[2] >> 2)));
    if (v[3] != -2) out->push_back(char(((v[2] & 3) << 6) | v[3]));
  }
  return true;
}

enum CharClass { kLetter, kDigit, kSpace, kOther };
CharClass classify(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return kLetter;
  if (c >= '0' && c <= '9') return kDigit;
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') return kSpace;
  return kOther;
}
}  // namespace

std::vector<std::string> pretokenize(const std::string& text) {
  std::vector<std::string> pieces;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const size_t start = i;
    CharClass c = classify(text[i]);
    // A single space joins the word or punctuation that follows it.
    if (text[i] == ' ' && i + 1 < n) {
      const CharClass next = classify(text[i + 1]);
      if (next == kLetter || next == kOther) {
        i++;
        c = next;
      }
    }
    if (c == kDigit) {
      size_t k = 0;
      while (i < n && k < 3 && classify(text[i]) == kDigit) i++, k++;
    } else {
      while (i < n && classify(text[i]) == c) i++;
    }
    if (i == start) i++;
    pieces.push_back(text.substr(start, i - start));
  }
  return pieces;
}

std::string BpeTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open BPE vocabulary " + path;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string err = load_from_string(ss.str());
  return err.empty() ? "" : path + ": " + err;
}

std::string BpeTokenizer::load_from_string(const std::string& contents) {
  ranks_.clear();
  id_to_bytes_.clear();
  std::istringstream in(contents);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    lineno++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) {
      return "line " + std::to_string(lineno) + ": expected \"<base64> <rank>\"";
    }
    std::string bytes;
    if (!base64_decode(line.substr(0, sp), &bytes)) {
      return "line " + std::to_string(lineno) + ": token is not valid base64";
    }
    char* end = nullptr;
    const long rank = std::strtol(line.c_str() + sp + 1, &end, 10);
    if (*end != '\0' || rank < 0 || rank > 16000000) {
      return "line " + std::to_string(lineno) + ": rank is not an integer in [0, 16000000]";
    }
    if (size_t(rank) >= id_to_bytes_.size()) id_to_bytes_.resize(size_t(rank) + 1);
    if (!id_to_bytes_[rank].empty() || ranks_.count(bytes)) {
      return "line " + std::to_string(lineno) + ": duplicate rank or token";
    }
    id_to_bytes_[rank] = bytes;
    ranks_[bytes] = int32_t(rank);
  }
  for (size_t r = 0; r < id_to_bytes_.size(); r++) {
    if (id_to_bytes_[r].empty()) return "rank " + std::to_string(r) + " is missing";
  }
  for (int b = 0; b < 256; b++) {
    if (!ranks_.count(std::string(1, char(b)))) {
      return "every single byte must be a token; byte " + std::to_string(b) + " is not";
    }
  }
  return "";
}

void BpeTokenizer::encode_piece(const std::string& piece, std::vector<int32_t>* out) const {
  auto whole = ranks_.find(piece);
  if (whole != ranks_.end()) {
    out->push_back(whole->second);
    return;
  }
  // Greedy lowest-rank merging of adjacent parts, as byte-pair encoding defines it.
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); i++) {
      auto it = ranks_.find(parts[i] + parts[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == INT_MAX) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + long(at) + 1);
  }
  for (const std::string& p : parts) out->push_back(ranks_.at(p));
}

void BpeTokenizer::encode(const std::string& text, std::vector<int32_t>* out) const {
  for (const std::string& piece : pretokenize(text)) encode_piece(piece, out);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& tokens) const {
  std::string s;
  for (int32_t t : tokens) {
    if (t >= 0 && size_t(t) < id_to_bytes_.size()) s += id_to_bytes_[t];
  }
  return s;
}

}  // namespace covenant::engine
