/* x86_avx2.c — the AVX2 (+FMA, F16C) kernel set "avx2".
 *
 * Ternary layout "i16" (kernels.h), as avx512: a 16-row block is two ymm halves (rows 0-7 and
 * 8-15) per 16 k. (v >> 2s) & 3 gives unsigned codes; vpmaddubsw against the broadcast
 * activation bytes x[16g+4s..+3] and vpmaddwd with ones give per-row int32 sums of 4 products
 * (no saturation: |2*128 + 2*128| < 32768). Result = sum(code*x) - sum(x), exact. GEMM keeps up
 * to 4 activation rows in registers per unpacked weight vector.
 * Also the set "avx2-b3": the 1.6-bit b3 layout (kernels.h), digits decoded with byte adds and
 * compares, GEMM through the driver's expansion into i16 blocks.
 * Not: the reference (ref.c); not compiled for non-x86 targets (returns NULL). */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <cpuid.h>
#include <float.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28)) || !(c & (1u << 12)) || !(c & (1u << 29))) return 0; /* osxsave avx fma f16c */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6) != 0x6) return 0; /* XMM and YMM state enabled by the OS */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}

/* ---- ternary GEMM ---- */
AI __m256i dp(__m256i acc, __m256i w, __m256i x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
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

#define PF_DIST 4096 /* software prefetch distance (bytes) of the GEMV weight stream */

/* Products are summed in int16 over GC 16-k groups before widening (one vpmaddwd per GC groups,
 * not per group): a vpmaddubsw lane is w0*x0 + w1*x1 with w in 0..2, x in -128..127, so in
 * [-512, 508]; 4 per group times GC = 8 groups stays within [-16384, 16256], no wrap. */
#define GC 8
AI __m256i mad16(__m256i acc, __m256i w, __m256i x) { return _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, x)); }
AI __m256i widen(__m256i acc, __m256i s16) { return _mm256_add_epi32(acc, _mm256_madd_epi16(s16, _mm256_set1_epi16(1))); }

/* GEMV tile: codes 0 and 2 of each byte as (v & 3) and ((v >> 4) & 3) into the int16 sums l0/h0,
 * codes 1 and 3 in place as (v & 12) and ((v >> 4) & 12) = 4 * code into l1/h1 (vpmaddubsw lanes
 * in [-2048, 2032], 16 of them per GC groups stay within int16), which are divided by 4 exactly
 * (vpsraw: every term is a multiple of 4) before widening: 1 shift + 4 ands per 32 bytes instead
 * of 3 shifts + 4 ands. */
AI void tile1(const uint8_t *wb, int ng, const int8_t *x, __m256i *out) {
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    __m256i l = _mm256_setzero_si256(), h = l;
    for (int g0 = 0; g0 < ng; g0 += GC) {
        int g1 = ng - g0 < GC ? ng : g0 + GC;
        __m256i l0 = _mm256_setzero_si256(), l1 = l0, h0 = l0, h1 = l0;
        for (int g = g0; g < g1; g++) {
            const uint8_t *p = wb + (size_t)g * 64;
            _mm_prefetch((const char *)(p + PF_DIST), _MM_HINT_T0);
            __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
            __m256i lo4 = _mm256_srli_epi16(lo, 4), hi4 = _mm256_srli_epi16(hi, 4);
            const int8_t *xg = x + 16 * g;
            __m256i x0 = bc4(xg), x1 = bc4(xg + 4), x2 = bc4(xg + 8), x3 = bc4(xg + 12);
            l0 = mad16(l0, _mm256_and_si256(lo, m3), x0);
            h0 = mad16(h0, _mm256_and_si256(hi, m3), x0);
            l1 = mad16(l1, _mm256_and_si256(lo, m12), x1);
            h1 = mad16(h1, _mm256_and_si256(hi, m12), x1);
            l0 = mad16(l0, _mm256_and_si256(lo4, m3), x2);
            h0 = mad16(h0, _mm256_and_si256(hi4, m3), x2);
            l1 = mad16(l1, _mm256_and_si256(lo4, m12), x3);
            h1 = mad16(h1, _mm256_and_si256(hi4, m12), x3);
            __asm__("" : "+x"(l0), "+x"(l1), "+x"(h0), "+x"(h1)); /* as in tileN */
        }
        l = widen(widen(l, l0), _mm256_srai_epi16(l1, 2));
        h = widen(widen(h, h0), _mm256_srai_epi16(h1, 2));
    }
    out[0] = l; out[1] = h;
}

