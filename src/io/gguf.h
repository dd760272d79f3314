/* gguf.h — a validating reader of GGUF files (versions 2 and 3, little-endian) over a read-only
 * buffer the caller owns (an mmap'd file, a provider's bytes), and the decoders of the tensor
 * types a BitNet GGUF holds: the ternary types I2_S (bitnet.cpp, type 36), TQ1_0 and TQ2_0
 * (llama.cpp) decode to int8 {-1,0,1} plus one scale per tensor; the float and quantized types
 * F32, F16, BF16, Q8_0, Q4_0 and Q6_K decode to float32.
 *
 * Every count, string length, array length, alignment, tensor shape, offset and size is checked
 * before use with overflow-safe arithmetic: after bn_gguf_parse succeeds, every key, value and
 * tensor's bytes lie inside the buffer, tensor data do not overlap, and each tensor's byte size
 * matches its type and shape. Errors (bn_err) name the file and the problem.
 *
 * Not: a file writer (gguf_write.c; the generator tests/tools/make_gguf.py writes test files), a
 * model loader (the loader maps names and hyper-parameters through the architecture table), or
 * big-endian GGUF. */
#ifndef BITNET_GGUF_H
#define BITNET_GGUF_H
#include "core/util.h"

/* Metadata value types, as numbered in the GGUF format. */
typedef enum {
    BN_GV_U8 = 0, BN_GV_I8 = 1, BN_GV_U16 = 2, BN_GV_I16 = 3, BN_GV_U32 = 4, BN_GV_I32 = 5,
    BN_GV_F32 = 6, BN_GV_BOOL = 7, BN_GV_STRING = 8, BN_GV_ARRAY = 9, BN_GV_U64 = 10,
    BN_GV_I64 = 11, BN_GV_F64 = 12, BN_GV_COUNT
} bn_gguf_vtype;

/* Tensor types (ggml numbering) this reader knows; any other type number is rejected at parse
 * ("unknown tensor type"). */
typedef enum {
    BN_GT_F32 = 0, BN_GT_F16 = 1, BN_GT_Q4_0 = 2, BN_GT_Q8_0 = 8, BN_GT_Q6_K = 14,
    BN_GT_I8 = 24, BN_GT_BF16 = 30, BN_GT_TQ1_0 = 34, BN_GT_TQ2_0 = 35, BN_GT_I2_S = 36
} bn_gguf_ttype;

/* A string inside the buffer: not NUL-terminated. */
typedef struct { const char *s; uint64_t n; } bn_gguf_str;

typedef struct bn_gguf_kv {
    const char *key;          /* NUL-terminated copy (owned by the bn_gguf) */
    bn_gguf_vtype type;
    bn_gguf_vtype arr_type;   /* arrays: element type (never ARRAY: nested arrays are rejected) */
    uint64_t arr_n;           /* arrays: element count */
    const uint8_t *val;       /* the value's bytes (arrays: the first element) inside the buffer */
    uint64_t val_size;        /* bytes of the value (arrays: of all elements) */
    const uint64_t *str_off;  /* string arrays: offset of element i's length field from val */
} bn_gguf_kv;

