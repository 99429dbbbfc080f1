#include "wire.h"

#include <cmath>
#include <cstring>
#include <unordered_set>

namespace covenant {
namespace {

void put_u16(uint8_t*& p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p += 2;
}
void put_u32(uint8_t*& p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
  p += 4;
}
void put_u64(uint8_t*& p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
  p += 8;
}
void put_f32(uint8_t*& p, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  put_u32(p, v);
}

// Bounds-checked little-endian reader.
struct Reader {
  const uint8_t* data;
  size_t length;
  size_t pos = 0;
  bool need(size_t n) const { return n <= length - pos; }
  uint8_t u8() { return data[pos++]; }
  uint16_t u16() {
    uint16_t v = uint16_t(data[pos] | (data[pos + 1] << 8));
    pos += 2;
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(data[pos + i]) << (8 * i);
    pos += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(data[pos + i]) << (8 * i);
    pos += 8;
    return v;
  }
  float f32() {
    uint32_t v = u32();
    float f;
    std::memcpy(&f, &v, 4);
    return f;
  }
};

uint64_t entry_bytes(const TensorPlan& t) {
  return 2 + t.name.size() + 2 + 4ull * t.rank + 4 + 4 * 6;
}

}  // namespace

Status fail(int32_t code, std::string message) { return Status{code, std::move(message)}; }

float effective_max_abs(const covenant_config& config) {
  return config.max_abs > 0.0f && std::isfinite(config.max_abs) ? config.max_abs
                                                                : COVENANT_DEFAULT_MAX_ABS;
}

bool valid_name(const char* name, size_t length) {
  if (length == 0 || length > COVENANT_MAX_NAME) return false;
  for (size_t i = 0; i < length; ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status make_plan(const covenant_tensor* spec, size_t count, const covenant_config* config,
                 Plan* plan) {
  if (!config) return fail(COVENANT_ERR_ARGUMENT, "config is null");
  if (config->format != 1 && config->format != 2)
    return fail(COVENANT_ERR_ARGUMENT,
                "config.format must be 1 or 2, got " + std::to_string(config->format));
  if (config->topk == 0 || config->topk > 4096)
    return fail(COVENANT_ERR_ARGUMENT,
                "config.topk must be in 1..4096, got " + std::to_string(config->topk));
  if (!std::isfinite(config->beta) || config->beta < 0.0f || config->beta > 1.0f)
    return fail(COVENANT_ERR_ARGUMENT, "config.beta must be a finite number in [0, 1]");
  if (count == 0 || count > COVENANT_MAX_TENSORS)
    return fail(COVENANT_ERR_ARGUMENT,
                "the spec must list 1..65535 tensors, got " + std::to_string(count));
  if (!spec) return fail(COVENANT_ERR_ARGUMENT, "spec is null");
  Plan p;
  p.format = config->format;
  p.tensors.resize(count);
  std::unordered_set<std::string> names;
  uint64_t header = kFixedHeaderBytes;
  for (size_t i = 0; i < count; ++i) {
    const covenant_tensor& s = spec[i];
    TensorPlan& t = p.tensors[i];
    const std::string where = "spec[" + std::to_string(i) + "]";
    if (!s.name) return fail(COVENANT_ERR_ARGUMENT, where + ".name is null");
    size_t len = strnlen(s.name, COVENANT_MAX_NAME + 1);
    if (!valid_name(s.name, len))
      return fail(COVENANT_ERR_ARGUMENT,
                  where + ".name must be 1..255 characters of [A-Za-z0-9._/:-]");
    t.name.assign(s.name, len);
    if (!names.insert(t.name).second)
      return fail(COVENANT_ERR_ARGUMENT, where + ": duplicate tensor " + t.name);
    if (s.rank < 1 || s.rank > 2)
      return fail(COVENANT_ERR_ARGUMENT, t.name + ": rank must be 1 or 2");
    t.rank = s.rank;
    for (uint32_t d = 0; d < s.rank; ++d) {
      if (s.dims[d] == 0) return fail(COVENANT_ERR_ARGUMENT, t.name + ": dimensions must be >= 1");
      t.dims[d] = s.dims[d];
    }
    make_layout(t.rank, t.dims, config->topk, config->format, &t.layout);
    if (t.layout.numel() > (uint64_t(1) << 40))
      return fail(COVENANT_ERR_ARGUMENT, t.name + ": more than 2^40 elements");
    header += entry_bytes(t);
  }
  uint64_t offset = header;
  for (TensorPlan& t : p.tensors) {
    t.body_offset = offset;
    offset += t.layout.body_bytes;
  }
  p.header_bytes = header;
  p.total_bytes = offset;
  *plan = std::move(p);
  return {};
}

void write_header(const Plan& plan, const std::vector<Quant>& quant, uint8_t* out) {
  uint8_t* p = out;
  std::memcpy(p, kMagic, 4);
  p += 4;
  put_u16(p, COVENANT_WIRE_VERSION);
  *p++ = uint8_t(plan.format);
  *p++ = 0;  // flags
  put_u32(p, uint32_t(plan.tensors.size()));
  put_u32(p, uint32_t(plan.header_bytes));
  put_u64(p, plan.total_bytes);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorPlan& t = plan.tensors[i];
    put_u16(p, uint16_t(t.name.size()));
    std::memcpy(p, t.name.data(), t.name.size());
    p += t.name.size();
    *p++ = uint8_t(t.rank);
    *p++ = 0;  // reserved
    for (uint32_t d = 0; d < t.rank; ++d) put_u32(p, t.dims[d]);
    put_u32(p, t.layout.k);
    put_f32(p, quant[i].shift);
    put_f32(p, quant[i].scale);
    for (float c : quant[i].codebook) put_f32(p, c);
  }
}

Status check_quant(const Quant& q, float max_abs, const std::string& tensor) {
  const float all[6] = {q.shift,       q.scale,       q.codebook[0],
                        q.codebook[1], q.codebook[2], q.codebook[3]};
  for (float v : all) {
    if (!std::isfinite(v))
      return fail(COVENANT_ERR_QUANT, tensor + ": non-finite quantization parameter");
    if (std::fabs(v) > max_abs)
      return fail(COVENANT_ERR_QUANT,
                  tensor + ": quantization parameter beyond the bound " + std::to_string(max_abs));
  }
  if (q.scale < 0.0f) return fail(COVENANT_ERR_QUANT, tensor + ": negative scale");
  for (int b = 1; b < 4; ++b)
    if (q.codebook[b] < q.codebook[b - 1])
      return fail(COVENANT_ERR_QUANT, tensor + ": codebook not ordered");
  return {};
}

Status check_outgoing(const Plan& plan, const covenant_config& config,
                      const std::vector<Quant>& quant) {
  const float max_abs = effective_max_abs(config);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    Status s = check_quant(quant[i], max_abs, plan.tensors[i].name);
    if (!s.ok()) {
      s.message += " (compress: no receiver would accept this payload; error buffers unchanged)";
      return s;
    }
  }
  return {};
}

Status parse_header(const Plan& plan, const covenant_config& config, const uint8_t* data,
                    size_t available, size_t length, std::vector<Quant>* quant) {
  if (!data && length) return fail(COVENANT_ERR_ARGUMENT, "payload is null");
  if (available > length) available = length;
  Reader r{data, available};
  if (!r.need(4)) return fail(COVENANT_ERR_TRUNCATED, "payload shorter than the magic number");
  if (std::memcmp(data, kMagic, 4) != 0)
    return fail(COVENANT_ERR_MAGIC, "not a codec payload (bad magic)");
  r.pos = 4;
  if (!r.need(kFixedHeaderBytes - 4))
    return fail(COVENANT_ERR_TRUNCATED, "payload shorter than its fixed header");
  uint16_t version = r.u16();
  if (version != COVENANT_WIRE_VERSION)
    return fail(COVENANT_ERR_VERSION, "unknown wire version " + std::to_string(version));
  uint8_t format = r.u8(), flags = r.u8();
  if (format != 1 && format != 2)
    return fail(COVENANT_ERR_FORMAT, "unknown format " + std::to_string(format));
  if (format != plan.format)
    return fail(COVENANT_ERR_FORMAT, "format " + std::to_string(format) +
                                         " but the run uses format " + std::to_string(plan.format));
  if (flags != 0) return fail(COVENANT_ERR_FORMAT, "nonzero flags");
  uint32_t count = r.u32();
  uint32_t header_bytes = r.u32();
  uint64_t total = r.u64();
  if (total != length)
    return fail(COVENANT_ERR_LENGTH, "declared length " + std::to_string(total) +
                                         " but the buffer holds " + std::to_string(length));
  if (count == 0 || count > COVENANT_MAX_TENSORS)
    return fail(COVENANT_ERR_TABLE, "tensor count out of range");
  if (header_bytes > length) return fail(COVENANT_ERR_TRUNCATED, "header longer than the payload");
  std::vector<Quant> q(count);
  std::unordered_set<std::string> seen;
  const float max_abs = effective_max_abs(config);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string where = "tensor " + std::to_string(i);
    if (!r.need(2)) return fail(COVENANT_ERR_TRUNCATED, where + ": table truncated");
    uint16_t name_len = r.u16();
    if (!r.need(size_t(name_len) + 2))
      return fail(COVENANT_ERR_TRUNCATED, where + ": table truncated");
    const char* name_ptr = reinterpret_cast<const char*>(data + r.pos);
    if (!valid_name(name_ptr, name_len)) return fail(COVENANT_ERR_TABLE, where + ": invalid name");
    std::string name(name_ptr, name_len);
    r.pos += name_len;
    if (!seen.insert(name).second)
      return fail(COVENANT_ERR_DUPLICATE, "tensor " + name + " appears twice");
    uint8_t rank = r.u8(), reserved = r.u8();
    if (rank < 1 || rank > 2) return fail(COVENANT_ERR_TABLE, name + ": rank must be 1 or 2");
    if (reserved != 0) return fail(COVENANT_ERR_TABLE, name + ": nonzero reserved byte");
    if (!r.need(4ull * rank + 4 + 24))
      return fail(COVENANT_ERR_TRUNCATED, name + ": table truncated");
    uint32_t dims[2] = {0, 0};
    for (uint8_t d = 0; d < rank; ++d) dims[d] = r.u32();
    uint32_t k = r.u32();
    Quant& qi = q[i];
    qi.shift = r.f32();
    qi.scale = r.f32();
    for (float& c : qi.codebook) c = r.f32();
    if (i >= plan.tensors.size())
      return fail(COVENANT_ERR_MISMATCH, "unexpected tensor " + name + " (the run has " +
                                             std::to_string(plan.tensors.size()) + " tensors)");
    const TensorPlan& t = plan.tensors[i];
    if (name != t.name)
      return fail(COVENANT_ERR_MISMATCH, where + " is " + name + ", expected " + t.name);
    if (rank != t.rank || dims[0] != t.dims[0] || (rank == 2 && dims[1] != t.dims[1]))
      return fail(COVENANT_ERR_MISMATCH, name + ": shape differs from the run's");
    if (k != t.layout.k)
      return fail(COVENANT_ERR_K, name + ": k is " + std::to_string(k) + ", expected " +
                                      std::to_string(t.layout.k));
    Status s = check_quant(qi, max_abs, name);
    if (!s.ok()) return s;
  }
  if (count != plan.tensors.size())
    return fail(COVENANT_ERR_MISMATCH, "payload has " + std::to_string(count) +
                                           " tensors, the run has " +
                                           std::to_string(plan.tensors.size()));
  if (r.pos != header_bytes || header_bytes != plan.header_bytes)
    return fail(COVENANT_ERR_LENGTH, "declared header length differs from the table");
  if (total != plan.total_bytes)
    return fail(COVENANT_ERR_LENGTH, "payload is " + std::to_string(total) +
                                         " bytes, the run's layout needs " +
                                         std::to_string(plan.total_bytes));
  *quant = std::move(q);
  return {};
}

}  // namespace covenant
