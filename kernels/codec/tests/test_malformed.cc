// Every class of malformed input gets its own error code, and no input crashes the decoder
// or makes it read outside the buffer (run under the sanitizers by the fuzz target too).
#include <cmath>
#include <cstring>
#include <limits>

#include "check.h"
#include "record.h"
#include "wire.h"

using namespace codec_test;

namespace {

struct Fixture {
  Model m;
  covenant_config cfg;
  std::vector<uint8_t> payload;
};

Fixture make(uint32_t format, uint32_t topk = 16) {
  Fixture f{small_model(), make_config(format, topk), {}};
  f.m.fill(2024);
  f.payload = compress(f.m, f.cfg);
  return f;
}

int32_t validate(Fixture& f, const std::vector<uint8_t>& p, covenant_error* err = nullptr) {
  covenant_error local{};
  int32_t rc = covenant_validate(f.m.spec.data(), f.m.spec.size(), &f.cfg, p.data(), p.size(),
                                 err ? err : &local);
  covenant_error& e = err ? *err : local;
  CHECK_EQ(e.code, rc);
  if (rc != COVENANT_OK) CHECK(std::strlen(e.message) > 0);
  return rc;
}

// Byte offset of table entry i and of its fields.
struct Entry {
  size_t name_len, name, rank, dims, k, shift, scale, codebook;
};
Entry entry(const std::vector<uint8_t>& p, size_t i) {
  size_t pos = 24;
  for (;;) {
    Entry e{};
    e.name_len = pos;
    size_t len = p[pos] | (p[pos + 1] << 8);
    e.name = pos + 2;
    e.rank = e.name + len;
    size_t rank = p[e.rank];
    e.dims = e.rank + 2;
    e.k = e.dims + 4 * rank;
    e.shift = e.k + 4;
    e.scale = e.shift + 4;
    e.codebook = e.scale + 4;
    if (i-- == 0) return e;
    pos = e.codebook + 16;
  }
}

void put_f32(std::vector<uint8_t>& p, size_t at, float v) { std::memcpy(&p[at], &v, 4); }
void put_u32(std::vector<uint8_t>& p, size_t at, uint32_t v) { std::memcpy(&p[at], &v, 4); }

size_t body_of(Fixture& f, size_t tensor, uint64_t chunk = 0) {
  covenant::Plan plan;
  covenant::make_plan(f.m.spec.data(), f.m.spec.size(), &f.cfg, &plan);
  return plan.tensors[tensor].body_offset + chunk * plan.tensors[tensor].layout.record_bytes;
}

void header_classes(uint32_t format) {
  Fixture f = make(format);
  CHECK_EQ(validate(f, f.payload), COVENANT_OK);

  // truncated at every length: a clear error, never a crash
  for (size_t n = 0; n < f.payload.size(); n += (n < 400 ? 1 : 97)) {
    std::vector<uint8_t> p(f.payload.begin(), f.payload.begin() + n);
    int32_t rc = validate(f, p);
    CHECK(rc == COVENANT_ERR_TRUNCATED || rc == COVENANT_ERR_LENGTH);
  }
  {
    auto p = f.payload;
    p.push_back(0);
    CHECK_EQ(validate(f, p), COVENANT_ERR_LENGTH);  // trailing byte
    p = f.payload;
    p.pop_back();
    put_u32(p, 12, uint32_t(p.size()));
    p[16] = uint8_t(p.size());  // declared length made to match a short buffer
    std::memset(&p[16], 0, 8);
    uint64_t n = p.size();
    std::memcpy(&p[16], &n, 8);
    CHECK_EQ(validate(f, p), COVENANT_ERR_LENGTH);
  }
  {
    auto p = f.payload;
    p[0] = 'X';
    CHECK_EQ(validate(f, p), COVENANT_ERR_MAGIC);
    p = f.payload;
    p[4] = 2;
    CHECK_EQ(validate(f, p), COVENANT_ERR_VERSION);
    p = f.payload;
    p[6] = 9;
    CHECK_EQ(validate(f, p), COVENANT_ERR_FORMAT);
    p = f.payload;
    p[6] = uint8_t(3 - format);  // the other known format: not the run's
    CHECK_EQ(validate(f, p), COVENANT_ERR_FORMAT);
    p = f.payload;
    p[7] = 1;
    CHECK_EQ(validate(f, p), COVENANT_ERR_FORMAT);
    p = f.payload;
    put_u32(p, 8, 0);
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
    p = f.payload;
    put_u32(p, 8, 0xffffffffu);
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
  }
  {
    Entry e = entry(f.payload, 1);
    auto p = f.payload;
    p[e.name] = ' ';
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
    p = f.payload;
    p[e.rank] = 3;
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
    p = f.payload;
    p[e.rank + 1] = 1;
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
    p = f.payload;
    p[e.name_len] = 0;
    p[e.name_len + 1] = 0;
    CHECK_EQ(validate(f, p), COVENANT_ERR_TABLE);
    p = f.payload;
    p[e.name_len] = 0xff;
    p[e.name_len + 1] = 0xff;
    CHECK_EQ(validate(f, p), COVENANT_ERR_TRUNCATED);
  }
  {
    // wrong shape, wrong name, wrong k
    Entry e = entry(f.payload, 0);
    auto p = f.payload;
    put_u32(p, e.dims, 64);
    CHECK_EQ(validate(f, p), COVENANT_ERR_MISMATCH);
    p = f.payload;
    p[e.name] = 'E';
    CHECK_EQ(validate(f, p), COVENANT_ERR_MISMATCH);
    p = f.payload;
    put_u32(p, e.k, 17);
    CHECK_EQ(validate(f, p), COVENANT_ERR_K);
    p = f.payload;
    put_u32(p, e.k, 0);
    CHECK_EQ(validate(f, p), COVENANT_ERR_K);
  }
  {
    // quantization parameters: NaN, Inf, absurd, negative scale, unordered codebook
    Entry e = entry(f.payload, 2);
    const float bad[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, 1e30f,
                         -3e6f};
    for (float v : bad)
      for (size_t at : {e.shift, e.scale, e.codebook, e.codebook + 12}) {
        auto p = f.payload;
        put_f32(p, at, v);
        CHECK_EQ(validate(f, p), COVENANT_ERR_QUANT);
      }
    auto p = f.payload;
    put_f32(p, e.scale, -0.5f);
    CHECK_EQ(validate(f, p), COVENANT_ERR_QUANT);
    p = f.payload;
    put_f32(p, e.codebook, 1.0f);  // codebook[0] above codebook[1]
    CHECK_EQ(validate(f, p), COVENANT_ERR_QUANT);
  }
}

void duplicate_tensor() {
  // Two tensors of the same shape; renaming the second to the first is a duplicate.
  Model m;
  m.add("a.x", 64, 64);
  m.add("a.y", 64, 64);
  m.finalize();
  m.fill(8);
  auto cfg = make_config(1);
  auto payload = compress(m, cfg);
  Entry e = entry(payload, 1);
  payload[e.name + 2] = 'x';
  covenant_error err{};
  CHECK_EQ(covenant_validate(m.spec.data(), 2, &cfg, payload.data(), payload.size(), &err),
           COVENANT_ERR_DUPLICATE);
  CHECK(std::strstr(err.message, "a.x") != nullptr);
}

void missing_and_extra_tensors() {
  Fixture f = make(1);
  Model fewer;
  fewer.add("embed.weight", 128, 192);
  fewer.finalize();
  CHECK_EQ(
      covenant_validate(fewer.spec.data(), 1, &f.cfg, f.payload.data(), f.payload.size(), nullptr),
      COVENANT_ERR_MISMATCH);
  Model more = small_model();
  more.add("extra", 64);
  more.finalize();
  CHECK_EQ(covenant_validate(more.spec.data(), more.spec.size(), &f.cfg, f.payload.data(),
                             f.payload.size(), nullptr),
           COVENANT_ERR_MISMATCH);
}

void body_classes_format1() {
  // norm.bias (100) has chunks of 50, k = 16: 12-bit fields can hold indices >= 50.
  Fixture f = make(1);
  const size_t tensor = 5;
  size_t rec = body_of(f, tensor);
  covenant::Layout l;
  uint32_t dims[1] = {100};
  covenant::make_layout(1, dims, 16, 1, &l);
  CHECK_EQ(l.chunk_size, 50u);
  auto p = f.payload;
  uint32_t last = covenant::get_bits(&p[rec], 15 * 12, 12);
  for (uint32_t b = 0; b < 12; ++b)
    p[rec + (15 * 12 + b) / 8] &= uint8_t(~(1u << ((15 * 12 + b) % 8)));
  covenant::put_bits(&p[rec], 15 * 12, 12, 4000);
  CHECK_EQ(validate(f, p), COVENANT_ERR_INDEX_RANGE);
  p = f.payload;
  uint32_t first = covenant::get_bits(&p[rec], 0, 12);
  for (uint32_t b = 0; b < 12; ++b) p[rec + b / 8] &= uint8_t(~(1u << (b % 8)));
  covenant::put_bits(&p[rec], 0, 12, last);  // first index equal to the last: not increasing
  CHECK_EQ(validate(f, p), COVENANT_ERR_INDEX_ORDER);
  (void)first;
  // padding: a tensor whose record has spare bits (7x13 at k = 16 keeps 13 per 7x13 chunk... use
  // odd)
  Fixture g = make(1, 3);  // k = 3: 36 index bits in 5 bytes, 6 code bits in 1 byte
  size_t r = body_of(g, 0);
  p = g.payload;
  p[r + 4] |= 0x80;
  CHECK_EQ(validate(g, p), COVENANT_ERR_PADDING);
  p = g.payload;
  p[r + 5] |= 0x80;
  CHECK_EQ(validate(g, p), COVENANT_ERR_PADDING);
}

void body_classes_format2() {
  Fixture f = make(2);  // embed.weight: 64x64 chunks, k = 16: 8 low bits, high section 16 + 16 + 1
  size_t rec = body_of(f, 0);
  covenant::Layout l;
  uint32_t dims[2] = {128, 192};
  covenant::make_layout(2, dims, 16, 2, &l);
  CHECK_EQ(l.low_bits, 8u);
  CHECK_EQ(l.high_bits, 32u);
  const uint32_t high = 16 * 8;
  // an extra one bit in the upper section: 17 values
  auto p = f.payload;
  for (uint32_t pos = 0; pos < l.high_bits; ++pos) {
    uint32_t bit = high + pos;
    if (!((p[rec + bit / 8] >> (bit % 8)) & 1)) {
      p[rec + bit / 8] |= uint8_t(1u << (bit % 8));
      break;
    }
  }
  int32_t rc = validate(f, p);
  CHECK(rc == COVENANT_ERR_ENCODING || rc == COVENANT_ERR_INDEX_ORDER ||
        rc == COVENANT_ERR_INDEX_RANGE);
  // all upper bits cleared: no values at all
  p = f.payload;
  for (uint32_t pos = 0; pos < l.high_bits; ++pos) {
    uint32_t bit = high + pos;
    p[rec + bit / 8] &= uint8_t(~(1u << (bit % 8)));
  }
  CHECK_EQ(validate(f, p), COVENANT_ERR_ENCODING);
  // 16 ones at the very end of the section: values beyond the chunk
  for (uint32_t pos = l.high_bits - 16; pos < l.high_bits; ++pos) {
    uint32_t bit = high + pos;
    p[rec + bit / 8] |= uint8_t(1u << (bit % 8));
  }
  CHECK_EQ(validate(f, p), COVENANT_ERR_INDEX_RANGE);
  // equal low bits under one bucket: two equal values
  p = f.payload;
  for (uint32_t pos = 0; pos < l.high_bits; ++pos) {
    uint32_t bit = high + pos;
    p[rec + bit / 8] &= uint8_t(~(1u << (bit % 8)));
  }
  for (uint32_t j = 0; j < 16; ++j) {
    uint32_t bit = high + j;  // every value in bucket 0
    p[rec + bit / 8] |= uint8_t(1u << (bit % 8));
  }
  std::memset(&p[rec], 0, 16);  // low bits all zero: 16 equal values
  CHECK_EQ(validate(f, p), COVENANT_ERR_INDEX_ORDER);
  // padding after the upper bits: 96x80 has 48x40 chunks, 6 low bits, 46 upper bits, 142 in 18
  // bytes
  covenant::Layout l2;
  uint32_t dims2[2] = {96, 80};
  covenant::make_layout(2, dims2, 16, 2, &l2);
  CHECK_EQ(l2.low_bits * 16 + l2.high_bits, 142u);
  p = f.payload;
  size_t rec2 = body_of(f, 2, 1);
  p[rec2 + 17] |= 0x80;
  CHECK_EQ(validate(f, p), COVENANT_ERR_PADDING);
}

void random_corruption_never_crashes() {
  for (uint32_t format : {1u, 2u}) {
    Fixture f = make(format);
    Rng r(format * 1000 + 1);
    int rejected = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      auto p = f.payload;
      int flips = 1 + int(r.next() % 4);
      for (int i = 0; i < flips; ++i) p[r.next() % p.size()] ^= uint8_t(1u << (r.next() % 8));
      std::vector<std::vector<float>> out;
      std::vector<float*> ptrs;
      for (auto& d : f.m.delta) out.emplace_back(d.size());
      for (auto& o : out) ptrs.push_back(o.data());
      covenant_error err{};
      int32_t rc = covenant_decode(f.m.spec.data(), f.m.spec.size(), &f.cfg, p.data(), p.size(),
                                   ptrs.data(), &err);
      CHECK_EQ(err.code, rc);
      rejected += rc != COVENANT_OK;
    }
    CHECK(rejected > 1000);
    // pure garbage
    for (int trial = 0; trial < 500; ++trial) {
      std::vector<uint8_t> p(r.next() % 600);
      for (auto& b : p) b = uint8_t(r.next());
      if (p.size() >= 4) std::memcpy(p.data(), "CVSL", 4);
      CHECK(validate(f, p) != COVENANT_OK);
    }
  }
}