AI void tileN(const uint8_t *wb, int ng, const int8_t *x, int ldx, const int NB, __m256i *out) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i al[4], ah[4];
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) al[i] = ah[i] = _mm256_setzero_si256();
    for (int g0 = 0; g0 < ng; g0 += GC) {
        int g1 = ng - g0 < GC ? ng : g0 + GC;
        __m256i sl[4], sh[4];
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) sl[i] = sh[i] = _mm256_setzero_si256();
        for (int g = g0; g < g1; g++) {
            const uint8_t *p = wb + (size_t)g * 64;
            _mm_prefetch((const char *)(p + PF_DIST), _MM_HINT_T0);
            __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
            const int8_t *xg = x + 16 * g;
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m256i wl = _mm256_and_si256(_mm256_srli_epi16(lo, 2 * s), m3);
                __m256i wh = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * s), m3);
#pragma GCC unroll 4
                for (int i = 0; i < NB; i++) {
                    __m256i xb = bc4(xg + (size_t)i * ldx + 4 * s);
                    sl[i] = mad16(sl[i], wl, xb);
                    sh[i] = mad16(sh[i], wh, xb);
                    __asm__("" : "+x"(sl[i]), "+x"(sh[i])); /* keeps GCC from re-associating the sums: it then spills (1.25x) */
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) { al[i] = widen(al[i], sl[i]); ah[i] = widen(ah[i], sh[i]); }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) { out[2 * i] = al[i]; out[2 * i + 1] = ah[i]; }
}

static void store16(int32_t *y, const __m256i *v, int j0, int j1, int32_t sub) {
    int32_t t[16];
    _mm256_storeu_si256((__m256i *)t, _mm256_sub_epi32(v[0], _mm256_set1_epi32(sub)));
    _mm256_storeu_si256((__m256i *)(t + 8), _mm256_sub_epi32(v[1], _mm256_set1_epi32(sub)));
    if (j0 == 0 && j1 == 16) memcpy(y, t, 64);
    else memcpy(y + j0, t + j0, (size_t)(j1 - j0) * 4);
}

/* The tile of the shared driver (kernels.h bn_i16_tiler): one block times up to 4 rows. */
static void tile(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                 int32_t *y, int ldy, int j0, int j1) {
    __m256i out[8];
    switch (nb) {
    case 1: tile1(wb, ng, x, out); break;
    case 2: tileN(wb, ng, x, ldx, 2, out); break;
    case 3: tileN(wb, ng, x, ldx, 3, out); break;
    default: tileN(wb, ng, x, ldx, 4, out); break;
    }
    for (int i = 0; i < nb; i++) store16(y + (size_t)i * ldy, out + 2 * i, j0, j1, sx[i]);
}
static const bn_i16_tiler TILER = {.nbmax = 4, .sum_i8 = sum_i8, .tile = tile};
static void tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                  const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}


/* ---- the b3 (1.6-bit) layout (kernels.h): set "avx2-b3" ----
 * Digits are decoded in the biased byte domain m' = m ^ 0x80, where m'_{s+1} = 3*m'_s mod 256
 * too (3*128 + 128 = 512), so signed compares give code = (m > 85) + (m > 170) =
 * -(cmpgt(m', -43) + cmpgt(m', 42)); then vpmaddubsw as in the i16 tiles (codes 0..2). */
AI __m256i m3y(__m256i m) { return _mm256_add_epi8(_mm256_add_epi8(m, m), m); }
AI __m256i b3code(__m256i mb) {
    __m256i c = _mm256_add_epi8(_mm256_cmpgt_epi8(mb, _mm256_set1_epi8(-43)), _mm256_cmpgt_epi8(mb, _mm256_set1_epi8(42)));
    return _mm256_sub_epi8(_mm256_setzero_si256(), c);
}
/* int16 partial sums over at most GC3 groups: 5 vpmaddubsw lanes per group in [-512, 508] each,
 * 5 * 6 * 512 = 15360 < 32768 */
