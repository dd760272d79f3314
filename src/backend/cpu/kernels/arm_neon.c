/* arm_neon.c — the AArch64 NEON (Advanced SIMD, armv8-a) kernel set "neon".
 *
 * Ternary layout "i16" (kernels.h): per 16 k, 64 bytes = 4 q-registers, register c holding rows
 * 4c..4c+3 as 4 bytes each. (v >> 2s) & 3 gives codes 0..2 (used as signed bytes); smull/smull2
 * against the 4 activation bytes x[16g+4s..+3] replicated to every 32-bit lane, addp and sadalp
 * reduce each row's 4 products into its int32 lane. Result = sum(code*x) - sum(x), exact.
 * Quantized heads: int8 x int8/int4 block sums by smull/smlal + sadalp (HQ_RUNS; arm_dotprod.c
 * repeats the loops with sdot). Also exports the float kernels (bn_neon_*) that the dotprod set shares.
 * Not: the reference (ref.c); returns NULL when not built for AArch64 or ASIMD is absent. */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif

#define AI static inline __attribute__((always_inline))

int32_t bn_neon_sum_i8(const int8_t *x, int kp);
int32_t bn_neon_sum_i8(const int8_t *x, int kp) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int k = 0; k < kp; k += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(x + k)));
    return vaddvq_s32(acc);
}

/* acc += per-row sums of code*x for the 4 rows of w (codes 0..2), x = 4 bytes in every lane */
AI int32x4_t dot4(int32x4_t acc, int8x16_t w, int8x16_t x) {
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    int16x8_t hi = vmull_high_s8(w, x);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}

AI void tileN(const uint8_t *wb, int ng, const int8_t *x, int ldx, const int NB, int32x4_t *out) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    int32x4_t acc[2][4];
#pragma GCC unroll 2
    for (int i = 0; i < NB; i++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[i][c] = vdupq_n_s32(0);
    for (int g = 0; g < ng; g++) {
        const uint8_t *p = wb + (size_t)g * 64;
        __builtin_prefetch(p + 2048);
        uint8x16_t v[4] = {vld1q_u8(p), vld1q_u8(p + 16), vld1q_u8(p + 32), vld1q_u8(p + 48)};
        int32x4_t xs[2];
#pragma GCC unroll 2
        for (int i = 0; i < NB; i++) xs[i] = vld1q_s32((const int32_t *)(const void *)(x + (size_t)i * ldx + 16 * g));
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            int8x16_t xb[2];
#pragma GCC unroll 2
            for (int i = 0; i < NB; i++) {
                int32x4_t d;
                switch (s) {
                case 0: d = vdupq_laneq_s32(xs[i], 0); break;
                case 1: d = vdupq_laneq_s32(xs[i], 1); break;
                case 2: d = vdupq_laneq_s32(xs[i], 2); break;
                default: d = vdupq_laneq_s32(xs[i], 3); break;
                }
                xb[i] = vreinterpretq_s8_s32(d);
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                int8x16_t w = vreinterpretq_s8_u8(vandq_u8(s == 0 ? v[c] : vshlq_u8(v[c], vdupq_n_s8((int8_t)(-2 * s))), m3));
#pragma GCC unroll 2
                for (int i = 0; i < NB; i++) acc[i][c] = dot4(acc[i][c], w, xb[i]);
            }
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < NB; i++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) out[4 * i + c] = acc[i][c];
}

/* Store nb rows of one block's results (out[4i + c] = rows 4c..4c+3 of activation row i) minus
 * sx[i], columns j0..j1 only (shared with arm_dotprod.c). */
void bn_neon_store16(const int32x4_t *out, int nb, const int32_t *sx, int32_t *y, int ldy, int j0, int j1);
void bn_neon_store16(const int32x4_t *out, int nb, const int32_t *sx, int32_t *y, int ldy, int j0, int j1) {
    for (int i = 0; i < nb; i++) {
        int32_t t[16];
        for (int c = 0; c < 4; c++) vst1q_s32(t + 4 * c, vsubq_s32(out[4 * i + c], vdupq_n_s32(sx[i])));
        memcpy(y + (size_t)i * ldy + j0, t + j0, (size_t)(j1 - j0) * 4);
    }
}

/* The tile of the shared driver (kernels.h bn_i16_tiler): one block times up to 2 rows. */
static void tile(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                 int32_t *y, int ldy, int j0, int j1) {
    int32x4_t out[8];
    if (nb == 1) tileN(wb, ng, x, ldx, 1, out); else tileN(wb, ng, x, ldx, 2, out);
    bn_neon_store16(out, nb, sx, y, ldy, j0, j1);
}
static const bn_i16_tiler TILER = {.nbmax = 2, .sum_i8 = bn_neon_sum_i8, .tile = tile};
static void tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* The transposed product (kernels.h tgemm_t) over this set's tile. */
static void tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    bn_tgemm_t_i16(&TILER, w, rows, cols, c0, c1, dy, lddy, n, dx, lddx);
}

