// One chunk record of the payload body: the chunk's sorted indices (format 1: 12 bits each;
// format 2: Elias-Fano) followed by its 2-bit codes, each section padded with zero bits to a
// byte. Encoder and strict decoder, shared by the CPU and CUDA backends.
#pragma once

#include <cstdint>

#include "covenant_codec.h"
#include "layout.h"

namespace covenant {

// rec must hold layout.record_bytes zero bytes; idx strictly increasing and < chunk_size.
COVENANT_HD inline void encode_record(const Layout& l, const uint16_t* idx, const uint8_t* codes,
                                      uint8_t* rec) {
  if (l.format == 1) {
    for (uint32_t j = 0; j < l.k; ++j)
      put_bits(rec, uint64_t(j) * kIndexBitsFormat1, kIndexBitsFormat1, idx[j]);
  } else {
    const uint32_t low_mask = (1u << l.low_bits) - 1u;
    const uint64_t high_start = uint64_t(l.k) * l.low_bits;
    for (uint32_t j = 0; j < l.k; ++j) {
      if (l.low_bits) put_bits(rec, uint64_t(j) * l.low_bits, l.low_bits, idx[j] & low_mask);
      put_bits(rec, high_start + (idx[j] >> l.low_bits) + j, 1, 1);
    }
  }
  uint8_t* code_sec = rec + l.index_bytes;
  for (uint32_t j = 0; j < l.k; ++j)
    put_bits(code_sec, uint64_t(j) * kCodeBits, kCodeBits, codes[j]);
}

COVENANT_HD inline bool padding_is_zero(const uint8_t* sec, uint32_t used_bits, uint32_t bytes) {
  for (uint32_t b = used_bits; b < bytes * 8u; ++b)
    if ((sec[b >> 3] >> (b & 7)) & 1u) return false;
  return true;
}

// Decodes and checks one record; returns COVENANT_OK or the first violated rule.
COVENANT_HD inline int32_t decode_record(const Layout& l, const uint8_t* rec, uint16_t* idx,
                                         uint8_t* codes) {
  if (l.format == 1) {
    for (uint32_t j = 0; j < l.k; ++j) {
      uint32_t v = get_bits(rec, uint64_t(j) * kIndexBitsFormat1, kIndexBitsFormat1);
      if (v >= l.chunk_size) return COVENANT_ERR_INDEX_RANGE;
      if (j > 0 && v <= idx[j - 1]) return COVENANT_ERR_INDEX_ORDER;
      idx[j] = uint16_t(v);
    }
    if (!padding_is_zero(rec, l.k * kIndexBitsFormat1, l.index_bytes)) return COVENANT_ERR_PADDING;
  } else {
    const uint32_t high_start = l.k * l.low_bits;
    uint32_t ones = 0;
    for (uint32_t pos = 0; pos < l.high_bits; ++pos) {
      uint32_t bit = high_start + pos;
      if (!((rec[bit >> 3] >> (bit & 7)) & 1u)) continue;
      if (ones == l.k) return COVENANT_ERR_ENCODING;
      uint32_t high = pos - ones;
      uint32_t low = l.low_bits ? get_bits(rec, uint64_t(ones) * l.low_bits, l.low_bits) : 0;
      uint32_t v = (high << l.low_bits) | low;
      if (v >= l.chunk_size) return COVENANT_ERR_INDEX_RANGE;
      if (ones > 0 && v <= idx[ones - 1]) return COVENANT_ERR_INDEX_ORDER;
      idx[ones++] = uint16_t(v);
    }
    if (ones != l.k) return COVENANT_ERR_ENCODING;
    if (!padding_is_zero(rec, high_start + l.high_bits, l.index_bytes)) return COVENANT_ERR_PADDING;
  }
  const uint8_t* code_sec = rec + l.index_bytes;
  for (uint32_t j = 0; j < l.k; ++j)
    codes[j] = uint8_t(get_bits(code_sec, uint64_t(j) * kCodeBits, kCodeBits));
  if (!padding_is_zero(code_sec, l.k * kCodeBits, l.code_bytes)) return COVENANT_ERR_PADDING;
  return COVENANT_OK;
}

}  // namespace covenant
