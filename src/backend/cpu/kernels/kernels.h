/* kernels.h — the contract of every compute kernel, and the one runtime dispatch mechanism.
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
 * 4-way byte dot product (x86 vpdpbusd / vpmaddubsw, ARM sdot / smull) multiplies by the 4 activation
 * bytes x[16g+4s .. +3] broadcast to every 32-bit lane; one activation load serves 16 rows.
 * Every SIMD set computes sum(code*x) with codes 0..2 (x86: unsigned codes times signed x; ARM:
 * signed bytes) and subtracts sum(x), which the shared driver (tgemm_i16.c) computes once per
 * activation row.
 * packed_size = ceil(rows/16)*16 * kp/4 bytes (2 bits per weight).
 *
 * Base-3 layout ("b3", 1.6 bits per weight; the sets "ref-b3", "avx2-b3", "avx512-b3", made by
 * bn_pack_b3 in ref.c; a repack at load like every layout, chosen by picking such a set): 16-row
 * blocks as in i16 (the last padded with zero rows), each block 64*G bytes with G =
 * bn_b3_groups(cols) = ceil(cols/20). K-group g (k = 20g .. 20g+19) takes 64 bytes at offset 64*g;
 * byte 4*j + t (row j, t = 0..3) holds the five codes c_s (s = 0..4, code = value + 1, padding
 * code 1) of k = 20g + 4s + t as q = ceil(b * 256 / 243), b = sum_s c_s * 3^(4-s) (llama.cpp's
 * TQ1_0 trick). Decoding: m_0 = q, c_s = (3*m_s) >> 8, m_{s+1} = (3*m_s) mod 256; so digit s of a
 * 64-byte vector gives, for each row, 4 consecutive codes that multiply x[20g+4s .. +3] like one
 * i16 shift. Linear form (the AVX-512 GEMV without VBMI, and its last group): 3*m_s = 256*c_s + m_{s+1} per byte, hence
 * sum(code*x) = (3*sum_s m_s.X_s - sum_s m_{s+1}.X_s) / 256 with unsigned bytes m (exact in
 * wrapping int32 while cols < 32768). Kernels never read x at or beyond kp: in the last group
 * only the digits s with 20g + 4s < kp are used. packed_size = ceil(rows/16)*16 * 4*G bytes.
 *
 * Quantized LM head (opt-in, same layout for every set, made by hq8_quant / hq4_quant):
 *   Q8: cp = cols rounded up to 64. float scale[rows], then int8 q[rows][cp] at byte offset
 *       bn_hq8_qoff(rows). Per row m = max|w|; q = clamp(rintf(w * (127/m)), -127, 127),
 *       scale = m/127 (m == 0: all zero).  y[r] = scale[r] * sum_k q[r][k] * x[k].
 *   Q4: cp as above, nb = cp/32 blocks per row. float d[rows][nb], then at byte offset
 *       bn_hq4_qoff(rows, cols) nibbles [rows][cp/2]: block b of row r is 16 bytes, byte j holds
 *       q[32b+j]+8 in its low nibble and q[32b+16+j]+8 in its high nibble. Per block, v = the
 *       entry of largest |w| (first one on ties), d = v / -8, q = clamp(rintf(w * (1/d)), -8, 7)
 *       (d == 0: all zero).
 *   Activations (integer heads, as llama.cpp's Q8_0 x Q4_0/Q8_0 dot products): each x row is
 *   quantized per 32-block b (k = 32b .. 32b+31, b < cp/32, x[k] = 0 for k >= cols) by the one
 *   shared scalar bn_hq_quant_x (ref.c; identical bits in every set): m_b = max|x[k]|,
 *   dx[b] = m_b / 127, xq[k] = clamp(rintf(x[k] / dx[b]), -127, 127) (dx == 0: all xq 0; a
 *   NaN/inf in the block: xq 0 and dx NaN, so every y of that row is NaN). Then
 *       S_b = sum_{j<32} q[32b+j] * xq[32b+j]               (exact integer, every set),
 *       Q8: y[r] = scale[r] * sum_b dx[b] * S_b,   Q4: y[r] = sum_b (d[r][b] * dx[b]) * S_b
 *   the float part (sums over b in order in ref) within float rounding of ref in every set.
 *   hgemm_q8/q4 never read x beyond cols. Measured logit error of this against float x on the
 *   golden models: docs/PERFORMANCE.md "Integer quantized heads (h36)".
 *
 * Every ISA kernel set must give bit-identical int32 results to ref for any rows, cols, n,
 * r0 <= r1, and all int8 activations including -128 (tests/test_kernels.c checks this).
 * quant_act must give identical int8 values and scale (bit for bit) to ref for every input,
 * NaN and infinities included (it decides rounding ties, half-to-even); fgemm and the heads
 * match ref within float rounding.
 *
 * Non-finite activations (F4). quant_act is total: if any x[k] (k < cols) is NaN or +-inf,
 * every q[k] (k < kp) is 0 and it returns NaN (the bits of the NAN macro); otherwise it returns
 * a finite s > 0. So y_float = y_int / s * w_scale is NaN for that token (never plausible
 * garbage), and a caller that wants to report it tests `s != s` (BITNET_ERR_NUMERIC). No float
 * is ever cast to an integer type outside its range, in any set.
 *
 * Dispatch: ONE mechanism. A kernel set (bn_kernels) carries everything ISA-specific: the
 * ternary, activation and head kernels, the float32 GEMM micro-kernel of bn_sgemm (training
 * and prefill attention) and the AdamW row kernel. A model (inference or training) is given
 * its set by parameter; two models in one process may use different sets. Per-ISA files
 * (x86_avx2.c, x86_avx512.c, arm_neon.c, arm_dotprod.c) define only their inner kernels and a
 * partial table; the drivers are written once (tgemm_i16.c: blocks, chunks, GEMV prefetch; ref.c:
 * the float/head row drivers, the quantizer's scalar tail; gemm_f32.c: the float GEMM blocking);
 * dispatch.c completes each table once (the layout slots packed_size/pack and
 * the head formats hq8/hq4 are layout properties, filled from shared code) and is the one
 * place that reads the environment: BITNET_ISA may name the DEFAULT set, read once.
 * Prefetch distances are compile-time constants of the ISA files. The elementwise row loops of
 * model.c/train.c/optim.c are the one exception: they are vectorized by the compiler and
 * built per CPU with BN_CLONES (below), picked by the CPU at load time (ifunc), not by the
 * set; they do no ternary or GEMM work. */