#define GC3 6
/* NB activation rows (NB <= 4) times one 16-row block, nd digits of group g. */
AI void b3group(const uint8_t *wg, const int8_t *xg, int ldx, int nd, const int NB, __m256i *sl, __m256i *sh) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256i ml = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)wg), bias);
    __m256i mh = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wg + 32)), bias);
#pragma GCC unroll 5
    for (int s = 0; s < 5; s++) {
        if (s >= nd) break;
        __m256i cl = b3code(ml), ch = b3code(mh);
        ml = m3y(ml); mh = m3y(mh);
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            __m256i xb = bc4(xg + (size_t)i * ldx + 4 * s);
            sl[i] = mad16(sl[i], cl, xb);
            sh[i] = mad16(sh[i], ch, xb);
            __asm__("" : "+x"(sl[i]), "+x"(sh[i])); /* as in tileN */
        }
    }
}
AI void b3tileN(const uint8_t *wb, int nq, const int8_t *x, int ldx, const int NB, __m256i *out) {
    __m256i al[4], ah[4];
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) al[i] = ah[i] = _mm256_setzero_si256();
    int G = (nq + 4) / 5;
    for (int g0 = 0; g0 < G; g0 += GC3) {
        int g1 = G - g0 < GC3 ? G : g0 + GC3;
        __m256i sl[4], sh[4];
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) sl[i] = sh[i] = _mm256_setzero_si256();
        for (int g = g0; g < g1; g++) {
            if (NB == 1) _mm_prefetch((const char *)(wb + (size_t)g * 64 + PF_DIST), _MM_HINT_T0);
            int nd = nq - 5 * g < 5 ? nq - 5 * g : 5;
            if (nd == 5) b3group(wb + (size_t)g * 64, x + 20 * g, ldx, 5, NB, sl, sh);
            else b3group(wb + (size_t)g * 64, x + 20 * g, ldx, nd, NB, sl, sh);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) { al[i] = widen(al[i], sl[i]); ah[i] = widen(ah[i], sh[i]); }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) { out[2 * i] = al[i]; out[2 * i + 1] = ah[i]; }
}
/* kernels.h bn_i16_tiler.expand: quad Q's codes go to bits 2*(Q%4) of i16 group Q/4 (same byte
 * position 4j + t: both layouts keep t = k % 4 and the row), so each decoded digit vector is
 * one shift and one or. */
static void b3expand(const uint8_t *wb, int nq, int ng16, uint8_t *dst) {
    const __m256i bias = _mm256_set1_epi8((char)0x80), pad = _mm256_set1_epi8(1);
    __m256i al = _mm256_setzero_si256(), ah = al, ml = al, mh = al;
    for (int Q = 0; Q < 4 * ng16; Q++) {
        __m256i cl = pad, ch = pad;
        if (Q < nq) {
            if (Q % 5 == 0) {
                ml = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + (size_t)(Q / 5) * 64)), bias);
                mh = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + (size_t)(Q / 5) * 64 + 32)), bias);
            }
            cl = b3code(ml); ch = b3code(mh);
            ml = m3y(ml); mh = m3y(mh);
        }
        __m128i sh = _mm_cvtsi32_si128(2 * (Q & 3));
        al = _mm256_or_si256(al, _mm256_sll_epi16(cl, sh));
        ah = _mm256_or_si256(ah, _mm256_sll_epi16(ch, sh));
        if ((Q & 3) == 3) {
            _mm256_storeu_si256((__m256i *)(dst + (size_t)(Q / 4) * 64), al);
            _mm256_storeu_si256((__m256i *)(dst + (size_t)(Q / 4) * 64 + 32), ah);
            al = ah = _mm256_setzero_si256();
        }
    }
}
static void b3tile(const uint8_t *wb, int nq, const int8_t *x, int ldx, int nb, const int32_t *sx,
                   int32_t *y, int ldy, int j0, int j1) {
    __m256i out[8];
    switch (nb) {
    case 1: b3tileN(wb, nq, x, ldx, 1, out); break;
    case 2: b3tileN(wb, nq, x, ldx, 2, out); break;
    case 3: b3tileN(wb, nq, x, ldx, 3, out); break;
    default: b3tileN(wb, nq, x, ldx, 4, out); break;
    }
    for (int i = 0; i < nb; i++) store16(y + (size_t)i * ldy, out + 2 * i, j0, j1, sx[i]);
}
static const bn_i16_tiler TILER_B3 = {.nbmax = 4, .sum_i8 = sum_i8, .tile = b3tile, .b3 = 1, .expand = b3expand, .tile16 = tile};
static void tgemm_b3(const uint8_t *w, int rows, int cols, int r0, int r1,
                     const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER_B3, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
/* The transposed product (kernels.h tgemm_t) over this set's tile. */
static void tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    bn_tgemm_t_i16(&TILER, w, rows, cols, c0, c1, dy, lddy, n, dx, lddx);
}

