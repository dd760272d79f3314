/* x86_avxvnni.c — the AVX-VNNI kernel set "avxvnni" (256-bit vpdpbusd, VEX encoding: Alder Lake
 * and later Intel cores, Zen 4/5 without AVX-512 in use), and, from the same code compiled
 * again by x86_avxvnni_vl.c, the set "avxvnni-vl": the same instructions in their AVX-512 VL
 * EVEX encoding (_mm256_dpbusd_epi32), the same math, so the code path runs and is tested on
 * AVX512-VNNI machines that lack the AVX-VNNI cpuid bit.
 *
 * New here: the ternary GEMM (layout "i16", kernels.h) and the quantized heads' block sums
 * (below). A 16-row block is two ymm halves (rows 0-7, 8-15) per 16 k; (v >> 2s) & 3 gives unsigned codes; vpdpbusd against the broadcast
 * activation bytes x[16g+4s..+3] accumulates int32 directly (no int16 stage, no saturation), and
 * sum(code*x) - sum(x) is the exact product. Every other kernel is the avx2 set's: the table is
 * a copy of it with tgemm and hgemm_q8/q4 replaced, made once by dispatch.c's first call.
 * Not: the avx2 set (x86_avx2.c); not compiled for non-x86 targets (returns NULL). */
#include "backend/cpu/kernels/kernels.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef BN_VNNI_VL
#define SETNAME "avxvnni-vl"
#define GETTER bn_kernels_avxvnni_vl
#else
#define SETNAME "avxvnni"
#define GETTER bn_kernels_avxvnni
#endif
const bn_kernels *GETTER(void);
const bn_kernels *bn_kernels_avx2(void);

#if defined(__x86_64__) && defined(__AVX2__) && \
    ((defined(BN_VNNI_VL) && defined(__AVX512VL__) && defined(__AVX512VNNI__)) || (!defined(BN_VNNI_VL) && defined(__AVXVNNI__)))
#include <immintrin.h>
#include <cpuid.h>

#define AI static inline __attribute__((always_inline))

/* cpuid: AVX-VNNI is leaf 7 subleaf 1 EAX bit 4; the VL form needs AVX512F/VL/VNNI with the
 * opmask/ZMM state enabled. Both also need what the avx2 set needs (its getter checks). */
static int cpu_ok(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
#ifdef BN_VNNI_VL
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 16) & 1) && ((b >> 31) & 1) && ((c >> 11) & 1);
#else
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 4) & 1;
#endif
}

AI __m256i dp(__m256i acc, __m256i w, __m256i x) {
#ifdef BN_VNNI_VL
    return _mm256_dpbusd_epi32(acc, w, x);
#else
    return _mm256_dpbusd_avx_epi32(acc, w, x);
#endif
}
AI __m256i bc4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v); }

static int32_t sum_i8(const int8_t *x, int kp) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int k = 0; k < kp; k += 32)
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + k)), bias), _mm256_setzero_si256()));
    int64_t t[4]; memcpy(t, &acc, 32);
    return (int32_t)(t[0] + t[1] + t[2] + t[3] - 128LL * kp);
}

#define PF_DIST 4096 /* software prefetch distance (bytes) of the GEMV weight stream, as avx2 */

