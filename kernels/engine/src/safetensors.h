// safetensors files: 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw data. Only F32 tensors are written and read here.
#pragma once
#include <cstdint>
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

}  // namespace covenant::engine::safetensors
