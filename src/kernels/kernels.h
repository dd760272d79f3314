/* kernels.h — the contract of every compute kernel, and the runtime dispatch table.
 *
 * Ternary matrices. A BitLinear weight W[rows=out, cols=in] with values in {-1, 0, +1} is kept
 * only in a kernel-specific packed form (about 2 bits per weight or less), made at load time by
 * that kernel set's pack() from plain int8 values. The on-disk format never depends on the ISA.
 * Activations are int8 rows, each zero-padded to kp = bn_kpad(cols) entries (so kernels may
 * read whole blocks); the products are exact int32 sums. Scales are applied by the caller:
 *     y_float = (float)y_int / s_act * w_scale        (see model.c)
 *
 * Reference layout ("ref", src/kernels/ref.c; the spec): row-major, each row kp/4 bytes; weight
 * k of row r sits in byte r*(kp/4) + k/4, bits 2*(k%4)..2*(k%4)+1, as code = value + 1
 * (0 -> -1, 1 -> 0, 2 -> +1). Padding weights have code 1 (zero).
 *
 * SIMD layout ("i16", every ISA set: avx2, avx512, neon, dotprod; made by bn_pack_i16 in ref.c):
 * rows are grouped in blocks of 16 (the last block padded with zero rows), each block is
 * 16*kp/4 bytes, blocks follow each other. Inside a block, k-group g (k = 16g .. 16g+15) takes
 * 64 bytes at offset 64*g; byte 4*j + t (row j of the block, t = 0..3) holds the codes of
 * k = 16g + 4s + t for s = 0..3 in bits 2s..2s+1 (code = value + 1; padding code 1).
 * So (byte >> 2s) & 3 over a 64-byte vector gives, for each row j, 4 consecutive codes that a
 * 4-way byte dot product (x86 vpdpbusd / vpmaddubsw, ARM sdot) multiplies by the 4 activation
 * bytes x[16g+4s .. +3] broadcast to every 32-bit lane; one activation load serves 16 rows.
 * x86 computes sum(code*x) - sum(x) (unsigned codes times signed x); ARM uses code-1 directly.
 * packed_size = ceil(rows/16)*16 * kp/4 bytes (2 bits per weight).
 *
 * Quantized LM head (opt-in, same layout for every set, made by hq8_quant / hq4_quant):
 *   Q8: cp = cols rounded up to 64. float scale[rows], then int8 q[rows][cp] at byte offset
 *       bn_hq8_qoff(rows). Per row m = max|w|; q = clamp(rintf(w * (127/m)), -127, 127),
 *       scale = m/127 (m == 0: all zero).  y[r] = scale[r] * sum_k q[r][k] * x[k].
 *   Q4: cp as above, nb = cp/32 blocks per row. float d[rows][nb], then at byte offset
 *       bn_hq4_qoff(rows, cols) nibbles [rows][cp/2]: block b of row r is 16 bytes, byte j holds
 *       q[32b+j]+8 in its low nibble and q[32b+16+j]+8 in its high nibble. Per block, v = the
 *       entry of largest |w| (first one on ties), d = v / -8, q = clamp(rintf(w * (1/d)), -8, 7)
 *       (d == 0: all zero).  y[r] = sum_b d[r][b] * sum_{j<32} q[32b+j] * x[32b+j].
 *   hgemm_q8/q4 never read x beyond cols; results match ref within float rounding.
 *
 * Every ISA kernel set must give bit-identical int32 results to ref for any rows, cols, n,
 * r0 <= r1, and all int8 activations including -128 (tests/test_kernels.c checks this).
 * Float kernels (quant_act, fgemm) must match ref within float rounding; quant_act must give
 * identical int8 values and scale for the same input (it decides rounding ties, half-to-even). */
#ifndef BITNET_KERNELS_H
#define BITNET_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#define BN_KBLOCK 128
static inline int bn_kpad(int cols) { return (cols + BN_KBLOCK - 1) / BN_KBLOCK * BN_KBLOCK; }