#ifndef BITNET_KERNELS_H
#define BITNET_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "core/util.h"

#define BN_KBLOCK 128
static inline int bn_kpad(int cols) { return (cols + BN_KBLOCK - 1) / BN_KBLOCK * BN_KBLOCK; }

/* dtype codes for float weight matrices in fgemm (same numbering as bn_dtype in safetensors.h) */
enum { BN_W_F32 = 0, BN_W_F16 = 1, BN_W_BF16 = 2 };
/* Element i of a float weight matrix of dtype wdt (possibly unaligned), as float32. */
static inline float bn_wget(const void *w, int wdt, size_t i) {
    uint16_t h;
    if (wdt == BN_W_F32) { float f; memcpy(&f, (const char *)w + i * 4, 4); return f; }
    memcpy(&h, (const char *)w + i * 2, 2);
    return wdt == BN_W_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h);
}

/* Float32 GEMM micro-kernel of bn_sgemm (gemm_f32.c). fn: C[i][j] (i < mr, j < nr, row stride
 * ldc) = (acc ? C[i][j] : 0) + sum_{k<kc} A[k*mr + i] * B[k*nr + j] (packed panels, B 64-byte
 * aligned), the sum over k in increasing order. fna (NULL if none): the same with A unpacked,
 * row i at A + i*lda (k contiguous), bit-identical to fn. pack_bt (NULL if none): d[k*nr + j] =
 * src[j*ldb + k] for j < nr, k < kc (a transposing pack of one full B panel). */
