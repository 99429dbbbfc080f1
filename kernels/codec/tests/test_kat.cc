// Known-answer vectors: payloads committed under testdata/ must be reproduced byte for byte
// from their documented inputs (see make_kat.cc), validate, and decode to the same values.
#include <cmath>
#include <cstring>
#include <string>

#include "check.h"
#include "kat.h"

using namespace codec_test;

namespace {

// A vector worked out by hand (docs/wire-format.md, "Worked example"): one tensor of four
// values sent whole, in both formats.
void hand_vector(uint32_t format) {
  Model m;
  m.add("w", 4);
  m.finalize();
  m.delta[0] = {0.5f, -2.0f, 1.0f, 3.0f};
  covenant_config cfg = make_config(format, 4, 1);
  std::vector<uint8_t> p = compress(m, cfg);
  const uint8_t header[24] = {'C',
                              'V',
                              'S',
                              'L',
                              1,
                              0,
                              uint8_t(format),
                              0,
                              1,
                              0,
                              0,
                              0,
                              61,
                              0,
                              0,
                              0,
                              uint8_t(format == 1 ? 68 : 63),
                              0,
                              0,
                              0,
                              0,
                              0,
                              0,
                              0};
  CHECK_EQ(p.size(), size_t(format == 1 ? 68 : 63));
  CHECK(std::memcmp(p.data(), header, 24) == 0);
  const uint8_t entry[9] = {1, 0, 'w', 1, 0, 4, 0, 0, 0};  // name, rank, reserved, dims, k
  CHECK(std::memcmp(p.data() + 24, entry, 9) == 0);
  CHECK_EQ(p[33], 4);
  float q[6];
  std::memcpy(q, p.data() + 37, 24);
  CHECK(q[0] == 0.625f);                                       // shift: mean of the kept values
  CHECK(q[1] == float(6.0 * std::sqrt(12.6875 / 3.0) / 4.0));  // scale
  CHECK(q[2] == float(-2.0 * double(q[1])));                   // empty bin 0: its centre
  CHECK(q[3] == -2.625f && q[4] == 0.125f && q[5] == 2.375f);  // bin means of the centred values
  const uint8_t f1[7] = {0x00, 0x10, 0x00, 0x02, 0x30, 0x00, 0xE6};  // indices 0..3, codes 2 1 2 3
  const uint8_t f2[2] = {0x55, 0xE6};                                // upper bits at 0 2 4 6
  if (format == 1)
    CHECK(std::memcmp(p.data() + 61, f1, 7) == 0);
  else
    CHECK(std::memcmp(p.data() + 61, f2, 2) == 0);
  CHECK((m.error[0] == std::vector<float>{-0.25f, 0.0f, 0.25f, 0.0f}));
  std::vector<float> out(4);
  float* op = out.data();
  CHECK_EQ(covenant_decode(m.spec.data(), 1, &cfg, p.data(), p.size(), &op, nullptr), COVENANT_OK);
  CHECK((out == std::vector<float>{0.75f, -2.0f, 0.75f, 3.0f}));
}

}  // namespace

int main(int argc, char** argv) {
  hand_vector(1);
  hand_vector(2);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (const KatCase& c : kat_cases()) {
    std::vector<uint8_t> committed = read_file(dir + "/" + c.file);
    CHECK(!committed.empty());
    if (committed.empty()) {
      std::fprintf(stderr, "missing %s/%s\n", dir.c_str(), c.file);
      continue;
    }
    Model m = kat_model();
    covenant_config cfg = make_config(c.format, c.topk, 2);
    std::vector<uint8_t> payload = kat_payload(m, cfg, c.dtype);
    if (payload != committed)
      std::fprintf(stderr, "%s differs from the committed vector\n", c.file);
    CHECK(payload == committed);
    covenant_error err{};
    CHECK_EQ(covenant_validate(m.spec.data(), m.spec.size(), &cfg, committed.data(),
                               committed.size(), &err),
             COVENANT_OK);
    // error buffer after compression matches its committed checksum
    CHECK_EQ(kat_error_digest(m), c.error_digest);
  }
  return finish("codec_kat");
}
