// A small JSON reader and string escaper, enough for safetensors headers.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace covenant::engine::json {

struct Value {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in document order
  const Value* get(const std::string& key) const;
};

// Parses `text`; on failure returns false and sets *error to what and where.
bool parse(const std::string& text, Value* out, std::string* error);
std::string quote(const std::string& s);

}  // namespace covenant::engine::json