#define BN_SGEMM_MAXMR 12
#define BN_SGEMM_MAXNR 32
typedef struct bn_sgemm_ukr {
    const char *name;                   /* "c", "avx2", "avx512" */
    int mr, nr;
    void (*fn)(int kc, const float *A, const float *B, float *C, int ldc, int acc);
    void (*fna)(int kc, const float *A, int lda, const float *B, float *C, int ldc, int acc);
    void (*pack_bt)(const float *src, int ldb, int kc, float *d);
} bn_sgemm_ukr;

/* AdamW over n elements, per element exactly (IEEE mul/add/sqrt/div, no FMA contraction; every
 * set gives identical bits), as optim.h states it:
 *     p = p*decay; m += (g - m)*omb1; v = v*b2 + omb2*g*g;
 *     p += (-step_size*m) / (sqrt(v)/bc2s + eps)                                           */
typedef void (*bn_adam_fn)(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                           size_t n, float decay, float step_size, float bc2s, float omb1, float b2,
                           float omb2, float eps);

/* Ternary layouts (which packed form pack() makes). */
enum { BN_LAYOUT_REF = 0, BN_LAYOUT_I16 = 1, BN_LAYOUT_B3 = 2 };

typedef struct bn_kernels {
    const char *name;                   /* "ref", "avx2", "avx512", "avx512-novnni", "neon", "dotprod" */
    int layout;                         /* BN_LAYOUT_*; decides packed_size and pack */
    /* Bytes needed for the packed form of a rows x cols ternary matrix (from the layout). */
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
     * returns s; non-finite input: all q = 0, returns NaN (see above). */
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
    /* for i in [0,n), r in [r0,r1): y[i*ldy + r] = the Q8 formula above (int8 activations) */
    void (*hgemm_q8)(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy);
    size_t (*hq4_size)(int rows, int cols);
    void (*hq4_quant)(const void *w, int wdt, int rows, int cols, uint8_t *dst);
    void (*hgemm_q4)(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy);
    /* ---- training / float products ---- */
    const bn_sgemm_ukr *sgemm;          /* micro-kernel of bn_sgemm */
    bn_adam_fn adam;                    /* AdamW row kernel (bn_adamw_update) */
    /* ---- the transposed ternary product (backward through a frozen packed matrix) ----
     * For a caller that quantizes dY per token (absmax int8, like quant_act): dX = dY_q @ W
     * exactly, then scaled. The LoRA trainer does NOT use it: PEFT's STE backward through a
     * frozen BitLinear is dX = dY @ W_q in float, and an int8 dY would add a rounding PEFT does
     * not have; train.c instead multiplies the float dY by W unpacked a tile at a time (the
     * unpack slot), so no float copy of a packed matrix exists there either. */
    /* for i in [0,n), k in [c0,c1) (0 <= c0 <= c1 <= cols):
     *     dx[i*lddx + k] = sum_{r<rows} dy[i*lddy + r] * W[r][k]      (exact int32)
     * W: the packed form of pack(); dy: int8[n][lddy], lddy >= bn_kpad(rows), entries
     * rows..bn_kpad(rows)-1 zero (as quant_act leaves them). Every set bit-identical to ref. */
    void (*tgemm_t)(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx);
    /* Layout slot (dispatch.c): rows [r0, r1) of the packed matrix back as values,
     * dst[(r - r0)*cols + k] = W[r][k] in {-1, 0, 1}, k < cols. */
    void (*unpack)(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst);
} bn_kernels;