/* dtype codes for float weight matrices in fgemm (same numbering as bn_dtype in safetensors.h) */
enum { BN_W_F32 = 0, BN_W_F16 = 1, BN_W_BF16 = 2 };

typedef struct bn_kernels {
    const char *name;                   /* "ref", "avx2", "avx512", "neon", "dotprod" */
    /* Bytes needed for the packed form of a rows x cols ternary matrix. */
    size_t (*packed_size)(int rows, int cols);
    /* w: int8[rows][cols] row-major, values in {-1,0,1}  ->  dst[packed_size(rows, cols)]. */
    void (*pack)(const int8_t *w, int rows, int cols, uint8_t *dst);
    /* Ternary GEMM: for i in [0,n), r in [r0,r1):
     *     y[i*ldy + r] = sum_{k<cols} W[r][k] * x[i*ldx + k]      (exact int32)
     * x: int8[n][ldx], ldx >= bn_kpad(cols), entries cols..kp-1 are zero. */
    void (*tgemm)(const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy);
    /* Per-token absmax int8 quantization (BitLinear activations):
     *     m = max(max_k |x[k]|, 1e-5);  s = 127.0f / m  (float32 division)
     *     q[k] = clamp(rintf(x[k] * s), -128, 127) for k < cols;  q[k] = 0 for cols <= k < kp
     * returns s. */
    float (*quant_act)(const float *x, int cols, int8_t *q, int kp);
    /* Float GEMM for the LM head and other float products: for i in [0,n), r in [r0,r1):
     *     y[i*ldy + r] = sum_k W[r][k] * x[i*ldx + k]       (float32 accumulation)
     * W: rows x cols row-major of dtype wdt (BN_W_*), possibly unaligned. */
    void (*fgemm)(const void *w, int wdt, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy);
    /* ---- opt-in quantized LM head (layouts above) ---- */
    size_t (*hq8_size)(int rows, int cols);
    /* w: rows x cols of dtype wdt (BN_W_*) -> dst[hq8_size(rows, cols)] */
    void (*hq8_quant)(const void *w, int wdt, int rows, int cols, uint8_t *dst);
    /* for i in [0,n), r in [r0,r1): y[i*ldy + r] = scale[r] * sum_k q[r][k] * x[i*ldx + k] */
    void (*hgemm_q8)(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy);
    size_t (*hq4_size)(int rows, int cols);
    void (*hq4_quant)(const void *w, int wdt, int rows, int cols, uint8_t *dst);
    void (*hgemm_q4)(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy);
} bn_kernels;

/* Shared pieces of the layouts (ref.c). */
#define BN_IBLK 16
size_t bn_i16_packed_size(int rows, int cols);
void bn_pack_i16(const int8_t *w, int rows, int cols, uint8_t *dst);
static inline int bn_hq_cpad(int cols) { return (cols + 63) / 64 * 64; }
static inline size_t bn_hq8_qoff(int rows) { return ((size_t)rows * 4 + 63) / 64 * 64; }
static inline size_t bn_hq4_qoff(int rows, int cols) {
    return ((size_t)rows * (size_t)(bn_hq_cpad(cols) / 32) * 4 + 63) / 64 * 64;
}
size_t bn_hq8_size(int rows, int cols);
void bn_hq8_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst);
size_t bn_hq4_size(int rows, int cols);
void bn_hq4_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst);

/* The reference set (always available). */
const bn_kernels *bn_kernels_ref(void);
/* The best set this CPU and OS support, or the one named by env BITNET_ISA (the best available
 * set instead when that one is not compiled in or not supported by this CPU). */
const bn_kernels *bn_kernels_best(void);
/* A set by name; NULL if not compiled in or not supported by this CPU. */
const bn_kernels *bn_kernels_by_name(const char *name);
/* Names of all sets usable on this machine, NULL-terminated. */
const char *const *bn_kernels_available(void);
#endif