/* GEMV: one block times one activation row, 4 accumulators (2 per half). */
AI void tile1(const uint8_t *wb, int ng, const int8_t *x, __m256i *out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i l0 = _mm256_setzero_si256(), l1 = l0, h0 = l0, h1 = l0;
    for (int g = 0; g < ng; g++) {
        const uint8_t *p = wb + (size_t)g * 64;
        _mm_prefetch((const char *)(p + PF_DIST), _MM_HINT_T0);
        __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
        const int8_t *xg = x + 16 * g;
        __m256i x0 = bc4(xg), x1 = bc4(xg + 4), x2 = bc4(xg + 8), x3 = bc4(xg + 12);
        l0 = dp(l0, _mm256_and_si256(lo, m3), x0);
        h0 = dp(h0, _mm256_and_si256(hi, m3), x0);
        l1 = dp(l1, _mm256_and_si256(_mm256_srli_epi16(lo, 2), m3), x1);
        h1 = dp(h1, _mm256_and_si256(_mm256_srli_epi16(hi, 2), m3), x1);
        l0 = dp(l0, _mm256_and_si256(_mm256_srli_epi16(lo, 4), m3), x2);
        h0 = dp(h0, _mm256_and_si256(_mm256_srli_epi16(hi, 4), m3), x2);
        l1 = dp(l1, _mm256_and_si256(_mm256_srli_epi16(lo, 6), m3), x3);
        h1 = dp(h1, _mm256_and_si256(_mm256_srli_epi16(hi, 6), m3), x3);
    }
    out[0] = _mm256_add_epi32(l0, l1); out[1] = _mm256_add_epi32(h0, h1);
}

/* GEMM: one block times NB <= 6 activation rows, each unpacked code vector serving NB rows
 * (2*NB int32 accumulators + 2 codes + the broadcast + the mask = 16 ymm at NB = 6). */
AI void tileN(const uint8_t *wb, int ng, const int8_t *x, int ldx, const int NB, __m256i *out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i al[6], ah[6];
#pragma GCC unroll 6
    for (int i = 0; i < NB; i++) al[i] = ah[i] = _mm256_setzero_si256();
    for (int g = 0; g < ng; g++) {
        const uint8_t *p = wb + (size_t)g * 64;
        const int8_t *xg = x + 16 * g;
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m256i wl = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)p), 2 * s), m3);
            __m256i wh = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(p + 32)), 2 * s), m3);
#pragma GCC unroll 6
            for (int i = 0; i < NB; i++) {
                __m256i xb = bc4(xg + (size_t)i * ldx + 4 * s);
                al[i] = dp(al[i], wl, xb);
                ah[i] = dp(ah[i], wh, xb);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < NB; i++) { out[2 * i] = al[i]; out[2 * i + 1] = ah[i]; }
}

static void tile(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                 int32_t *y, int ldy, int j0, int j1) {
    __m256i out[12];
    switch (nb) {
    case 1: tile1(wb, ng, x, out); break;
    case 2: tileN(wb, ng, x, ldx, 2, out); break;
    case 3: tileN(wb, ng, x, ldx, 3, out); break;
    case 4: tileN(wb, ng, x, ldx, 4, out); break;
    case 5: tileN(wb, ng, x, ldx, 5, out); break;
    default: tileN(wb, ng, x, ldx, 6, out); break;
    }
    for (int i = 0; i < nb; i++) {
        int32_t t[16];
        _mm256_storeu_si256((__m256i *)t, _mm256_sub_epi32(out[2 * i], _mm256_set1_epi32(sx[i])));
        _mm256_storeu_si256((__m256i *)(t + 8), _mm256_sub_epi32(out[2 * i + 1], _mm256_set1_epi32(sx[i])));
        memcpy(y + (size_t)i * ldy + j0, t + j0, (size_t)(j1 - j0) * 4);
    }
}
static const bn_i16_tiler TILER = {.nbmax = 6, .sum_i8 = sum_i8, .tile = tile};
static void tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- quantized heads (kernels.h): the avx2 set's loops with vpdpbusd for the int8 block sums.
 * Q8: |q| . (xq * sign q) in one vpdpbusd (arrangement bn_hq_prep_plain); Q4: nibbles (q + 8)
 * . xq from the lane corrections (-8 * sum x) up, in the avx2 set's arrangement (its q4prep,
 * bn_avx2_hq4_prep). ---- */