/* Shared pieces of the transposed product and the unpack slot (ref.c, tgemm_i16.c). */
void bn_ref_unpack(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst);
void bn_unpack_i16(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst);
/* The b3 layout's unpack and transposed product, scalar (ref.c); every b3 set uses them. */
void bn_unpack_b3(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst);
void bn_b3_tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                   const int8_t *dy, int lddy, int n, int32_t *dx, int lddx);
/* The transposed driver of the i16 layout, over an ISA's tiler (see bn_tgemm_i16 below): it
 * re-packs 16 columns x up to BN_TT_RCHUNK rows of W at a time into the i16 layout of W^T (a
 * 16x16 transpose of each 64-byte group) and runs the ISA's forward tile on that, so every set
 * reuses its own tested inner loop. */
#define BN_TT_RCHUNK 2048
struct bn_i16_tiler;
void bn_tgemm_t_i16(const struct bn_i16_tiler *t, const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx);

/* Shared pieces of the layouts (ref.c). */
size_t bn_ref_packed_size(int rows, int cols);
void bn_ref_pack(const int8_t *w, int rows, int cols, uint8_t *dst);
#define BN_IBLK 16
size_t bn_i16_packed_size(int rows, int cols);
void bn_pack_i16(const int8_t *w, int rows, int cols, uint8_t *dst);
static inline int bn_b3_groups(int cols) { return (cols + 19) / 20; }
size_t bn_b3_packed_size(int rows, int cols);
void bn_pack_b3(const int8_t *w, int rows, int cols, uint8_t *dst);
static inline int bn_hq_cpad(int cols) { return (cols + 63) / 64 * 64; }
static inline size_t bn_hq8_qoff(int rows) { return ((size_t)rows * 4 + 63) / 64 * 64; }
static inline size_t bn_hq4_qoff(int rows, int cols) {
    return ((size_t)rows * (size_t)(bn_hq_cpad(cols) / 32) * 4 + 63) / 64 * 64;
}
size_t bn_hq8_size(int rows, int cols);
void bn_hq8_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst);
size_t bn_hq4_size(int rows, int cols);
void bn_hq4_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst);

/* The ternary GEMM driver of the i16 (and b3) layout (tgemm_i16.c), shared by every SIMD set; an ISA
 * gives its tile. tile: for the 16-row block wb (ng = kp/16 k-groups) and activation rows
 * i < nb at x + i*ldx: y[i*ldy + j] = sum_k code[j][k] * x_i[k] - sx[i] for j0 <= j < j1 only
 * (codes 0..2 as in the layout, sx[i] = sum_i8(x_i, kp), so the result is the exact product). */
#define BN_TCHUNK 256
typedef struct bn_i16_tiler {
    int nbmax;                          /* activation rows per tile call, 1..BN_TCHUNK */
    int pf_burst;                       /* GEMV (n <= 2): bytes of weights prefetched up front (0: none) */
    int pf_next;                        /* prefetch the first line of the next block */
    int32_t (*sum_i8)(const int8_t *x, int kp);   /* sum of kp int8 (kp % 128 == 0) */
    void (*tile)(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                 int32_t *y, int ldy, int j0, int j1);
    int b3;                             /* 1: the weights are in the b3 layout (blocks of 64*G bytes)
                                         * and the tile's ng is the number of 4-k quads to read,
                                         * nq = min(5*G, kp/4): groups ceil(nq/5), the last one
                                         * with nq - 5*(groups-1) digits */
    /* b3 only, may be NULL: expand one b3 block (nq quads) into one i16 block of ng16 = kp/16
     * groups (quads past nq get code 1), and the set's i16 tile; the driver uses them when a
     * block meets more activation rows than one tile call takes (kp <= 16384). */
    void (*expand)(const uint8_t *wb, int nq, int ng16, uint8_t *dst);
    void (*tile16)(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                   int32_t *y, int ldy, int j0, int j1);
} bn_i16_tiler;
void bn_tgemm_i16(const bn_i16_tiler *t, const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy);

/* Shared pieces of every set's quant_act (ref.c), for a row known to be finite: the scale from
 * its absmax m, and the scalar part q[k0..cols) followed by the zero padding up to kp. */