/* ---- activation quantization (bit-exact with ref: fcvtns rounds half to even) ---- */
float bn_neon_quant_act(const float *x, int cols, int8_t *q, int kp);
float bn_neon_quant_act(const float *x, int cols, int8_t *q, int kp) {
    const float32x4_t big = vdupq_n_f32(FLT_MAX);
    float32x4_t vm = vdupq_n_f32(0.f);
    uint32x4_t ok = vdupq_n_u32(~0u);
    int k = 0;
    for (; k + 4 <= cols; k += 4) {
        float32x4_t a = vabsq_f32(vld1q_f32(x + k));
        ok = vandq_u32(ok, vcleq_f32(a, big)); /* false for NaN and inf */
        vm = vmaxq_f32(vm, a);
    }
    int nonfinite = vminvq_u32(ok) == 0;
    float m = nonfinite ? 0.f : vmaxvq_f32(vm);
    for (; k < cols; k++) { float a = fabsf(x[k]); if (!(a <= FLT_MAX)) nonfinite = 1; else if (a > m) m = a; }
    if (nonfinite) { memset(q, 0, (size_t)kp); return NAN; } /* kernels.h: non-finite input */
    float s = bn_quant_scale(m);
    float32x4_t vs = vdupq_n_f32(s);
    for (k = 0; k + 8 <= cols; k += 8) {
        int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k), vs));
        int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k + 4), vs));
        vst1_s8(q + k, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
    }
    bn_quant_tail(x, k, cols, s, q, kp);
    return s;
}

/* ---- float GEMM ---- */
AI float32x4_t ldw4(const void *w, int wdt, size_t i) {
    const char *p = (const char *)w;
    if (wdt == BN_W_F32) return vld1q_f32((const float *)(const void *)(p + i * 4));
    uint16x4_t h = vld1_u16((const uint16_t *)(const void *)(p + i * 2));
    if (wdt == BN_W_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}
AI float frow(const void *w, int wdt, int cols, int r, const float *x) {
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
    size_t base = (size_t)r * cols;
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
        a0 = vfmaq_f32(a0, ldw4(w, wdt, base + k), vld1q_f32(x + k));
        a1 = vfmaq_f32(a1, ldw4(w, wdt, base + k + 4), vld1q_f32(x + k + 4));
        a2 = vfmaq_f32(a2, ldw4(w, wdt, base + k + 8), vld1q_f32(x + k + 8));
        a3 = vfmaq_f32(a3, ldw4(w, wdt, base + k + 12), vld1q_f32(x + k + 12));
    }
    for (; k + 4 <= cols; k += 4) a0 = vfmaq_f32(a0, ldw4(w, wdt, base + k), vld1q_f32(x + k));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; k < cols; k++) s += bn_wget(w, wdt, base + k) * x[k];
    return s;
}