/* ---- activation quantization (bit-exact with ref) ---- */
static float quant_act(const float *x, int cols, int8_t *q, int kp) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), big = _mm256_set1_ps(FLT_MAX);
    __m256 vm = _mm256_setzero_ps(), bad = vm;
    int k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + k), absm);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ)); /* NaN or inf */
        vm = _mm256_max_ps(a, vm);
    }
    float t[8]; _mm256_storeu_ps(t, vm);
    float m = 0.f;
    for (int i = 0; i < 8; i++) if (t[i] > m) m = t[i];
    int nonfinite = _mm256_movemask_ps(bad) != 0;
    for (; k < cols; k++) { float a = fabsf(x[k]); if (!(a <= FLT_MAX)) nonfinite = 1; if (a > m) m = a; }
    if (nonfinite) { memset(q, 0, (size_t)kp); return NAN; } /* kernels.h: non-finite input */
    float s = bn_quant_scale(m);
    __m256 vs = _mm256_set1_ps(s);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (k = 0; k + 32 <= cols; k += 32) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), vs));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8), vs));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 16), vs));
        __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 24), vs));
        __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        _mm256_storeu_si256((__m256i *)(q + k), _mm256_permutevar8x32_epi32(v, perm));
    }
    bn_quant_tail(x, k, cols, s, q, kp);
    return s;
}