#define BN_GGUF_MAX_DIMS 4
typedef struct bn_gguf_tensor {
    const char *name;         /* NUL-terminated copy */
    bn_gguf_ttype type;
    int ndim;
    int64_t ne[BN_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the contiguous (innermost) dimension */
    int64_t numel;
    uint64_t offset;          /* from the start of the data section */
    const uint8_t *data;      /* inside the buffer (aligned to the file's alignment from its start) */
    size_t nbytes;            /* exactly the type's size for the shape */
} bn_gguf_tensor;

typedef struct bn_gguf bn_gguf;

/* Parse buf[size] (which must stay valid and unchanged until bn_gguf_free). file names the file
 * in messages (copied). Returns BITNET_ERR_FORMAT for a malformed or inconsistent file,
 * BITNET_ERR_UNSUPPORTED for a well-formed one we do not read (version, big-endian, tensor type),
 * BITNET_ERR_NOMEM. On success *out owns the tables (not the buffer). */
bitnet_status bn_gguf_parse(const void *buf, size_t size, const char *file, bn_gguf **out);
void bn_gguf_free(bn_gguf *g);
const char *bn_gguf_file(const bn_gguf *g);
uint32_t bn_gguf_version(const bn_gguf *g);
uint32_t bn_gguf_alignment(const bn_gguf *g);

int bn_gguf_n_kv(const bn_gguf *g);
const bn_gguf_kv *bn_gguf_kv_at(const bn_gguf *g, int i);
/* NULL when absent (no error set). */
const bn_gguf_kv *bn_gguf_find_kv(const bn_gguf *g, const char *key);

/* Typed getters. Each returns BITNET_OK and fills *out; BITNET_ERR_FORMAT ("<file>: missing
 * metadata key 'k'") when absent, or when the value has the wrong type or does not fit:
 * get_int accepts any integer type (u8..i64) whose value fits int64 and lies in [lo, hi];
 * get_f32 accepts F32 or F64 (a finite value that fits float); get_bool accepts BOOL (0 or 1);
 * get_str accepts STRING and gives a pointer into the buffer (not NUL-terminated). */
bitnet_status bn_gguf_get_int(const bn_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out);
bitnet_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out);
bitnet_status bn_gguf_get_bool(const bn_gguf *g, const char *key, int *out);
bitnet_status bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out);
/* An array of element type et (et = BN_GV_COUNT: any) with *n elements. */
bitnet_status bn_gguf_get_arr(const bn_gguf *g, const char *key, bn_gguf_vtype et, const bn_gguf_kv **out);
/* Element i of an array kv (i >= arr_n or a mismatched element type gives "" / 0): a string
 * element (pointer into the buffer); an integer or bool element as int64 (u64 values above
 * INT64_MAX read as INT64_MAX; float elements give 0); any numeric element as a double. */
bn_gguf_str bn_gguf_arr_str(const bn_gguf_kv *kv, uint64_t i);
int64_t bn_gguf_arr_int(const bn_gguf_kv *kv, uint64_t i);
double bn_gguf_arr_float(const bn_gguf_kv *kv, uint64_t i);

int bn_gguf_n_tensors(const bn_gguf *g);
const bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int i);
/* NULL when absent (no error set). */
const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name);

/* ---- tensor types ---- */
/* "f32", "tq2_0", ...; "unknown" for others. */
const char *bn_gguf_type_name(uint32_t type);
/* Is the type one this reader knows? */
int bn_gguf_type_known(uint32_t type);
/* Byte size of a tensor of type with numel elements whose innermost dimension is ne0:
 * BITNET_ERR_FORMAT when ne0 is not a multiple of the type's block (name names the tensor
 * in the message) or the size overflows. I2_S is numel/4 bytes of codes + 32 bytes (the f32
 * scale in the first 4) and needs numel % 4 == 0. */
bitnet_status bn_gguf_type_nbytes(uint32_t type, int64_t numel, int64_t ne0, const char *name, size_t *out);

/* The two block layouts bitnet.cpp has written I2_S codes in (the file does not say which; the
 * published x86 files use 128): in blocks of B values of the flattened tensor (B/4 bytes), value
 * j of a block sits in byte j % (B/4) at bits 6 - 2*(j / (B/4)), as code value+1 (3 is invalid).
 * BN_I2S_X86 is B = 128 (x86 builds, ACT_PARALLEL), BN_I2S_ARM is B = 64 (ARM builds). */
typedef enum { BN_I2S_X86 = 0, BN_I2S_ARM = 1 } bn_i2s_layout;

