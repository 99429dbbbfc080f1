// safetensors files: 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw data. Only F32 tensors are written and read here.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace covenant::engine::safetensors {

struct TensorRef {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // numel(shape) floats
};

// Writes atomically (temporary file, then rename). Returns "" or an error message.
std::string write(const std::string& path, const std::vector<TensorRef>& tensors,
                  const std::map<std::string, std::string>& metadata);

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
struct File {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads and validates the whole file (header size, JSON, dtype, shapes, byte ranges).
std::string read(const std::string& path, File* out);

// A file's header, of any dtype: what each tensor is and where its bytes are.
struct Entry {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};
struct Header {
  std::map<std::string, Entry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section
};

// Bytes per element of a safetensors dtype name; 0 for an unknown one.
int dtype_bytes(const std::string& dtype);

// Opens `path` into `in` and reads and validates its header (length, JSON, known dtypes,
// shapes, byte ranges inside the file and matching the shape, no tensor twice).
std::string read_header(const std::string& path, std::ifstream* in, Header* out);

}  // namespace covenant::engine::safetensors
