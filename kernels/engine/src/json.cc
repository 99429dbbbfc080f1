#include "json.h"

#include <cstdlib>

namespace covenant::engine::json {

const Value* Value::get(const std::string& key) const {
  for (const auto& [k, v] : object) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {
struct Parser {
  const std::string& s;
  size_t i = 0;
  std::string error;
  int depth = 0;

  bool fail(const std::string& what) {
    if (error.empty()) error = what + " at byte " + std::to_string(i);
    return false;
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
  }
  bool literal(const char* word) {
    size_t n = 0;
    while (word[n]) n++;
    if (s.compare(i, n, word) != 0) return fail("unexpected token");
    i += n;
    return true;
  }
  bool str(std::string* out) {
    if (i >= s.size() || s[i] != '"') return fail("expected string");
    i++;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= s.size()) return fail("unterminated escape");
      c = s[i++];
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out->push_back(c);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (i + 4 > s.size()) return fail("short \\u escape");
          unsigned cp = 0;
          for (int k = 0; k < 4; k++) {
            const char h = s[i++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= h - '0';
            else if (h >= 'a' && h <= 'f')
              cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
              cp |= h - 'A' + 10;
            else
              return fail("bad \\u escape");
          }
          // Basic multilingual plane only; surrogate pairs are kept as two code units.
          if (cp < 0x80) {
            out->push_back(char(cp));
          } else if (cp < 0x800) {
            out->push_back(char(0xC0 | (cp >> 6)));
            out->push_back(char(0x80 | (cp & 0x3F)));
          } else {
            out->push_back(char(0xE0 | (cp >> 12)));
            out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out->push_back(char(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    if (i >= s.size()) return fail("unterminated string");
    i++;
    return true;
  }
  bool value(Value* v) {
    if (++depth > 64) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end");
    const char c = s[i];
    bool ok = true;
    if (c == '{') {
      v->kind = Value::kObject;
      i++;
      ws();
      if (i < s.size() && s[i] == '}') {
        i++;
      } else {
        while (ok) {
          ws();
          std::string key;
          if (!str(&key)) return false;
          ws();
          if (i >= s.size() || s[i] != ':') return fail("expected ':'");
          i++;
          Value item;
          if (!value(&item)) return false;
          v->object.emplace_back(std::move(key), std::move(item));
          ws();
          if (i < s.size() && s[i] == ',') {
            i++;
            continue;
          }
          if (i < s.size() && s[i] == '}') {
            i++;
            break;
          }
          return fail("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      v->kind = Value::kArray;
      i++;
      ws();
      if (i < s.size() && s[i] == ']') {
        i++;
      } else {
        while (true) {
          Value item;
          if (!value(&item)) return false;
          v->array.push_back(std::move(item));
          ws();
          if (i < s.size() && s[i] == ',') {
            i++;
            continue;
          }
          if (i < s.size() && s[i] == ']') {
            i++;
            break;
          }
          return fail("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      v->kind = Value::kString;
      ok = str(&v->string);
    } else if (c == 't') {
      v->kind = Value::kBool;
      v->boolean = true;
      ok = literal("true");
    } else if (c == 'f') {
      v->kind = Value::kBool;
      ok = literal("false");
    } else if (c == 'n') {
      ok = literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const char* start = s.c_str() + i;
      char* end = nullptr;
      v->kind = Value::kNumber;
      v->number = std::strtod(start, &end);
      if (end == start) return fail("bad number");
      i += size_t(end - start);
    } else {
      return fail("unexpected character");
    }
    depth--;
    return ok;
  }
};
}  // namespace

bool parse(const std::string& text, Value* out, std::string* error) {
  Parser p{text, 0, "", 0};
  *out = Value();
  if (!p.value(out)) {
    *error = p.error;
    return false;
  }
  p.ws();
  if (p.i != text.size()) {
    *error = "trailing characters at byte " + std::to_string(p.i);
    return false;
  }
  return true;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace covenant::engine::json