/* Decode a ternary tensor (I2_S, TQ1_0, TQ2_0) into q[numel] (flattened, ggml order: row r of
 * ne[1] rows holds q[r*ne0 .. r*ne0+ne0-1]) in {-1,0,1} and its one scale (W = q * scale).
 * I2_S: the scale is the f32 after the codes (finite, >= 0); layout as above.
 * TQ1_0/TQ2_0: each 256-value block has an fp16 scale d; blocks whose d is 0 decode to 0; every
 * other block must have the same |d| (a negative d flips its block's signs), else
 * BITNET_ERR_UNSUPPORTED (per-block ternary scales; BitNet tensors have one). A TQ2_0 code 3, an
 * I2_S code 3 or a non-finite scale is BITNET_ERR_FORMAT. Errors name file and tensor. */
bitnet_status bn_gguf_decode_ternary(const bn_gguf *g, const bn_gguf_tensor *t, bn_i2s_layout layout,
                                     int8_t *q, float *scale);
/* Decode elements [start, start+n) of a float or quantized tensor (F32, F16, BF16, Q8_0, Q4_0,
 * Q6_K; TQ1_0/TQ2_0 too, as q*d) into dst[n] float32, exactly as ggml's dequantize_row does.
 * start and n must be multiples of the type's block size (32 or 256) and within numel:
 * BITNET_ERR_ARG otherwise; BITNET_ERR_UNSUPPORTED for I2_S (use decode_ternary). */
bitnet_status bn_gguf_decode_f32(const bn_gguf_tensor *t, int64_t start, int64_t n, float *dst);

/* ---- model-level reads (names without ".weight"; shapes logical row-major, so a GGUF tensor
 * with ne = {in, out} is the matrix [out, in]) ---- */
/* Fetch "<base>.weight" and check it has shape [rows, cols] (ndim 2) or [cols] (rows = 0, ndim
 * 1): BITNET_ERR_FORMAT "missing tensor" / "shape mismatch" naming file and tensor. */
bitnet_status bn_gguf_get_tensor(const bn_gguf *g, const char *base, int64_t rows, int64_t cols, const bn_gguf_tensor **out);
/* A float tensor [rows, cols] (rows = 0: a vector [cols]) of any float/quantized type decoded
 * into dst[numel]; every value must be finite (BITNET_ERR_NUMERIC otherwise). */
bitnet_status bn_gguf_read_float(const bn_gguf *g, const char *base, int64_t rows, int64_t cols, float *dst);
/* A BitLinear weight "<base>.weight" [rows, cols] as ternary q[rows*cols] and its scale
 * (W = q * scale, the autobitlinear multiplier):
 *   I2_S / TQ1_0 / TQ2_0   decoded by bn_gguf_decode_ternary;
 *   F32 / F16 / BF16       when every value is 0 or +-s for one s > 0 (what bitnet.cpp's and
 *                          llama.cpp's converters write): q = w / s, scale = s; otherwise the
 *                          values are latent (master) weights and are ternarized by absmean
 *                          (scale = max(mean|w|, 1e-5), q = clamp(rint(w / scale), -1, 1));
 * then an optional 1-element "<base>.scale" tensor (llama.cpp's bitnet per-tensor scale)
 * multiplies the scale. The scale must come out finite and > 0 unless every q is 0. */
bitnet_status bn_gguf_read_linear(const bn_gguf *g, const char *base, int64_t rows, int64_t cols,
                                  bn_i2s_layout layout, int8_t *q, float *scale);

/* Encode x[n] (a tensor whose innermost dimension is ne0) as type F32, F16, BF16, Q8_0, Q4_0 or
 * Q6_K into out[bn_gguf_type_nbytes bytes] (gguf_encode.c: Q8_0 / Q4_0 as ggml's reference
 * quantizers, Q6_K a plain encoder). BITNET_ERR_FORMAT when ne0 is not a multiple of the block
 * (name names the tensor), BITNET_ERR_UNSUPPORTED for other types. */
bitnet_status bn_gguf_encode_f32(uint32_t type, const float *x, int64_t n, int64_t ne0, const char *name, uint8_t *out);

/* Elements per block of a type (1 for F32/F16/BF16/I2_S, 32 for Q8_0/Q4_0, 256 for the K/TQ types). */
int bn_gguf_type_block(uint32_t type);
#endif
