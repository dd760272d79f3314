/* x86_avxvnni.c — the AVX-VNNI kernel set "avxvnni" (256-bit vpdpbusd, VEX encoding: Alder Lake
 * and later Intel cores, Zen 4/5 without AVX-512 in use), and, from the same code compiled
 * again by x86_avxvnni_vl.c, the set "avxvnni-vl": the same instructions in their AVX-512 VL
 * EVEX encoding (_mm256_dpbusd_epi32), the same math, so the code path runs and is tested on
 * AVX512-VNNI machines that lack the AVX-VNNI cpuid bit.
 *
 * Only the ternary GEMM is new (layout "i16", kernels.h): a 16-row block is two ymm halves (rows
 * 0-7, 8-15) per 16 k; (v >> 2s) & 3 gives unsigned codes; vpdpbusd against the broadcast
 * activation bytes x[16g+4s..+3] accumulates int32 directly (no int16 stage, no saturation), and
 * sum(code*x) - sum(x) is the exact product. Every other kernel is the avx2 set's: the table is
 * a copy of it with tgemm replaced, made once by dispatch.c's first call.
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

/* Partial table: the avx2 set with this tgemm, or NULL when the CPU lacks the ISA. Called once,
 * from dispatch.c's one-time init (so the static copy is written before any reader exists). */
const bn_kernels *GETTER(void) {
    static bn_kernels set;
    const bn_kernels *base = bn_kernels_avx2();
    if (!base || !cpu_ok()) return NULL;
    set = *base;
    set.name = SETNAME;
    set.tgemm = tgemm;
    return &set;
}
#else
const bn_kernels *GETTER(void) { return NULL; }
#endif