float bn_quant_scale(float m);
void bn_quant_tail(const float *x, int k0, int cols, float s, int8_t *q, int kp);

/* Row driver of the float kernel (ref.c) for sets whose kernel is one dot product per (weight
 * row, activation row): y[i*ldy + r] = dot(row r, x + i*ldx) for r in [r0, r1), i < n. */
typedef float (*bn_fdot_fn)(const void *w, int wdt, int cols, int r, const float *x);
void bn_fgemm_rows(bn_fdot_fn dot, const void *w, int wdt, int rows, int cols, int r0, int r1,
                   const float *x, int ldx, int n, float *y, int ldy);

/* The integer quantized heads (ref.c). bn_hq_quant_x: blocks k0/32 .. (k0+nc)/32-1 of the x row
 * (k0, nc multiples of 32) -> q[nc], dx[nc/32] (the quantizer above). A set's head kernel is a
 * bn_hq_kernel run by bn_hq_drive: for a GEMV up to 8192 columns and every GEMM one chunk of all
 * cp columns (GEMM: up to 16 activation rows arranged in one heap buffer, weight rows in blocks of
 * 16 against all of them); only when malloc fails, chunks [c0, c0+nc) that fit a stack buffer (c0
 * a multiple of 128, nc of 64). Per chunk it quantizes each activation row and lets prep arrange
 * it into p (at most bp64 bytes per 64 columns, nc rounded up to 128; 64-byte aligned buffer; row
 * i at p + i*pst); then run adds, for r in [r0, r1), i < nb (nb <= 4), the chunk's part of the
 * formula above to y[i*ldy + r] (stores it when first). */
typedef struct bn_hq_kernel {
    int bp64;
    void (*prep)(const int8_t *qx, const float *dx, int nc, uint8_t *p);
    void (*run)(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first);
} bn_hq_kernel;
void bn_hq_quant_x(const float *x, int cols, int k0, int nc, int8_t *q, float *dx);
void bn_hq_drive(const bn_hq_kernel *K, const uint8_t *wq, int rows, int cols, int r0, int r1,
                 const float *x, int ldx, int n, float *y, int ldy);
/* prep of ref (and the avx2 q8 kernel): p = q[nc] then dx[nc/32] (72 bytes per 64 columns). */
void bn_hq_prep_plain(const int8_t *qx, const float *dx, int nc, uint8_t *p);
/* The reference heads (the ref sets' hgemm_q8/q4). */
void bn_hq_ref_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy);
void bn_hq_ref_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy);

/* Shared inner kernels (ref.c): the plain-C 4x16 GEMM micro-kernel and the AdamW rows. */
extern const bn_sgemm_ukr bn_sgemm_ukr_c;
void bn_adam_ref(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                 float decay, float step_size, float bc2s, float omb1, float b2, float omb2, float eps);

/* Everything below is thread-safe; the tables are built once (pthread_once) and never change. */
/* The reference set (always available). */
const bn_kernels *bn_kernels_ref(void);
/* The best set this CPU and OS support (ignores the environment). */
const bn_kernels *bn_kernels_best(void);
/* The default set: the one env BITNET_ISA names, read once at the first call of any function
 * here, if it is available; else bn_kernels_best(). The only getenv of the core library (the
 * CUDA backend reads its own BITNET_CUDA_* measuring switches). */
const bn_kernels *bn_kernels_default(void);
/* A set by name; NULL if not compiled in or not supported by this CPU. */
const bn_kernels *bn_kernels_by_name(const char *name);
/* Names of all sets usable on this machine, best first, NULL-terminated. */
const char *const *bn_kernels_available(void);

/* The row functions of model.c/train.c/optim.c whose loops the compiler vectorizes: on x86-64
 * Linux with GCC also built for AVX2 and AVX-512, picked by the CPU at load time (ifunc). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define BN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BN_CLONES
#endif
#endif
