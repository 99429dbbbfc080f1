// safetensors files follow the published layout (so other tools can read them) and malformed
// files are rejected with a reason.
#include <cstdio>
#include <cstring>
#include <fstream>

#include "check.h"
#include "json.h"
#include "safetensors.h"

using namespace covenant::engine;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
}  // namespace

int main() {
  const std::string dir = temp_dir("safetensors");
  const std::string path = dir + "/t.safetensors";
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {-0.5f};
  CHECK_OK(safetensors::write(path, {{"a.weight", {2, 3}, a.data()}, {"b", {1}, b.data()}},
                              {{"format", "covenant-engine/1"}, {"quote\"d", "x\ny"}}));

  // Byte layout: u64 LE header size, JSON header (8-byte aligned), then the data in order.
  const std::string bytes = slurp(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  CHECK(hlen % 8 == 0);
  CHECK(bytes.size() == 8 + hlen + 4 * 7);
  json::Value root;
  std::string err;
  CHECK(json::parse(bytes.substr(8, hlen), &root, &err));
  const json::Value* ta = root.get("a.weight");
  CHECK(ta && ta->get("dtype")->string == "F32");
  CHECK(ta->get("shape")->array.size() == 2 && ta->get("shape")->array[1].number == 3);
  CHECK(ta->get("data_offsets")->array[0].number == 0);
  CHECK(ta->get("data_offsets")->array[1].number == 24);
  CHECK(root.get("b")->get("data_offsets")->array[0].number == 24);
  CHECK(root.get("__metadata__")->get("quote\"d")->string == "x\ny");
  float first;
  std::memcpy(&first, bytes.data() + 8 + hlen, 4);
  CHECK(first == 1.0f);

  safetensors::File f;
  CHECK_OK(safetensors::read(path, &f));
  CHECK(f.tensors["a.weight"].data == a && f.tensors["b"].data == b);
  CHECK(f.metadata["format"] == "covenant-engine/1");

  // Malformed files.
  spit(dir + "/short", "abc");
  CHECK(safetensors::read(dir + "/short", &f).find("too short") != std::string::npos);
  std::string huge = bytes;
  huge[7] = char(0x7f);
  spit(dir + "/huge", huge);
  CHECK(safetensors::read(dir + "/huge", &f).find("header length") != std::string::npos);
  spit(dir + "/trunc", bytes.substr(0, bytes.size() - 4));
  CHECK(safetensors::read(dir + "/trunc", &f).find("data_offsets") != std::string::npos);
  std::string badjson = bytes;
  badjson[8] = '[';
  spit(dir + "/badjson", badjson);
  CHECK(!safetensors::read(dir + "/badjson", &f).empty());
  std::string bf16 = bytes;
  const size_t at = bf16.find("F32");
  bf16.replace(at, 3, "I32");
  spit(dir + "/dtype", bf16);
  CHECK(safetensors::read(dir + "/dtype", &f).find("only F32") != std::string::npos);
  CHECK(json::parse("{\"a\":[1,2,{\"b\":null}],\"c\":true}", &root, &err));
  CHECK(!json::parse("{\"a\":1,}", &root, &err));
  CHECK(!json::parse(std::string(100, '['), &root, &err));
  std::system(("rm -rf '" + dir + "'").c_str());
  std::printf("ok\n");
  return 0;
}