void bn_avx2_hq4_prep(const int8_t *qx, const float *dx, int nc, uint8_t *p);
AI void q8step(const int8_t *w, const uint8_t *p, size_t pst, int nc, int b, const int NB, __m256 *a) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 32 * b)), u = _mm256_abs_epi8(wv);
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m256i xs = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(pi + 32 * b)), wv);
        __m256i s = dp(_mm256_setzero_si256(), u, xs);
        a[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss((const float *)(const void *)(pi + nc) + b), a[i]);
    }
}
AI void q4step(const uint8_t *w, const float *d, const uint8_t *p, size_t pst, int H, int h, const int NB, __m256 *a) {
    const __m256i m15 = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * h));
    __m256i lo = _mm256_and_si256(v, m15), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
    __m256 dw = _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_broadcast_sd((const double *)(const void *)(d + 2 * h))),
                                         _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m256i s = _mm256_loadu_si256((const __m256i *)(pi + 64 * (size_t)H) + h);
        s = dp(dp(s, lo, _mm256_loadu_si256((const __m256i *)(pi + 64 * h))), hi, _mm256_loadu_si256((const __m256i *)(pi + 64 * h + 32)));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps((const float *)(const void *)(pi + 96 * (size_t)H) + 8 * h));
        a[i] = _mm256_fmadd_ps(f, dw, a[i]);
    }
}
AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
/* rows [r0, r1) x NB activation rows: Q8 steps of 32 columns (in pairs), Q4 steps of 64 */
AI void hqrun_t(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc, const uint8_t *p, size_t pst,
                const int NB, float *y, int ldy, int first, const int Q4) {
    int cp = bn_hq_cpad(cols), nbk = cp / 32, H = nc / 64;
    const float *sc = (const float *)(const void *)wq;
    for (int r = r0; r < r1; r++) {
        const int8_t *w8 = (const int8_t *)(wq + bn_hq8_qoff(rows)) + (size_t)r * cp + c0;
        const uint8_t *w4 = wq + bn_hq4_qoff(rows, cols) + (size_t)r * (cp / 2) + c0 / 2;
        const float *dr = sc + (size_t)r * nbk + c0 / 32;
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 2 * NB; i++) a[i] = _mm256_setzero_ps();
        for (int h = 0; h < H; h++) {
            if (Q4) q4step(w4, dr, p, pst, H, h, NB, a + (h & 1) * NB);
            else { q8step(w8, p, pst, nc, 2 * h, NB, a); q8step(w8, p, pst, nc, 2 * h + 1, NB, a + NB); }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            float v = hsum8(_mm256_add_ps(a[i], a[NB + i]));
            if (!Q4) v *= sc[r];
            float *o = y + (size_t)i * ldy + r;
            *o = first ? v : *o + v;
        }
    }
}
#define HQRUN(NB, Q4) hqrun_t(wq, rows, cols, r0, r1, c0, nc, p, pst, NB, y, ldy, first, Q4)
#define HQ_RUN_NB(Q4) switch (nb) { case 1: HQRUN(1, Q4); break; case 2: HQRUN(2, Q4); break; case 3: HQRUN(3, Q4); break; default: HQRUN(4, Q4); break; }
static void q8run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    HQ_RUN_NB(0)
}
static void q4run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    HQ_RUN_NB(1)
}
#undef HQ_RUN_NB
#undef HQRUN
static const bn_hq_kernel HQ8 = {72, bn_hq_prep_plain, q8run};
static const bn_hq_kernel HQ4 = {128, bn_avx2_hq4_prep, q4run};
static void hgemm_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ8, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
static void hgemm_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ4, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* Partial table: the avx2 set with this tgemm, or NULL when the CPU lacks the ISA. Called once,
 * from dispatch.c's one-time init (so the static copy is written before any reader exists). */
const bn_kernels *GETTER(void) {
    static bn_kernels set;
    const bn_kernels *base = bn_kernels_avx2();
    if (!base || !cpu_ok()) return NULL;
    set = *base;
    set.name = SETNAME;
    set.tgemm = tgemm;
    set.hgemm_q8 = hgemm_q8;
    set.hgemm_q4 = hgemm_q4;
    return &set;
}
#else
const bn_kernels *GETTER(void) { return NULL; }
#endif