/* ---- float GEMM: per (row, activation row) dot products, row kept hot across activations ---- */
AI __m256 ldw8(const void *w, int wdt, size_t i) {
    const char *p = (const char *)w;
    if (wdt == BN_W_F32) return _mm256_loadu_ps((const float *)(p + i * 4));
    __m128i h = _mm_loadu_si128((const __m128i *)(p + i * 2));
    if (wdt == BN_W_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
AI float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

AI float frow(const void *w, int wdt, int cols, int r, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t base = (size_t)r * cols;
    int k = 0;
    for (; k + 32 <= cols; k += 32) {
        a0 = _mm256_fmadd_ps(ldw8(w, wdt, base + k), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(ldw8(w, wdt, base + k + 8), _mm256_loadu_ps(x + k + 8), a1);
        a2 = _mm256_fmadd_ps(ldw8(w, wdt, base + k + 16), _mm256_loadu_ps(x + k + 16), a2);
        a3 = _mm256_fmadd_ps(ldw8(w, wdt, base + k + 24), _mm256_loadu_ps(x + k + 24), a3);
    }
    for (; k + 8 <= cols; k += 8) a0 = _mm256_fmadd_ps(ldw8(w, wdt, base + k), _mm256_loadu_ps(x + k), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; k < cols; k++) s += bn_wget(w, wdt, base + k) * x[k];
    return s;
}

static float fdot(const void *w, int wdt, int cols, int r, const float *x) {
    if (wdt == BN_W_F32) return frow(w, BN_W_F32, cols, r, x);
    if (wdt == BN_W_F16) return frow(w, BN_W_F16, cols, r, x);
    return frow(w, BN_W_BF16, cols, r, x);
}
static void fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy) {
    bn_fgemm_rows(fdot, w, wdt, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- quantized heads: int8 activations (bn_hq_quant_x) x int8 / int4 weights, integer block
 * sums by vpmaddubsw + vpmaddwd, block scales in float (kernels.h) ---- */
/* Q8, per 32-column block b: |q| . (xq * sign q) (vpsignb; |q|, |xq| <= 127, so no int16
 * saturation), 8 int32 lanes, * dx[b]. Arrangement: bn_hq_prep_plain (xq[nc], dx[nc/32]). */
AI void q8step(const int8_t *w, const uint8_t *p, size_t pst, int nc, int b, const int NB, __m256 *a) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 32 * b)), u = _mm256_abs_epi8(wv);
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m256i xs = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(pi + 32 * b)), wv);
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(u, xs), _mm256_set1_epi16(1));
        a[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss((const float *)(const void *)(pi + nc) + b), a[i]);
    }
}
AI void q8run_t(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                const uint8_t *p, size_t pst, const int NB, float *y, int ldy, int first) {
    int cp = bn_hq_cpad(cols), nbl = nc / 32;
    const float *sc = (const float *)(const void *)wq;
    const int8_t *q = (const int8_t *)(wq + bn_hq8_qoff(rows));
    for (int r = r0; r < r1; r++) {
        const int8_t *w = q + (size_t)r * cp + c0;
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 2 * NB; i++) a[i] = _mm256_setzero_ps();
        for (int b = 0; b < nbl; b += 2) {   /* nc % 64 == 0: blocks come in pairs */
            q8step(w, p, pst, nc, b, NB, a);
            q8step(w, p, pst, nc, b + 1, NB, a + NB);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            float v = sc[r] * hsum(_mm256_add_ps(a[i], a[NB + i]));
            float *o = y + (size_t)i * ldy + r;
            *o = first ? v : *o + v;
        }
    }
}
#define HQ_RUN_NB(T) switch (nb) { case 1: T(1); break; case 2: T(2); break; case 3: T(3); break; default: T(4); break; }
#define Q8RUN(NB) q8run_t(wq, rows, cols, r0, r1, c0, nc, p, pst, NB, y, ldy, first)
static void q8run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    HQ_RUN_NB(Q8RUN)
}
#undef Q8RUN
static const bn_hq_kernel HQ8 = {72, bn_hq_prep_plain, q8run};
static void hgemm_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ8, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* Q4 arrangement per 64 columns h (2 blocks, 32 bytes of nibbles), at p + 64h: xlo (xq[64h..+15],
 * xq[64h+32..+47]), then xhi (xq[64h+16..+31], xq[64h+48..+63]); at p + 64H (H = nc/64) the int32
 * lane corrections (nibbles are q + 8: lane l = -8 * (xlo[4l..4l+3] + xhi[4l..4l+3])); at
 * p + 96H dx per lane (dx[2h + l/4]). */
