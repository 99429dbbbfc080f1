/* SparseLoCo codec: C ABI of the CPU reference backend and of the CUDA backend.
 *
 * A model is a list of named parameter tensors (rank 1 or 2). Every call takes that list
 * (the "spec") and a codec configuration; the wire format of the payloads is described in
 * docs/wire-format.md. All functions return a covenant_status code and, when `err` is not
 * NULL, fill it with the code and a message that names the offending field. No function
 * keeps a pointer after it returns; all of them are safe to call from several threads on
 * distinct buffers.
 */
#ifndef COVENANT_CODEC_H
#define COVENANT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COVENANT_WIRE_VERSION 1
#define COVENANT_MAX_TENSORS 65535u
#define COVENANT_MAX_NAME 255u
#define COVENANT_DEFAULT_MAX_ABS 1.0e6f

typedef enum covenant_status {
  COVENANT_OK = 0,
  COVENANT_ERR_ARGUMENT = 1,     /* caller error: null pointer, bad spec or config */
  COVENANT_ERR_TRUNCATED = 2,    /* payload ends inside the header or the tensor table */
  COVENANT_ERR_MAGIC = 3,        /* not a codec payload */
  COVENANT_ERR_VERSION = 4,      /* unknown wire version */
  COVENANT_ERR_FORMAT = 5,       /* unknown format, nonzero flags, or not the run's format */
  COVENANT_ERR_LENGTH = 6,       /* declared or computed length differs from the buffer */
  COVENANT_ERR_TABLE = 7,        /* malformed tensor entry (name, rank, dims, reserved) */
  COVENANT_ERR_DUPLICATE = 8,    /* the same tensor name twice */
  COVENANT_ERR_MISMATCH = 9,     /* tensor missing, extra, renamed, reordered or reshaped */
  COVENANT_ERR_K = 10,           /* kept-per-chunk differs from the run's */
  COVENANT_ERR_QUANT = 11,       /* non-finite, absurd or unordered quantization parameters */
  COVENANT_ERR_INDEX_RANGE = 12, /* a chunk-local index outside the chunk */
  COVENANT_ERR_INDEX_ORDER = 13, /* indices of a chunk not strictly increasing */
  COVENANT_ERR_PADDING = 14,     /* nonzero padding bits (payloads are canonical) */
  COVENANT_ERR_ENCODING = 15,    /* malformed Elias-Fano upper bits */
  COVENANT_ERR_NONFINITE = 16,   /* compress: non-finite error-feedback value */
  COVENANT_ERR_CAPACITY = 17,    /* output buffer too small */
  COVENANT_ERR_BACKEND = 18      /* CUDA unavailable or a CUDA call failed */
} covenant_status;

typedef enum covenant_dtype { COVENANT_F32 = 0, COVENANT_BF16 = 1 } covenant_dtype;

typedef struct covenant_tensor {
  const char* name; /* NUL-terminated, 1..255 bytes of [A-Za-z0-9._/:-] */
  uint32_t rank;    /* 1 or 2 */
  uint32_t dims[2]; /* dims[0..rank-1], each >= 1, row-major */
} covenant_tensor;

typedef struct covenant_config {
  uint32_t format;  /* 1: 12-bit indices, 2: Elias-Fano indices; both with 2-bit codes */
  uint32_t topk;    /* values kept per chunk; a chunk smaller than topk is sent whole */
  float beta;       /* error-feedback decay: e = beta * e + delta */
  float max_abs;    /* largest accepted |shift|, scale, |codebook| (0: default 1e6) */
  uint32_t threads; /* CPU worker threads (0: all hardware threads) */
} covenant_config;

typedef struct covenant_error {
  int32_t code;
  char message[256];
} covenant_error;

typedef struct covenant_aggregate_report {
  uint32_t accepted;          /* payloads that passed validation and were aggregated */
  uint32_t rejected;          /* payloads rejected (see payload_status) */
  uint64_t updated;           /* coordinates of theta changed */
  uint64_t skipped_nonfinite; /* coordinates left unchanged because the result was not finite */
} covenant_aggregate_report;

/* Stable lower-case name of a status code ("truncated", "index_range", ...). */
const char* covenant_status_name(int32_t code);

/* Exact size in bytes of the payload that covenant_compress writes for this spec. */
int32_t covenant_payload_size(const covenant_tensor* spec, size_t count,
                              const covenant_config* config, uint64_t* size, covenant_error* err);

/* Error feedback, top-k, quantization, encoding and self-decode in one call.
 * deltas[i]: pseudo-gradient of tensor i (dtype), errors[i]: fp32 error buffer, updated in place
 * to beta * e + delta - reconstruction. Before it writes anything, compress checks the payload
 * with the receiver's rules: on any failure (among them COVENANT_ERR_NONFINITE for a non-finite
 * beta * e + delta and COVENANT_ERR_QUANT for a quantization parameter beyond max_abs, a
 * payload that covenant_validate would reject) the error buffers are left bit for bit as they
 * were and *out_len is not set; the contents of out are unspecified. */
int32_t covenant_compress(const covenant_tensor* spec, size_t count, const covenant_config* config,
                          covenant_dtype delta_dtype, const void* const* deltas,
                          float* const* errors, uint8_t* out, size_t out_capacity, size_t* out_len,
                          covenant_error* err);

/* Full validation of one payload against the run's spec and configuration. */
int32_t covenant_validate(const covenant_tensor* spec, size_t count, const covenant_config* config,
                          const uint8_t* payload, size_t length, covenant_error* err);

/* Validates, then writes the dense reconstruction (zeros where nothing was kept) into out[i]. */
int32_t covenant_decode(const covenant_tensor* spec, size_t count, const covenant_config* config,
                        const uint8_t* payload, size_t length, float* const* out,
                        covenant_error* err);

/* Validates every payload (payload_status[p] receives its code), then over the accepted ones, per
 * tensor: clip each payload's norm to the median norm, average over the payloads that selected
 * each coordinate, and apply theta -= lr * aggregate, skipping non-finite results. Returns
 * COVENANT_OK when the arguments were usable, even if every payload was rejected. */
int32_t covenant_aggregate(const covenant_tensor* spec, size_t count, const covenant_config* config,
                           const uint8_t* const* payloads, const size_t* lengths,
                           size_t payload_count, float lr, float* const* theta,
                           int32_t* payload_status, covenant_aggregate_report* report,
                           covenant_error* err);

/* ---- CUDA backend (device pointers; same results, same bytes) ---------------------------- */

/* 1 when the library was built with CUDA and a device is present, else 0. */
int32_t covenant_cuda_available(void);

/* As covenant_compress, with deltas, errors and out in device memory. */
int32_t covenant_cuda_compress(const covenant_tensor* spec, size_t count,
                               const covenant_config* config, covenant_dtype delta_dtype,
                               const void* const* deltas, float* const* errors, uint8_t* out,
                               size_t out_capacity, size_t* out_len, covenant_error* err);

/* As covenant_aggregate, with payloads and theta in device memory (lengths, payload_status and
 * report in host memory). */
int32_t covenant_cuda_aggregate(const covenant_tensor* spec, size_t count,
                                const covenant_config* config, const uint8_t* const* payloads,
                                const size_t* lengths, size_t payload_count, float lr,
                                float* const* theta, int32_t* payload_status,
                                covenant_aggregate_report* report, covenant_error* err);

#ifdef __cplusplus
}
#endif
#endif /* COVENANT_CODEC_H */
