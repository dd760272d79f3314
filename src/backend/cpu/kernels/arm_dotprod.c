/* arm_dotprod.c — the AArch64 NEON + dot-product (armv8.2-a sdot) kernel set "dotprod".
 *
 * Ternary layout "i16" (kernels.h): per 16 k, 64 bytes = 4 q-registers (rows 4c..4c+3, 4 bytes
 * each). (v >> 2s) & 3 gives codes 0..2; sdot by element (vdotq_laneq_s32) multiplies them by
 * the 4 activation bytes x[16g+4s..+3] (lane s of the 16 loaded activation bytes) and adds into
 * each row's int32 lane. Result = sum(code*x) - sum(x), exact. GEMM keeps 4 activation rows in
 * registers per unpacked weight vector. Quantized heads: int8 x int8/int4 block sums by sdot (the
 * neon set's loops, HQ_RUNS). Float kernels are shared with the neon set.
 * Not: the reference (ref.c); returns NULL without AArch64 + HWCAP_ASIMDDP. */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

#define AI static inline __attribute__((always_inline))

/* shared with arm_neon.c */
const bn_kernels *bn_arm_if_hwcap(unsigned long bit, const bn_kernels *k);
int32_t bn_neon_sum_i8(const int8_t *x, int kp);
void bn_neon_store16(const int32x4_t *out, int nb, const int32_t *sx, int32_t *y, int ldy, int j0, int j1);
float bn_neon_quant_act(const float *x, int cols, int8_t *q, int kp);
void bn_neon_fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                   const float *x, int ldx, int n, float *y, int ldy);

AI int32x4_t sdot_lane(int32x4_t acc, int8x16_t w, int8x16_t x, const int s) {
    switch (s) {
    case 0: return vdotq_laneq_s32(acc, w, x, 0);
    case 1: return vdotq_laneq_s32(acc, w, x, 1);
    case 2: return vdotq_laneq_s32(acc, w, x, 2);
    default: return vdotq_laneq_s32(acc, w, x, 3);
    }
}

AI void tileN(const uint8_t *wb, int ng, const int8_t *x, int ldx, const int NB, int32x4_t *out) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    int32x4_t acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) acc[i][c] = vdupq_n_s32(0);
    for (int g = 0; g < ng; g++) {
        const uint8_t *p = wb + (size_t)g * 64;
        __builtin_prefetch(p + 2048);
        uint8x16_t v[4] = {vld1q_u8(p), vld1q_u8(p + 16), vld1q_u8(p + 32), vld1q_u8(p + 48)};
        int8x16_t xs[4];
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) xs[i] = vld1q_s8(x + (size_t)i * ldx + 16 * g);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                int8x16_t w = vreinterpretq_s8_u8(vandq_u8(s == 0 ? v[c] : vshlq_u8(v[c], vdupq_n_s8((int8_t)(-2 * s))), m3));
#pragma GCC unroll 4
                for (int i = 0; i < NB; i++) acc[i][c] = sdot_lane(acc[i][c], w, xs[i], s);
            }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) out[4 * i + c] = acc[i][c];
}

/* The tile of the shared driver (kernels.h bn_i16_tiler): one block times up to 4 rows. */
static void tile(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                 int32_t *y, int ldy, int j0, int j1) {
    int32x4_t out[16];
    switch (nb) {
    case 1: tileN(wb, ng, x, ldx, 1, out); break;
    case 2: tileN(wb, ng, x, ldx, 2, out); break;
    case 3: tileN(wb, ng, x, ldx, 3, out); break;
    default: tileN(wb, ng, x, ldx, 4, out); break;
    }
    bn_neon_store16(out, nb, sx, y, ldy, j0, j1);
}
static const bn_i16_tiler TILER = {.nbmax = 4, .sum_i8 = bn_neon_sum_i8, .tile = tile};
static void tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* The transposed product (kernels.h tgemm_t) over this set's tile. */
static void tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    bn_tgemm_t_i16(&TILER, w, rows, cols, c0, c1, dy, lddy, n, dx, lddx);
}

/* ---- quantized heads: int8 activations (bn_hq_quant_x) x int8 / int4 weights, exact int32
 * block sums (kernels.h), block scales in float; arrangement bn_hq_prep_plain ---- */
/* (the same loops as arm_neon.c's, with sdot) Sum over one 32-block in 4 int32 lanes: DOT2(w0, x0, w1, x1) = w0.x0 + w1.x1 by lanes. */
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
AI int32x4_t dot2_sdot(int8x16_t w0, int8x16_t x0, int8x16_t w1, int8x16_t x1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
}
HQ_RUNS(dot2_sdot)
static void hgemm_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ8, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
static void hgemm_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ4, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

static const bn_kernels SET = {
    .name = "dotprod", .layout = BN_LAYOUT_I16, .tgemm = tgemm, .quant_act = bn_neon_quant_act, .fgemm = bn_neon_fgemm,
    .hgemm_q8 = hgemm_q8, .hgemm_q4 = hgemm_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
    .tgemm_t = tgemm_t,
};

/* Partial table (dispatch.c completes it), or NULL without ASIMDDP. */
const bn_kernels *bn_kernels_dotprod(void);
const bn_kernels *bn_kernels_dotprod(void) { return bn_arm_if_hwcap(HWCAP_ASIMDDP, &SET); }
#else
const bn_kernels *bn_kernels_dotprod(void);
const bn_kernels *bn_kernels_dotprod(void) { return NULL; }
#endif