void bn_avx2_hq4_prep(const int8_t *qx, const float *dx, int nc, uint8_t *p);   /* also the avxvnni sets' */
void bn_avx2_hq4_prep(const int8_t *qx, const float *dx, int nc, uint8_t *p) {
    int H = nc / 64;
    int8_t *xs = (int8_t *)p;
    int32_t *corr = (int32_t *)(void *)(p + 64 * (size_t)H);
    float *dxe = (float *)(void *)(p + 96 * (size_t)H);
    for (int h = 0; h < H; h++)
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 16; j++) {
                xs[64 * h + 16 * b + j] = qx[64 * h + 32 * b + j];
                xs[64 * h + 32 + 16 * b + j] = qx[64 * h + 32 * b + 16 + j];
            }
    for (int l = 0; l < 8 * H; l++) {
        const int8_t *lo = xs + 64 * (l / 8) + 4 * (l % 8), *hi = lo + 32;
        corr[l] = -8 * (lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3]);
        dxe[l] = dx[2 * (l / 8) + (l % 8) / 4];
    }
}
AI void q4step(const uint8_t *w, const float *d, const uint8_t *p, size_t pst, int H, int h, const int NB, __m256 *a) {
    const __m256i m15 = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1);
    __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * h));
    __m256i lo = _mm256_and_si256(v, m15), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
    __m256 dw = _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_broadcast_sd((const double *)(const void *)(d + 2 * h))),
                                         _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(pi + 64 * h))),
                                       _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(pi + 64 * h + 32))));
        __m256i s = _mm256_add_epi32(_mm256_madd_epi16(s16, one), _mm256_loadu_si256((const __m256i *)(pi + 64 * (size_t)H) + h));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps((const float *)(const void *)(pi + 96 * (size_t)H) + 8 * h));
        a[i] = _mm256_fmadd_ps(f, dw, a[i]);
    }
}
AI void q4run_t(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                const uint8_t *p, size_t pst, const int NB, float *y, int ldy, int first) {
    int cp = bn_hq_cpad(cols), nbk = cp / 32, H = nc / 64;
    const float *d = (const float *)(const void *)wq;
    const uint8_t *q = wq + bn_hq4_qoff(rows, cols);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = q + (size_t)r * (cp / 2) + c0 / 2;
        const float *dr = d + (size_t)r * nbk + c0 / 32;
        __m256 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 2 * NB; i++) a[i] = _mm256_setzero_ps();
        int h = 0;
        for (; h + 2 <= H; h += 2) {
            q4step(w, dr, p, pst, H, h, NB, a);
            q4step(w, dr, p, pst, H, h + 1, NB, a + NB);
        }
        if (h < H) q4step(w, dr, p, pst, H, h, NB, a);
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            float v = hsum(_mm256_add_ps(a[i], a[NB + i]));
            float *o = y + (size_t)i * ldy + r;
            *o = first ? v : *o + v;
        }
    }
}
#define Q4RUN(NB) q4run_t(wq, rows, cols, r0, r1, c0, nc, p, pst, NB, y, ldy, first)
static void q4run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                  const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    HQ_RUN_NB(Q4RUN)
}
#undef Q4RUN
#undef HQ_RUN_NB
static const bn_hq_kernel HQ4 = {128, bn_avx2_hq4_prep, q4run};
static void hgemm_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                     const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&HQ4, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- float32 GEMM micro-kernel 6x16 (kernels.h bn_sgemm_ukr): 12 ymm accumulators ---- */
static void ukr(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
    __m256 c0[6], c1[6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256 a = _mm256_broadcast_ss(A + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
        A += 6; B += 16;
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        float *c = C + (size_t)i * ldc;
        if (acc) { c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(c)); c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(c + 8)); }
        _mm256_storeu_ps(c, c0[i]); _mm256_storeu_ps(c + 8, c1[i]);
    }
}
static const bn_sgemm_ukr UKR = {"avx2", 6, 16, ukr, NULL, NULL};

static const bn_kernels SET = {
    .name = "avx2", .layout = BN_LAYOUT_I16, .tgemm = tgemm, .quant_act = quant_act, .fgemm = fgemm,
    .hgemm_q8 = hgemm_q8, .hgemm_q4 = hgemm_q4, .sgemm = &UKR, .adam = bn_adam_ref,
    .tgemm_t = tgemm_t,
};

static const bn_kernels SET_B3 = {
    .name = "avx2-b3", .layout = BN_LAYOUT_B3, .tgemm = tgemm_b3, .quant_act = quant_act, .fgemm = fgemm,
    .hgemm_q8 = hgemm_q8, .hgemm_q4 = hgemm_q4, .sgemm = &UKR, .adam = bn_adam_ref,
};

/* Partial tables (dispatch.c completes them), or NULL when this CPU/OS lacks AVX2+FMA+F16C. */
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx2(void) { return cpu_has_avx2() ? &SET : NULL; }
const bn_kernels *bn_kernels_avx2_b3(void);
const bn_kernels *bn_kernels_avx2_b3(void) { return cpu_has_avx2() ? &SET_B3 : NULL; }
#else
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx2(void) { return NULL; }
const bn_kernels *bn_kernels_avx2_b3(void);
const bn_kernels *bn_kernels_avx2_b3(void) { return NULL; }
#endif