static float fdot(const void *w, int wdt, int cols, int r, const float *x) {
    if (wdt == BN_W_F32) return frow(w, BN_W_F32, cols, r, x);
    if (wdt == BN_W_F16) return frow(w, BN_W_F16, cols, r, x);
    return frow(w, BN_W_BF16, cols, r, x);
}
void bn_neon_fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy) {
    bn_fgemm_rows(fdot, w, wdt, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- quantized heads: int8 activations (bn_hq_quant_x) x int8 / int4 weights, exact int32
 * block sums (kernels.h), block scales in float; arrangement bn_hq_prep_plain ---- */
/* Sum over one 32-block in 4 int32 lanes (arm_dotprod.c makes the same with sdot): DOT2(w0, x0, w1, x1) = w0.x0 + w1.x1 by lanes. */
#define HQ_RUNS(DOT2)                                                                                      \
AI int32x4_t q8blk(const int8_t *w, const int8_t *x) {                                                    \
    return DOT2(vld1q_s8(w), vld1q_s8(x), vld1q_s8(w + 16), vld1q_s8(x + 16));                            \
}                                                                                                          \
AI int32x4_t q4blk(const uint8_t *qb, const int8_t *x) { /* nibbles - 8: low = weights 0-15, high 16-31 */ \
    const uint8x16_t m15 = vdupq_n_u8(15);                                                                 \
    const int8x16_t e8 = vdupq_n_s8(8);                                                                    \
    uint8x16_t v = vld1q_u8(qb);                                                                           \
    int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m15)), e8);                                    \
    int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), e8);                                    \
    return DOT2(lo, vld1q_s8(x), hi, vld1q_s8(x + 16));                                                    \
}                                                                                                          \
static void q8run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,                  \
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {                    \
    int cp = bn_hq_cpad(cols);                                                                             \
    const float *sc = (const float *)(const void *)wq;                                                     \
    const int8_t *q = (const int8_t *)(wq + bn_hq8_qoff(rows));                                            \
    for (int r = r0; r < r1; r++)                                                                          \
        for (int i = 0; i < nb; i++) {                                                                     \
            const int8_t *xq = (const int8_t *)(p + (size_t)i * pst), *w = q + (size_t)r * cp + c0;       \
            const float *dx = (const float *)(const void *)(p + (size_t)i * pst + nc);                    \
            float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0;                                                    \
            for (int b = 0; b < nc / 32; b += 2) {                                                         \
                a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(q8blk(w + 32 * b, xq + 32 * b)), dx[b]);                \
                a1 = vfmaq_n_f32(a1, vcvtq_f32_s32(q8blk(w + 32 * b + 32, xq + 32 * b + 32)), dx[b + 1]);  \
            }                                                                                              \
            float v = sc[r] * vaddvq_f32(vaddq_f32(a0, a1));                                               \
            y[(size_t)i * ldy + r] = first ? v : y[(size_t)i * ldy + r] + v;                               \
        }                                                                                                  \
}                                                                                                          \
static void q4run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,                  \
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {                    \
    int cp = bn_hq_cpad(cols), nbk = cp / 32;                                                              \
    const float *d = (const float *)(const void *)wq;                                                      \
    const uint8_t *q = wq + bn_hq4_qoff(rows, cols);                                                       \
    for (int r = r0; r < r1; r++)                                                                          \
        for (int i = 0; i < nb; i++) {                                                                     \
            const int8_t *xq = (const int8_t *)(p + (size_t)i * pst);                                      \
            const float *dx = (const float *)(const void *)(p + (size_t)i * pst + nc);                    \
            const uint8_t *w = q + (size_t)r * (cp / 2) + c0 / 2;                                          \
            const float *dr = d + (size_t)r * nbk + c0 / 32;                                               \
            float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0;                                                    \
            for (int b = 0; b < nc / 32; b += 2) {                                                         \
                a0 = vfmaq_n_f32(a0, vcvtq_f32_s32(q4blk(w + 16 * b, xq + 32 * b)), dr[b] * dx[b]);        \
                a1 = vfmaq_n_f32(a1, vcvtq_f32_s32(q4blk(w + 16 * b + 16, xq + 32 * b + 32)), dr[b + 1] * dx[b + 1]); \
            }                                                                                              \
            float v = vaddvq_f32(vaddq_f32(a0, a1));                                                       \
            y[(size_t)i * ldy + r] = first ? v : y[(size_t)i * ldy + r] + v;                               \
        }                                                                                                  \
}                                                                                                          \
static const bn_hq_kernel HQ8 = {72, bn_hq_prep_plain, q8run};                                             \
static const bn_hq_kernel HQ4 = {72, bn_hq_prep_plain, q4run};
/* smull/smlal: |w*x| <= 127*127, two products per int16 lane (<= 32258), then sadalp */
AI int32x4_t dot2_mull(int8x16_t w0, int8x16_t x0, int8x16_t w1, int8x16_t x1) {
    int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_low_s8(w1), vget_low_s8(x1));
    int16x8_t hi = vmlal_high_s8(vmull_high_s8(w0, x0), w1, x1);
    return vpadalq_s16(vpaddlq_s16(lo), hi);
}
HQ_RUNS(dot2_mull)
static void bn_neon_hgemm_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ8, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
static void bn_neon_hgemm_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ4, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

static const bn_kernels SET = {
    .name = "neon", .layout = BN_LAYOUT_I16, .tgemm = tgemm, .quant_act = bn_neon_quant_act, .fgemm = bn_neon_fgemm,
    .hgemm_q8 = bn_neon_hgemm_q8, .hgemm_q4 = bn_neon_hgemm_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
    .tgemm_t = tgemm_t,
};

/* k if the OS reports the hwcap bit (or is not Linux), else NULL (shared with arm_dotprod.c). */
const bn_kernels *bn_arm_if_hwcap(unsigned long bit, const bn_kernels *k);
const bn_kernels *bn_arm_if_hwcap(unsigned long bit, const bn_kernels *k) {
#if defined(__linux__)
    if (!(getauxval(AT_HWCAP) & bit)) return NULL;
#endif
    return k;
}
/* Partial table (dispatch.c completes it), or NULL without ASIMD. */
const bn_kernels *bn_kernels_neon(void);
const bn_kernels *bn_kernels_neon(void) { return bn_arm_if_hwcap(HWCAP_ASIMD, &SET); }
#else
const bn_kernels *bn_kernels_neon(void);
const bn_kernels *bn_kernels_neon(void) { return NULL; }
#endif
