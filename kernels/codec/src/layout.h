// Chunk geometry and record sizes of one tensor: the single source of truth shared by the
// CPU backend, the CUDA backend and the wire-format parser.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define COVENANT_HD __host__ __device__
#else
#define COVENANT_HD
#endif

namespace covenant {

constexpr uint32_t kMaxChunkSide = 64;
constexpr uint32_t kIndexBitsFormat1 = 12;
constexpr uint32_t kCodeBits = 2;
constexpr uint32_t kSumGroup = 256;  // chunks per partial sum (see docs/wire-format.md)

// Largest divisor of n that is <= 64.
COVENANT_HD inline uint32_t chunk_side(uint32_t n) {
  for (uint32_t d = n < kMaxChunkSide ? n : kMaxChunkSide; d > 1; --d)
    if (n % d == 0) return d;
  return 1;
}

COVENANT_HD inline uint32_t floor_log2(uint32_t x) {
  uint32_t r = 0;
  while (x >>= 1) ++r;
  return r;
}

struct Layout {
  uint32_t rows = 0, cols = 0;  // a rank-1 tensor of n is 1 x n
  uint32_t chunk_rows = 0, chunk_cols = 0;
  uint32_t tiles_per_row = 0;  // cols / chunk_cols
  uint64_t chunks = 0;
  uint32_t chunk_size = 0;  // chunk_rows * chunk_cols, <= 4096
  uint32_t k = 0;           // kept per chunk
  uint32_t format = 0;
  uint32_t low_bits = 0;      // Elias-Fano low bits per index (format 2)
  uint32_t high_bits = 0;     // Elias-Fano upper-bits section length (format 2)
  uint32_t index_bytes = 0;   // index section of one chunk record
  uint32_t code_bytes = 0;    // code section of one chunk record
  uint32_t record_bytes = 0;  // index_bytes + code_bytes
  uint64_t body_bytes = 0;    // chunks * record_bytes

  COVENANT_HD uint64_t numel() const { return uint64_t(rows) * cols; }
  COVENANT_HD uint64_t kept() const { return chunks * k; }
  // Flat row-major offset of chunk-local element i of chunk c.
  COVENANT_HD uint64_t flat(uint64_t c, uint32_t i) const {
    uint64_t tr = c / tiles_per_row, tc = c % tiles_per_row;
    uint64_t r = tr * chunk_rows + i / chunk_cols;
    uint64_t col = tc * chunk_cols + i % chunk_cols;
    return r * cols + col;
  }
};

// Fills the layout; k_wanted is clamped to the chunk size. Returns false for a bad shape.
COVENANT_HD inline bool make_layout(uint32_t rank, const uint32_t* dims, uint32_t k_wanted,
                                    uint32_t format, Layout* out) {
  if (rank < 1 || rank > 2 || k_wanted == 0 || (format != 1 && format != 2)) return false;
  Layout l;
  l.rows = rank == 2 ? dims[0] : 1;
  l.cols = rank == 2 ? dims[1] : dims[0];
  if (l.rows == 0 || l.cols == 0) return false;
  l.chunk_rows = chunk_side(l.rows);
  l.chunk_cols = chunk_side(l.cols);
  l.tiles_per_row = l.cols / l.chunk_cols;
  l.chunks = uint64_t(l.rows / l.chunk_rows) * l.tiles_per_row;
  l.chunk_size = l.chunk_rows * l.chunk_cols;
  l.k = k_wanted < l.chunk_size ? k_wanted : l.chunk_size;
  l.format = format;
  uint64_t index_bits;
  if (format == 1) {
    index_bits = uint64_t(l.k) * kIndexBitsFormat1;
  } else {
    uint32_t ratio = l.chunk_size / l.k;
    l.low_bits = ratio > 1 ? floor_log2(ratio) : 0;
    l.high_bits = l.k + ((l.chunk_size - 1) >> l.low_bits) + 1;
    index_bits = uint64_t(l.k) * l.low_bits + l.high_bits;
  }
  l.index_bytes = uint32_t((index_bits + 7) / 8);
  l.code_bytes = (l.k * kCodeBits + 7) / 8;
  l.record_bytes = l.index_bytes + l.code_bytes;
  l.body_bytes = l.chunks * l.record_bytes;
  *out = l;
  return true;
}

// Bit-level access, least significant bit first within little-endian bytes.
COVENANT_HD inline uint32_t get_bits(const uint8_t* p, uint64_t bit, uint32_t n) {
  uint32_t v = 0;
  for (uint32_t j = 0; j < n; ++j) {
    uint64_t b = bit + j;
    v |= uint32_t((p[b >> 3] >> (b & 7)) & 1u) << j;
  }
  return v;
}

COVENANT_HD inline void put_bits(uint8_t* p, uint64_t bit, uint32_t n, uint32_t v) {
  for (uint32_t j = 0; j < n; ++j) {
    uint64_t b = bit + j;
    p[b >> 3] = uint8_t(p[b >> 3] | (((v >> j) & 1u) << (b & 7)));
  }
}

// Codes of one value: round-half-even of c / scale + 2, clamped to [0, 3]; every code is 2
// when scale is zero. Written without contraction so that every backend agrees.
COVENANT_HD inline uint32_t quantize(float centred, float scale) {
  if (!(scale > 0.0f)) return 2;
  float q = centred / scale;
  q = q + 2.0f;
#ifdef __CUDA_ARCH__
  q = rintf(q);
#else
  q = __builtin_rintf(q);
#endif
  if (!(q >= 0.0f)) return 0;
  if (q > 3.0f) return 3;
  return uint32_t(q);
}

}  // namespace covenant