void compress_rejects_bad_arguments() {
  Model m = small_model();
  m.fill(1);
  covenant_config cfg = make_config(1);
  uint64_t size = 0;
  covenant_error err{};
  covenant_payload_size(m.spec.data(), m.spec.size(), &cfg, &size, &err);
  std::vector<uint8_t> out(size);
  size_t len = 0;
  auto d = m.delta_ptrs();
  auto e = m.error_ptrs();
  CHECK_EQ(covenant_compress(m.spec.data(), m.spec.size(), &cfg, COVENANT_F32, d.data(), e.data(),
                             out.data(), size - 1, &len, &err),
           COVENANT_ERR_CAPACITY);
  auto e_copy = m.error;
  m.delta[2][17] = std::numeric_limits<float>::quiet_NaN();
  CHECK_EQ(covenant_compress(m.spec.data(), m.spec.size(), &cfg, COVENANT_F32, d.data(), e.data(),
                             out.data(), size, &len, &err),
           COVENANT_ERR_NONFINITE);
  covenant_config bad = cfg;
  bad.format = 3;
  CHECK_EQ(covenant_payload_size(m.spec.data(), m.spec.size(), &bad, &size, &err),
           COVENANT_ERR_ARGUMENT);
  bad = cfg;
  bad.topk = 0;
  CHECK_EQ(covenant_payload_size(m.spec.data(), m.spec.size(), &bad, &size, &err),
           COVENANT_ERR_ARGUMENT);
  bad = cfg;
  bad.beta = std::numeric_limits<float>::quiet_NaN();
  CHECK_EQ(covenant_payload_size(m.spec.data(), m.spec.size(), &bad, &size, &err),
           COVENANT_ERR_ARGUMENT);
  Model dup;
  dup.add("w", 4);
  dup.add("w", 4);
  dup.finalize();
  CHECK_EQ(covenant_payload_size(dup.spec.data(), 2, &cfg, &size, &err), COVENANT_ERR_ARGUMENT);
  Model rank3 = small_model();
  rank3.spec[0].rank = 3;
  CHECK_EQ(covenant_payload_size(rank3.spec.data(), rank3.spec.size(), &cfg, &size, &err),
           COVENANT_ERR_ARGUMENT);
  CHECK_EQ(covenant_validate(m.spec.data(), m.spec.size(), &cfg, nullptr, 10, &err),
           COVENANT_ERR_ARGUMENT);
  CHECK(std::strcmp(covenant_status_name(COVENANT_ERR_INDEX_RANGE), "index_range") == 0);
  CHECK(std::strcmp(covenant_status_name(99), "unknown") == 0);
}

}  // namespace

int main() {
  header_classes(1);
  header_classes(2);
  duplicate_tensor();
  missing_and_extra_tensors();
  body_classes_format1();
  body_classes_format2();
  random_corruption_never_crashes();
  compress_rejects_bad_arguments();
  return finish("codec_malformed");
}
