#include "safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "json.h"

namespace covenant::engine::safetensors {

namespace {
constexpr uint64_t kMaxHeader = 100 << 20;

bool numel_of(const std::vector<int64_t>& shape, uint64_t* n) {
  uint64_t total = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && total > (uint64_t(1) << 62) / uint64_t(d))) return false;
    total *= uint64_t(d);
  }
  *n = total;
  return true;
}
}  // namespace

std::string write(const std::string& path, const std::vector<TensorRef>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json::quote(k) + ":" + json::quote(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (size_t t = 0; t < tensors.size(); t++) {
    uint64_t n = 0;
    numel_of(tensors[t].shape, &n);
    std::string shape;
    for (size_t d = 0; d < tensors[t].shape.size(); d++) {
      shape += (d ? "," : "") + std::to_string(tensors[t].shape[d]);
    }
    header += (header.size() > 1 ? "," : "") + json::quote(tensors[t].name) +
              ":{\"dtype\":\"F32\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + 4 * n) + "]}";
    offset += 4 * n;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';  // data starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot open " + tmp + " for writing: " + std::strerror(errno);
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (size_t t = 0; ok && t < tensors.size(); t++) {
    uint64_t n = 0;
    numel_of(tensors[t].shape, &n);
    ok = std::fwrite(tensors[t].data, 4, n, f) == n;  // little-endian hosts only
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return "short write to " + tmp;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
  }
  return "";
}

int dtype_bytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::string read_header(const std::string& path, std::ifstream* in, Header* out) {
  in->open(path, std::ios::binary);
  if (!*in) return "cannot open " + path;
  in->seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in->tellg());
  in->seekg(0);
  if (size < 8) return path + ": too short for a safetensors file";
  uint8_t len[8];
  in->read(reinterpret_cast<char*>(len), 8);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= uint64_t(len[i]) << (8 * i);
  if (hlen > kMaxHeader || hlen > size - 8) {
    return path + ": header length " + std::to_string(hlen) + " exceeds the file or the limit";
  }
  std::string header(hlen, '\0');
  in->read(header.data(), std::streamsize(hlen));
  if (!*in) return path + ": short read of the header";
  json::Value root;
  std::string err;
  if (!json::parse(header, &root, &err)) return path + ": bad header JSON: " + err;
  if (root.kind != json::Value::kObject) return path + ": header is not a JSON object";
  Header h;
  h.data_start = 8 + hlen;
  const uint64_t data_size = size - h.data_start;
  for (const auto& [name, v] : root.object) {
    if (name == "__metadata__") {
      if (v.kind != json::Value::kObject) return path + ": __metadata__ is not an object";
      for (const auto& [k, mv] : v.object) {
        if (mv.kind != json::Value::kString) return path + ": metadata " + k + " not a string";
        h.metadata[k] = mv.string;
      }
      continue;
    }
    const json::Value* dtype = v.get("dtype");
    const json::Value* shape = v.get("shape");
    const json::Value* offs = v.get("data_offsets");
    if (!dtype || !shape || !offs || dtype->kind != json::Value::kString ||
        shape->kind != json::Value::kArray || offs->kind != json::Value::kArray ||
        offs->array.size() != 2) {
      return path + ": tensor " + name + " lacks dtype, shape or data_offsets";
    }
    const int width = dtype_bytes(dtype->string);
    if (width == 0) return path + ": tensor " + name + " has unknown dtype " + dtype->string;
    Entry e;
    e.dtype = dtype->string;
    for (const json::Value& d : shape->array) {
      if (d.kind != json::Value::kNumber || d.number < 0 || d.number > 1e15 ||
          d.number != double(int64_t(d.number))) {
        return path + ": tensor " + name + " has a bad shape";
      }
      e.shape.push_back(int64_t(d.number));
    }
    uint64_t n = 0;
    if (!numel_of(e.shape, &n)) return path + ": tensor " + name + " is too large";
    const json::Value& b = offs->array[0];
    const json::Value& f = offs->array[1];
    if (b.kind != json::Value::kNumber || f.kind != json::Value::kNumber || b.number < 0 ||
        f.number < b.number || f.number > double(data_size) || b.number != std::floor(b.number) ||
        f.number - b.number != double(n) * width) {
      return path + ": tensor " + name + " has data_offsets outside the file or not matching shape";
    }
    e.begin = uint64_t(b.number);
    e.end = uint64_t(f.number);
    if (h.entries.count(name)) return path + ": tensor " + name + " appears twice";
    h.entries[name] = std::move(e);
  }
  *out = std::move(h);
  return "";
}

std::string read(const std::string& path, File* out) {
  std::ifstream in;
  Header h;
  const std::string err = read_header(path, &in, &h);
  if (!err.empty()) return err;
  File file;
  file.metadata = h.metadata;
  for (const auto& [name, e] : h.entries) {
    if (e.dtype != "F32") {
      return path + ": tensor " + name + " has dtype " + e.dtype + ", only F32 is read";
    }
    Tensor t;
    t.shape = e.shape;
    t.data.resize((e.end - e.begin) / 4);
    in.seekg(std::streamoff(h.data_start + e.begin));
    in.read(reinterpret_cast<char*>(t.data.data()), std::streamsize(e.end - e.begin));
    if (!in) return path + ": short read of tensor " + name;
    file.tensors[name] = std::move(t);
  }
  *out = std::move(file);
  return "";
}

}  // namespace covenant::engine::safetensors
