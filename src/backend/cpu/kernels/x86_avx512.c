/* x86_avx512.c — the AVX-512 kernel set (F+BW+VL+DQ; vpdpbusd when AVX512-VNNI is present,
 * vpmaddubsw+vpmaddwd otherwise: sets "avx512" (needs VNNI) and "avx512-novnni"). Also the
 * AVX-512 float32 GEMM micro-kernels of bn_sgemm and the AdamW rows.
 *
 * Ternary layout "i16" (kernels.h): 16-row blocks, 64 bytes per 16 k. One 64-byte load gives
 * 4 vectors of unsigned codes ((v >> 2s) & 3); each feeds vpdpbusd against the 4 activation
 * bytes x[16g+4s..] broadcast to all lanes, so lane j accumulates row j. The result is
 * sum(code*x) - sum(x) = sum(w*x), exact in int32. GEMM (n > 1) keeps up to 16 activation rows
 * in registers per unpacked weight vector (register blocking over n).
 * Also the set "avx512-b3" (needs VNNI): the 1.6-bit b3 layout (kernels.h); GEMV by 256-entry
 * code tables (vpermi2b, with AVX512-VBMI) or else in the linear form (vpdpbusd on the raw digit
 * bytes, no code extraction), GEMM through the driver's expansion into i16 blocks.
 * Not: the reference (ref.c is the spec); not compiled for non-x86 targets (returns NULL). */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#include <cpuid.h>
#include <float.h>
#include <math.h>

#define AI static inline __attribute__((always_inline))

static int cpu_has_avx512(int *vnni) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28)) || !(c & (1u << 12)) || !(c & (1u << 29))) return 0; /* osxsave avx fma f16c */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0; /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (!(f && dq && bw && vl && ((b >> 5) & 1))) return 0; /* + avx2 */
    *vnni = (c >> 11) & 1;
    return 1;
}

/* ---- ternary GEMM ---- */

AI __m512i dp(__m512i acc, __m512i w, __m512i x, int vnni) {
#ifdef __AVX512VNNI__
    if (vnni) return _mm512_dpbusd_epi32(acc, w, x);
#endif
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1)));
}

AI __m512i bc4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return _mm512_set1_epi32(v); }

/* sum of the kp int8 entries of x (kp % 64 == 0) */
static int32_t sum_i8(const int8_t *x, int kp) {
    __m512i acc = _mm512_setzero_si512();
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int k = 0; k < kp; k += 64)
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + k), bias), _mm512_setzero_si512()));
    return (int32_t)(_mm512_reduce_add_epi64(acc) - 128LL * kp);
}

#define PF_DIST 8192 /* software prefetch distance (bytes) of the GEMV weight streams (8 KiB measured best) */

/* Start of a GEMV weight stream: prefetch its first PF_DIST bytes at once (the loops prefetch
 * PF_DIST ahead from there on), so a new matrix does not wait for the hardware prefetcher. */
static inline void prefetch_burst(const void *p, size_t len) {
    size_t n = len < (size_t)PF_DIST ? len : (size_t)PF_DIST;
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}
/* One 16-row block times one activation row (GEMV). Code s is taken in place, v & (3 << 2s),
 * i.e. 4^s * code (at most 128, still an unsigned byte for vpdpbusd), into accumulator s, and the
 * scale is divided out exactly at the end (a1 >> 2, a2 >> 4, a3 >> 6: each sum is a multiple of
 * 4^s): 4 vpdpbusd + 4 vpand per 64 bytes instead of 4 + 3 shifts + 4 ands (vpdpbusd and the
 * shifts share one port on Zen 5; the shift form ran at ~280 GOPS, below one core's DRAM
 * stream). Two groups per step, 8 accumulators (dp latency 4). |a3| grows by at most 64*2*128*4
 * per group, so the scaled sums are folded into the exact one every GF1 groups (no int32 wrap
 * for any cols). ng is a multiple of 8 (kp % 128 == 0). */
#define GF1 4096
AI __m512i tile1(const uint8_t *wb, int ng, const int8_t *x, int vnni) {
    const __m512i m0 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(12), m2 = _mm512_set1_epi8(48), m3 = _mm512_set1_epi8((char)192);
    __m512i tot = _mm512_setzero_si512();
    for (int g0 = 0; g0 < ng; g0 += GF1) {
        int g1 = ng - g0 < GF1 ? ng : g0 + GF1;
        __m512i a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_si512();
        for (int g = g0; g < g1; g += 2) {
            _mm_prefetch((const char *)(wb + (size_t)g * 64 + PF_DIST), _MM_HINT_T0);
            _mm_prefetch((const char *)(wb + (size_t)g * 64 + 64 + PF_DIST), _MM_HINT_T0);
#pragma GCC unroll 2
            for (int u = 0; u < 2; u++) {
                __m512i v = _mm512_loadu_si512(wb + (size_t)(g + u) * 64);
                const int8_t *xg = x + 16 * (g + u);
                a[4 * u] = dp(a[4 * u], _mm512_and_si512(v, m0), bc4(xg), vnni);
                a[4 * u + 1] = dp(a[4 * u + 1], _mm512_and_si512(v, m1), bc4(xg + 4), vnni);
                a[4 * u + 2] = dp(a[4 * u + 2], _mm512_and_si512(v, m2), bc4(xg + 8), vnni);
                a[4 * u + 3] = dp(a[4 * u + 3], _mm512_and_si512(v, m3), bc4(xg + 12), vnni);
            }
        }
        __m512i s0 = _mm512_add_epi32(a[0], a[4]), s1 = _mm512_srai_epi32(_mm512_add_epi32(a[1], a[5]), 2);
        __m512i s2 = _mm512_srai_epi32(_mm512_add_epi32(a[2], a[6]), 4), s3 = _mm512_srai_epi32(_mm512_add_epi32(a[3], a[7]), 6);
        tot = _mm512_add_epi32(tot, _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
    }
    return tot;
}

/* One 16-row block times NB activation rows (NB <= 16): each unpacked weight vector serves NB
 * rows; acc lane j = sum(code[j]*x_i). Row i's 4 vpdpbusd per group go to R = 16/NB (4, 2 or
 * 1) accumulators, summed at the end (exact int32), so that few rows are not bound by the
 * vpdpbusd latency chain (4 dependent ones per group and row: at NB = 2, 8 per group in 16+
 * cycles of latency). The weight stream is prefetched PF_DIST ahead, as in tile1 (the GEMM of a
 * decode batch reads its weights from DRAM too). */
AI void tileN(const uint8_t *wb, int ng, const int8_t *x, int ldx, const int NB, __m512i *out, int vnni) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const int R = NB <= 4 ? 4 : NB <= 8 ? 2 : 1;
    __m512i acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < NB * R; i++) acc[i] = _mm512_setzero_si512();
    for (int g = 0; g < ng; g++) {
        _mm_prefetch((const char *)(wb + (size_t)g * 64 + PF_DIST), _MM_HINT_T0);
        __m512i v = _mm512_loadu_si512(wb + (size_t)g * 64);
        const int8_t *xg = x + 16 * g;
        __m512i w[4];
        w[0] = _mm512_and_si512(v, m3);
        w[1] = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
        w[2] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
        w[3] = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
#pragma GCC unroll 16
        for (int i = 0; i < NB; i++) {
            const int8_t *xi = xg + (size_t)i * ldx;
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) acc[i * R + c % R] = dp(acc[i * R + c % R], w[c], bc4(xi + 4 * c), vnni);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < NB; i++) {
        __m512i t = acc[i * R];
#pragma GCC unroll 4
        for (int c = 1; c < R; c++) t = _mm512_add_epi32(t, acc[i * R + c]);
        out[i] = t;
    }
}

/* The tile of the shared driver (kernels.h bn_i16_tiler): one block times up to 16 rows. */
AI void tile_t(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
               int32_t *y, int ldy, int j0, int j1, int vnni) {
    __m512i out[16];
    switch (nb) {
    case 1: out[0] = tile1(wb, ng, x, vnni); break;
#define C(N) case N: tileN(wb, ng, x, ldx, N, out, vnni); break;
    C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15) C(16)
#undef C
    }
    __mmask16 mk = (__mmask16)(((1u << j1) - 1) & ~((1u << j0) - 1));
    for (int i = 0; i < nb; i++)
        _mm512_mask_storeu_epi32(y + (size_t)i * ldy, mk, _mm512_sub_epi32(out[i], _mm512_set1_epi32(sx[i])));
}

#ifdef __AVX512VNNI__
static void tile_vnni(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                      int32_t *y, int ldy, int j0, int j1) {
    tile_t(wb, ng, x, ldx, nb, sx, y, ldy, j0, j1, 1);
}
static const bn_i16_tiler TILER_VNNI = {.nbmax = 16, .pf_burst = PF_DIST, .pf_next = 1, .sum_i8 = sum_i8, .tile = tile_vnni};
static void tgemm_vnni(const uint8_t *w, int rows, int cols, int r0, int r1,
                       const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER_VNNI, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
static void tgemm_vnni_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {   /* kernels.h tgemm_t */
    bn_tgemm_t_i16(&TILER_VNNI, w, rows, cols, c0, c1, dy, lddy, n, dx, lddx);
}
#endif
static void tile_bw(const uint8_t *wb, int ng, const int8_t *x, int ldx, int nb, const int32_t *sx,
                    int32_t *y, int ldy, int j0, int j1) {
    tile_t(wb, ng, x, ldx, nb, sx, y, ldy, j0, j1, 0);
}
static const bn_i16_tiler TILER_BW = {.nbmax = 16, .pf_burst = PF_DIST, .pf_next = 1, .sum_i8 = sum_i8, .tile = tile_bw};
static void tgemm_bw(const uint8_t *w, int rows, int cols, int r0, int r1,
                     const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER_BW, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
static void tgemm_bw_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                    const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {   /* kernels.h tgemm_t */
    bn_tgemm_t_i16(&TILER_BW, w, rows, cols, c0, c1, dy, lddy, n, dx, lddx);
}

#ifdef __AVX512VNNI__
/* ---- the b3 (1.6-bit) layout (kernels.h): set "avx512-b3", needs VNNI ---- */
AI __m512i m3x(__m512i m) { return _mm512_add_epi8(_mm512_add_epi8(m, m), m); } /* 3m mod 256 per byte */
/* the codes (0..2) of digit m: (3m) >> 8 = (m > 85) + (m > 170) */
AI __m512i b3code(__m512i m) {
    const __m512i one = _mm512_set1_epi8(1);
    __m512i c = _mm512_maskz_mov_epi8(_mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8(85)), one);
    return _mm512_mask_add_epi8(c, _mm512_cmpgt_epu8_mask(m, _mm512_set1_epi8((char)170)), c, one);
}

/* GEMV: the linear form, 3*sum m_s.X_s - sum m_{s+1}.X_s = 256*sum code*x (cols < 32768), ten
 * independent accumulators; nd digits of the group at wg / xg (5, or fewer in the last group). */
AI void b3lin(const uint8_t *wg, const int8_t *xg, int nd, __m512i *a, __m512i *b) {
    __m512i m = _mm512_loadu_si512(wg);
    _mm_prefetch((const char *)(wg + PF_DIST), _MM_HINT_T0);
#pragma GCC unroll 5
    for (int s = 0; s < 5; s++) {
        if (s >= nd) break;
        __m512i xs = bc4(xg + 4 * s), m1 = m3x(m);
        a[s] = _mm512_dpbusd_epi32(a[s], m, xs);
        b[s] = _mm512_dpbusd_epi32(b[s], m1, xs);
        m = m1;
    }
}
AI __m512i b3tile1(const uint8_t *wb, int nq, const int8_t *x) {
    __m512i a[5], b[5];
    for (int s = 0; s < 5; s++) a[s] = b[s] = _mm512_setzero_si512();
    int g = 0;
    for (; 5 * g + 5 <= nq; g++) b3lin(wb + (size_t)g * 64, x + 20 * g, 5, a, b);
    if (5 * g < nq) b3lin(wb + (size_t)g * 64, x + 20 * g, nq - 5 * g, a, b);
    __m512i A = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3])), a[4]);
    __m512i B = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(b[0], b[1]), _mm512_add_epi32(b[2], b[3])), b[4]);
    return _mm512_srai_epi32(_mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(A, A), A), B), 8);
}

/* GEMV by table lookup (AVX512-VBMI): per byte q, B4[q] = c0 | c1 << 2 | c2 << 4 | c3 << 6 (the
 * first four codes in the i16 byte form) and B5[q] = c4, each a 256-entry table in 4 zmm,
 * looked up by two vpermi2b (7-bit index) merged by the sign of q. Codes 0..3 are then taken in
 * place as in tile1 (B4 & 3 << 2s = 4^s code, scale divided out exactly), so a 64-byte group
 * costs 4 vpermi2b + 4 vpand + 5 vpdpbusd (+ the sign mask) instead of the linear form's
 * 10 vpdpbusd + 10 byte adds (vpdpbusd is one per cycle: the linear form was bound by it).
 * Full groups only; the last, partial group goes through b3lin. Scaled sums are folded into
 * the exact one every GF1 groups (no int32 wrap). */
static uint8_t B3LUT[2][256] __attribute__((aligned(64)));   /* [0] = B4, [1] = B5; b3lut_init */
static int b3_digit(unsigned q, int s) { for (int i = 0; i < s; i++) q = (3 * q) & 255; return (int)((3 * q) >> 8); }
static void b3lut_init(void) {
    for (unsigned q = 0; q < 256; q++) {
        B3LUT[0][q] = (uint8_t)(b3_digit(q, 0) | b3_digit(q, 1) << 2 | b3_digit(q, 2) << 4 | b3_digit(q, 3) << 6);
        B3LUT[1][q] = (uint8_t)b3_digit(q, 4);
    }
}
static int cpu_has_vbmi(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (c >> 1) & 1;
}
__attribute__((target("avx512vbmi"))) static __m512i b3lut(__m512i q, __mmask64 hi, const __m512i *t) {
    __m512i r = _mm512_mask2_permutex2var_epi8(t[0], q, ~hi, t[1]);   /* q < 128: table bytes 0..127 */
    return _mm512_mask2_permutex2var_epi8(t[2], r, hi, t[3]);         /* q >= 128 (r == q there) */
}
__attribute__((target("avx512vbmi"))) static __m512i b3tile1_lut(const uint8_t *wb, int nq, const int8_t *x) {
    const __m512i m0 = _mm512_set1_epi8(3), m1 = _mm512_set1_epi8(12), m2 = _mm512_set1_epi8(48), m3 = _mm512_set1_epi8((char)192);
    __m512i t4[4], t5[4];
    for (int i = 0; i < 4; i++) { t4[i] = _mm512_load_si512(B3LUT[0] + 64 * i); t5[i] = _mm512_load_si512(B3LUT[1] + 64 * i); }
    int G = nq / 5;   /* full groups */
    __m512i tot = _mm512_setzero_si512();
    for (int g0 = 0; g0 < G; g0 += GF1) {
        int g1 = G - g0 < GF1 ? G : g0 + GF1;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0;
        for (int g = g0; g < g1; g++) {
            const uint8_t *wg = wb + (size_t)g * 64;
            _mm_prefetch((const char *)(wg + PF_DIST), _MM_HINT_T0);
            __m512i q = _mm512_loadu_si512(wg);
            __mmask64 hi = _mm512_movepi8_mask(q);
            __m512i c4 = b3lut(q, hi, t4), c5 = b3lut(q, hi, t5);
            const int8_t *xg = x + 20 * g;
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(c4, m0), bc4(xg));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(c4, m1), bc4(xg + 4));
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(c4, m2), bc4(xg + 8));
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(c4, m3), bc4(xg + 12));
            a4 = _mm512_dpbusd_epi32(a4, c5, bc4(xg + 16));
        }
        __m512i s01 = _mm512_add_epi32(a0, _mm512_srai_epi32(a1, 2)), s23 = _mm512_add_epi32(_mm512_srai_epi32(a2, 4), _mm512_srai_epi32(a3, 6));
        tot = _mm512_add_epi32(tot, _mm512_add_epi32(_mm512_add_epi32(s01, s23), a4));
    }
    if (5 * G < nq) {   /* the last group's nq - 5G digits, linear form */
        __m512i a[5], b[5];
        for (int i = 0; i < 5; i++) a[i] = b[i] = _mm512_setzero_si512();
        b3lin(wb + (size_t)G * 64, x + 20 * G, nq - 5 * G, a, b);
        __m512i A = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3])), a[4]);
        __m512i B = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(b[0], b[1]), _mm512_add_epi32(b[2], b[3])), b[4]);
        tot = _mm512_add_epi32(tot, _mm512_srai_epi32(_mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(A, A), A), B), 8));
    }
    return tot;
}
static int g_vbmi;   /* set once by bn_kernels_avx512_b3 (under dispatch.c's pthread_once) */

/* GEMM: the group's codes decoded once, then NB activation rows (NB <= 16) per code vector. */
AI void b3group(const uint8_t *wg, const int8_t *xg, int ldx, int nd, const int NB, __m512i *acc) {
    __m512i m = _mm512_loadu_si512(wg);
#pragma GCC unroll 5
    for (int s = 0; s < 5; s++) {
        if (s >= nd) break;
        __m512i c = b3code(m);
        m = m3x(m);
#pragma GCC unroll 16
        for (int i = 0; i < NB; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], c, bc4(xg + (size_t)i * ldx + 4 * s));
    }
}
AI void b3tileN(const uint8_t *wb, int nq, const int8_t *x, int ldx, const int NB, __m512i *out) {
    __m512i acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < NB; i++) acc[i] = _mm512_setzero_si512();
    int g = 0;
    for (; 5 * g + 5 <= nq; g++) b3group(wb + (size_t)g * 64, x + 20 * g, ldx, 5, NB, acc);
    if (5 * g < nq) b3group(wb + (size_t)g * 64, x + 20 * g, ldx, nq - 5 * g, NB, acc);
#pragma GCC unroll 16
    for (int i = 0; i < NB; i++) out[i] = acc[i];
}

/* kernels.h bn_i16_tiler.expand (see x86_avx2.c b3expand): one shift and one or per digit. */
static void b3expand(const uint8_t *wb, int nq, int ng16, uint8_t *dst) {
    __m512i acc = _mm512_setzero_si512(), m = acc;
    for (int Q = 0; Q < 4 * ng16; Q++) {
        __m512i c = _mm512_set1_epi8(1);
        if (Q < nq) {
            if (Q % 5 == 0) m = _mm512_loadu_si512(wb + (size_t)(Q / 5) * 64);
            c = b3code(m);
            m = m3x(m);
        }
        acc = _mm512_or_si512(acc, _mm512_sll_epi16(c, _mm_cvtsi32_si128(2 * (Q & 3))));
        if ((Q & 3) == 3) { _mm512_storeu_si512(dst + (size_t)(Q / 4) * 64, acc); acc = _mm512_setzero_si512(); }
    }
}

/* The tile of the shared driver for b3 (kernels.h bn_i16_tiler, b3 = 1; ng = quads). */
static void b3tile(const uint8_t *wb, int nq, const int8_t *x, int ldx, int nb, const int32_t *sx,
                   int32_t *y, int ldy, int j0, int j1) {
    __m512i out[16];
    switch (nb) {
    case 1:
        if (g_vbmi) { out[0] = b3tile1_lut(wb, nq, x); break; }
        if (4 * nq < 32768) { out[0] = b3tile1(wb, nq, x); break; } /* the linear form's range */
        b3tileN(wb, nq, x, ldx, 1, out); break;
#define C(N) case N: b3tileN(wb, nq, x, ldx, N, out); break;
    C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15) C(16)
#undef C
    }
    __mmask16 mk = (__mmask16)(((1u << j1) - 1) & ~((1u << j0) - 1));
    for (int i = 0; i < nb; i++)
        _mm512_mask_storeu_epi32(y + (size_t)i * ldy, mk, _mm512_sub_epi32(out[i], _mm512_set1_epi32(sx[i])));
}
static const bn_i16_tiler TILER_B3 = {.nbmax = 16, .pf_burst = PF_DIST, .pf_next = 1, .sum_i8 = sum_i8, .tile = b3tile, .b3 = 1,
                                    .expand = b3expand, .tile16 = tile_vnni};
static void tgemm_b3(const uint8_t *w, int rows, int cols, int r0, int r1,
                     const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    bn_tgemm_i16(&TILER_B3, w, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
#endif

/* ---- activation quantization (bit-exact with ref: exact max, float32 x*s, RNE) ---- */
static float quant_act(const float *x, int cols, int8_t *q, int kp) {
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    __m512 vm = _mm512_setzero_ps();
    __mmask16 bad = 0;
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + k));
        bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ); /* NaN or inf */
        vm = _mm512_max_ps(a, vm);
    }
    if (k < cols) {
        __mmask16 mk = (__mmask16)((1u << (cols - k)) - 1);
        __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k));
        bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);
        vm = _mm512_max_ps(a, vm);
    }
    if (bad) { memset(q, 0, (size_t)kp); return NAN; } /* kernels.h: non-finite input */
    float s = bn_quant_scale(_mm512_reduce_max_ps(vm));
    __m512 vs = _mm512_set1_ps(s);
    for (k = 0; k + 16 <= cols; k += 16) {
        __m512i v = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(q + k), _mm512_cvtsepi32_epi8(v));
    }
    if (k < cols) {
        __mmask16 mk = (__mmask16)((1u << (cols - k)) - 1);
        __m512i v = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_mask_storeu_epi8(q + k, mk, _mm512_cvtsepi32_epi8(v));
    }
    if (kp > cols) memset(q + cols, 0, (size_t)(kp - cols));
    return s;
}

/* The blocking of the float kernels' GEMM (n > 1), written once for fgemm, Q8 and Q4: blocks of
 * 4 weight rows (kept hot in L1) times all n activation rows, 4 at a time, then the last rows one
 * by one. BLOCK(RB, NB) computes rows r..r+RB-1 for the NB activation rows at xi / yi. */
#define BLOCK4_DRIVER(BLOCK) do { \
        int r = r0; \
        for (; r + 4 <= r1; r += 4) \
            for (int i0 = 0; i0 < n; i0 += 4) { \
                const float *xi = x + (size_t)i0 * ldx; \
                float *yi = y + (size_t)i0 * ldy; \
                switch (n - i0 < 4 ? n - i0 : 4) { \
                case 1: BLOCK(4, 1); break; \
                case 2: BLOCK(4, 2); break; \
                case 3: BLOCK(4, 3); break; \
                default: BLOCK(4, 4); break; \
                } \
            } \
        for (; r < r1; r++) \
            for (int i = 0; i < n; i++) { const float *xi = x + (size_t)i * ldx; float *yi = y + (size_t)i * ldy; BLOCK(1, 1); } \
    } while (0)

/* ---- float GEMM (LM head): RB rows x NB activation rows per step, f32 accumulate ---- */
AI __m512 ldw(const void *w, int wdt, size_t i, __mmask16 mk) {
    const char *p = (const char *)w;
    if (wdt == BN_W_F32) return _mm512_maskz_loadu_ps(mk, p + i * 4);
    __m256i h = _mm256_maskz_loadu_epi16(mk, p + i * 2);
    if (wdt == BN_W_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AI void fblock(const void *w, int wdt, int cols, int r, const int RB, const float *x, int ldx,
               const int NB, float *y, int ldy) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int a = 0; a < RB; a++)
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) acc[a][i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m512 xv[4], wv[4];
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) xv[i] = _mm512_loadu_ps(x + (size_t)i * ldx + k);
#pragma GCC unroll 4
        for (int a = 0; a < RB; a++) {
            wv[a] = ldw(w, wdt, (size_t)(r + a) * cols + k, 0xffff);
#pragma GCC unroll 4
            for (int i = 0; i < NB; i++) acc[a][i] = _mm512_fmadd_ps(wv[a], xv[i], acc[a][i]);
        }
    }
    if (k < cols) {
        __mmask16 mk = (__mmask16)((1u << (cols - k)) - 1);
        __m512 xv[4];
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) xv[i] = _mm512_maskz_loadu_ps(mk, x + (size_t)i * ldx + k);
#pragma GCC unroll 4
        for (int a = 0; a < RB; a++) {
            __m512 wv = ldw(w, wdt, (size_t)(r + a) * cols + k, mk);
#pragma GCC unroll 4
            for (int i = 0; i < NB; i++) acc[a][i] = _mm512_fmadd_ps(wv, xv[i], acc[a][i]);
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < RB; a++)
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) y[(size_t)i * ldy + r + a] = _mm512_reduce_add_ps(acc[a][i]);
}

/* GEMV (n == 1): one row at a time, one sequential stream, 4 accumulators. No software
 * prefetch: on the exact bf16 head (128256 x 2560, from DRAM) a PF_DIST-ahead prefetch per 64
 * weights halved the stream rate (11 vs 22 GB/s on one Zen 4 core, `bitnet bench --kernels
 * --only "head bf16"`); the hardware prefetcher follows the rows alone. */
AI void frow1(const void *w, int wdt, int cols, int r, const float *x, float *y) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t base = (size_t)r * cols;
    int k = 0;
    for (; k + 64 <= cols; k += 64) {
        a0 = _mm512_fmadd_ps(ldw(w, wdt, base + k, 0xffff), _mm512_loadu_ps(x + k), a0);
        a1 = _mm512_fmadd_ps(ldw(w, wdt, base + k + 16, 0xffff), _mm512_loadu_ps(x + k + 16), a1);
        a2 = _mm512_fmadd_ps(ldw(w, wdt, base + k + 32, 0xffff), _mm512_loadu_ps(x + k + 32), a2);
        a3 = _mm512_fmadd_ps(ldw(w, wdt, base + k + 48, 0xffff), _mm512_loadu_ps(x + k + 48), a3);
    }
    for (; k < cols; k += 16) {
        __mmask16 mk = cols - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - k)) - 1);
        a0 = _mm512_fmadd_ps(ldw(w, wdt, base + k, mk), _mm512_maskz_loadu_ps(mk, x + k), a0);
    }
    *y = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* GEMV: one sequential stream per row; GEMM: BLOCK4_DRIVER over fblock. */
AI void fgemm_t(const void *w, const int wdt, int rows, int cols, int r0, int r1,
                const float *x, int ldx, int n, float *y, int ldy) {
    if (n == 1) {
        if (r0 < r1) prefetch_burst((const char *)w + (size_t)r0 * cols * (wdt == BN_W_F32 ? 4 : 2), (size_t)(r1 - r0) * cols * (wdt == BN_W_F32 ? 4 : 2));
        for (int r = r0; r < r1; r++) frow1(w, wdt, cols, r, x, y + r);
        return;
    }
#define FB(RB, NB) fblock(w, wdt, cols, r, RB, xi, ldx, NB, yi, ldy)
    BLOCK4_DRIVER(FB);
#undef FB
}

static void fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy) {
    if (wdt == BN_W_F32) fgemm_t(w, BN_W_F32, rows, cols, r0, r1, x, ldx, n, y, ldy);
    else if (wdt == BN_W_F16) fgemm_t(w, BN_W_F16, rows, cols, r0, r1, x, ldx, n, y, ldy);
    else fgemm_t(w, BN_W_BF16, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- quantized heads: int8 activations (bn_hq_quant_x) x int8 / int4 weights, integer block
 * sums by vpdpbusd (unsigned x signed bytes), block scales in float (kernels.h) ---- */
/* Q8 arrangement per 64 columns c, at p: xq[64c..] (nc bytes), then at p + nc the int32 lane
 * corrections (lane l = -128 * (xq[64c+4l] + .. + xq[64c+4l+3]): the weights enter vpdpbusd as
 * q ^ 0x80 = q + 128, unsigned), then at p + 2nc dx per lane (lane l: dx[2c + l/8]). */
static void q8prep(const int8_t *qx, const float *dx, int nc, uint8_t *p) {
    int32_t *corr = (int32_t *)(void *)(p + nc);
    float *dxe = (float *)(void *)(p + 2 * (size_t)nc);
    memcpy(p, qx, (size_t)nc);
    for (int l = 0; l < nc / 4; l++) {
        corr[l] = -128 * (qx[4 * l] + qx[4 * l + 1] + qx[4 * l + 2] + qx[4 * l + 3]);
        dxe[l] = dx[l / 8];
    }
}
/* One 64-column step of weight row w for NB activation rows. vnni: (q + 128) . xq + corr;
 * else (no vpdpbusd; vpmaddubsw would saturate on q + 128): |q| . (xq * sign q), no correction. */
AI void q8step(const int8_t *w, const uint8_t *p, size_t pst, int nc, int c, const int NB, __m512 *a, int vnni) {
    __m512i wv = _mm512_loadu_si512(w + 64 * c), u, xs;
    __mmask64 neg = 0;
    if (vnni) u = _mm512_xor_si512(wv, _mm512_set1_epi8((char)0x80));
    else { u = _mm512_abs_epi8(wv); neg = _mm512_movepi8_mask(wv); }
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m512i xv = _mm512_loadu_si512(pi + 64 * c), s;
        if (vnni) s = dp(_mm512_loadu_si512(pi + nc + 64 * c), u, xv, 1);
        else {
            xs = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
            s = _mm512_madd_epi16(_mm512_maddubs_epi16(u, xs), _mm512_set1_epi16(1));
        }
        a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_loadu_ps((const float *)(const void *)(pi + 2 * (size_t)nc) + 16 * c), a[i]);
    }
}
AI void q8run_t(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                const uint8_t *p, size_t pst, const int NB, float *y, int ldy, int first, int vnni) {
    int cp = bn_hq_cpad(cols), nc64 = nc / 64;
    const float *sc = (const float *)(const void *)wq;
    const int8_t *q = (const int8_t *)(wq + bn_hq8_qoff(rows));
    for (int r = r0; r < r1; r++) {
        const int8_t *w = q + (size_t)r * cp + c0;
        __m512 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 2 * NB; i++) a[i] = _mm512_setzero_ps();
        int c = 0;
        for (; c + 2 <= nc64; c += 2) {   /* two accumulators per activation row */
            q8step(w, p, pst, nc, c, NB, a, vnni);
            q8step(w, p, pst, nc, c + 1, NB, a + NB, vnni);
        }
        if (c < nc64) q8step(w, p, pst, nc, c, NB, a, vnni);
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            float v = sc[r] * _mm512_reduce_add_ps(_mm512_add_ps(a[i], a[NB + i]));
            float *o = y + (size_t)i * ldy + r;
            *o = first ? v : *o + v;
        }
    }
}
/* One head kernel of this file: NAME's run (nb = 1..4 rows through the const-NB body T with
 * vnni = V), its bn_hq_kernel (BP bytes of arranged x per 64 columns, PREP) and its hgemm slot. */
#define HQ_SET(NAME, T, V, BP, PREP)                                                                    \
    static void NAME##_run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,       \
                           const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {          \
        switch (nb) {                                                                                   \
        case 1: T(wq, rows, cols, r0, r1, c0, nc, p, pst, 1, y, ldy, first, V); break;                  \
        case 2: T(wq, rows, cols, r0, r1, c0, nc, p, pst, 2, y, ldy, first, V); break;                  \
        case 3: T(wq, rows, cols, r0, r1, c0, nc, p, pst, 3, y, ldy, first, V); break;                  \
        default: T(wq, rows, cols, r0, r1, c0, nc, p, pst, 4, y, ldy, first, V); break;                 \
        }                                                                                               \
    }                                                                                                   \
    static const bn_hq_kernel NAME##_K = {BP, PREP, NAME##_run};                                        \
    static void NAME(const uint8_t *wq, int rows, int cols, int r0, int r1,                             \
                     const float *x, int ldx, int n, float *y, int ldy) {                               \
        bn_hq_drive(&NAME##_K, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);                              \
    }
HQ_SET(hgemm_q8_bw, q8run_t, 0, 192, q8prep)
#ifdef __AVX512VNNI__
HQ_SET(hgemm_q8_vnni, q8run_t, 1, 192, q8prep)
#endif

/* Q4 arrangement per 128 columns g (4 blocks; 64 bytes of nibbles, low nibble of byte 16b+j =
 * weight 32b+j, high = 32b+16+j), at p + 128g: xlo[16b+j] = xq[128g+32b+j], then xhi[16b+j] =
 * xq[128g+32b+16+j]; at p + 128G (G = ceil(nc/128)) the int32 lane corrections (the nibbles are
 * q + 8: lane l = -8 * (xlo[4l..4l+3] + xhi[4l..4l+3])); at p + 192G dx per lane (dx[4g + l/4]).
 * A last half group (nc % 128 == 64) is padded with zero activations. */
static void q4prep(const int8_t *qx, const float *dx, int nc, uint8_t *p) {
    int G = (nc + 127) / 128;
    int8_t *xs = (int8_t *)p;
    int32_t *corr = (int32_t *)(void *)(p + 128 * (size_t)G);
    float *dxe = (float *)(void *)(p + 192 * (size_t)G);
    for (int g = 0; g < G; g++)
        for (int b = 0; b < 4; b++)
            for (int j = 0; j < 16; j++) {
                int k = 128 * g + 32 * b + j, in = k < nc;
                xs[128 * g + 16 * b + j] = in ? qx[k] : 0;
                xs[128 * g + 64 + 16 * b + j] = in ? qx[k + 16] : 0;
            }
    for (int l = 0; l < 16 * G; l++) {
        const int8_t *lo = xs + 128 * (l / 16) + 4 * (l % 16), *hi = lo + 64;
        corr[l] = -8 * (lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3]);
        dxe[l] = 128 * (l / 16) + 32 * ((l % 16) / 4) < nc ? dx[4 * (l / 16) + (l % 16) / 4] : 0.f;
    }
}
/* One 128-column step (half when half: 32 bytes of nibbles, 2 scales). */
AI void q4step(const uint8_t *w, const float *d, const uint8_t *p, size_t pst, int G, int g, int half,
               const int NB, __m512 *a, int vnni) {
    const __m512i m15 = _mm512_set1_epi8(15);
    const __m512i i4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512i v = half ? _mm512_maskz_loadu_epi8(0xffffffffull, w + 64 * g) : _mm512_loadu_si512(w + 64 * g);
    __m128 d4 = half ? _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)(d + 4 * g))) : _mm_loadu_ps(d + 4 * g);
    __m512 dw = _mm512_permutexvar_ps(i4, _mm512_castps128_ps512(d4));
    __m512i lo = _mm512_and_si512(v, m15), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
#pragma GCC unroll 4
    for (int i = 0; i < NB; i++) {
        const uint8_t *pi = p + (size_t)i * pst;
        __m512i s = _mm512_loadu_si512(pi + 128 * (size_t)G + 64 * g);
        s = dp(dp(s, lo, _mm512_loadu_si512(pi + 128 * g), vnni), hi, _mm512_loadu_si512(pi + 128 * g + 64), vnni);
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_loadu_ps((const float *)(const void *)(pi + 192 * (size_t)G) + 16 * g));
        a[i] = _mm512_fmadd_ps(f, dw, a[i]);
    }
}
AI void q4run_t(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                const uint8_t *p, size_t pst, const int NB, float *y, int ldy, int first, int vnni) {
    int cp = bn_hq_cpad(cols), nbk = cp / 32, G = (nc + 127) / 128, full = nc / 128;
    const float *d = (const float *)(const void *)wq;
    const uint8_t *q = wq + bn_hq4_qoff(rows, cols);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = q + (size_t)r * (cp / 2) + c0 / 2;
        const float *dr = d + (size_t)r * nbk + c0 / 32;
        __m512 a[8];
#pragma GCC unroll 8
        for (int i = 0; i < 2 * NB; i++) a[i] = _mm512_setzero_ps();
        int g = 0;
        for (; g + 2 <= full; g += 2) {
            q4step(w, dr, p, pst, G, g, 0, NB, a, vnni);
            q4step(w, dr, p, pst, G, g + 1, 0, NB, a + NB, vnni);
        }
        if (g < full) { q4step(w, dr, p, pst, G, g, 0, NB, a, vnni); g++; }
        if (g < G) q4step(w, dr, p, pst, G, g, 1, NB, a + NB, vnni);
#pragma GCC unroll 4
        for (int i = 0; i < NB; i++) {
            float v = _mm512_reduce_add_ps(_mm512_add_ps(a[i], a[NB + i]));
            float *o = y + (size_t)i * ldy + r;
            *o = first ? v : *o + v;
        }
    }
}
HQ_SET(hgemm_q4_bw, q4run_t, 0, 128, q4prep)
#ifdef __AVX512VNNI__
HQ_SET(hgemm_q4_vnni, q4run_t, 1, 128, q4prep)
#endif
#undef HQ_SET

/* ---- float32 GEMM micro-kernels (kernels.h bn_sgemm_ukr) ---- */
/* AVX-512 12x32: 24 zmm accumulators, 2 B vectors, broadcast A from memory. */
static void ukr(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
    __m512 c0[12], c1[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) { c0[i] = _mm512_setzero_ps(); c1[i] = _mm512_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) {
            __m512 a = _mm512_set1_ps(A[i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
        A += 12; B += 32;
    }
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) {
        float *c = C + (size_t)i * ldc;
        if (acc) { c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(c)); c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(c + 16)); }
        _mm512_storeu_ps(c, c0[i]); _mm512_storeu_ps(c + 16, c1[i]);
    }
}

/* AVX-512 12x32 reading A unpacked: row i of the tile at A + i*lda, k contiguous (op(A) not
 * transposed). Same FMA order as ukr on a packed panel, so results are identical. */
static void ukra(int kc, const float *A, int lda, const float *B, float *C, int ldc, int acc) {
    __m512 c0[12], c1[12];
    const float *a0 = A, *a3 = A + 3 * (size_t)lda, *a6 = A + 6 * (size_t)lda, *a9 = A + 9 * (size_t)lda;
    const size_t l1 = (size_t)lda, l2 = 2 * (size_t)lda;
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) { c0[i] = _mm512_setzero_ps(); c1[i] = _mm512_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
#define ROW(i, p, o) { __m512 a = _mm512_set1_ps(p[o + k]); c0[i] = _mm512_fmadd_ps(a, b0, c0[i]); c1[i] = _mm512_fmadd_ps(a, b1, c1[i]); }
        ROW(0, a0, 0) ROW(1, a0, l1) ROW(2, a0, l2)
        ROW(3, a3, 0) ROW(4, a3, l1) ROW(5, a3, l2)
        ROW(6, a6, 0) ROW(7, a6, l1) ROW(8, a6, l2)
        ROW(9, a9, 0) ROW(10, a9, l1) ROW(11, a9, l2)
#undef ROW
        B += 32;
    }
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) {
        float *c = C + (size_t)i * ldc;
        if (acc) { c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(c)); c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(c + 16)); }
        _mm512_storeu_ps(c, c0[i]); _mm512_storeu_ps(c + 16, c1[i]);
    }
}
/* Transposing pack of a full 32-column B panel (op(B) = B^T): d[k][j] = src[j * ldb + k] for
 * j < 32, k < kc, via 16x16 in-register transposes; the k tail is scalar. */
static void pack_bt32(const float *src, int ldb, int kc, float *d) {
    int k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16) {
        for (int j0 = 0; j0 < 32; j0 += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)(j0 + i) * ldb + k0);
            for (int i = 0; i < 8; i++) { t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]); t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]); }
            for (int g = 0; g < 4; g++) {
                __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
                __m512d c = _mm512_castps_pd(t[4 * g + 2]), e = _mm512_castps_pd(t[4 * g + 3]);
                r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
                r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
            }
            /* r[4g + c] holds rows 4g..4g+3 at columns c, c+4, c+8, c+12 (one per 128-bit lane) */
            for (int c = 0; c < 4; c++) {
                __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
                __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88), u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
                float *o = d + (size_t)k0 * 32 + j0;
                _mm512_store_ps(o + (size_t)c * 32, _mm512_shuffle_f32x4(u0, u2, 0x88));
                _mm512_store_ps(o + (size_t)(c + 8) * 32, _mm512_shuffle_f32x4(u0, u2, 0xdd));
                _mm512_store_ps(o + (size_t)(c + 4) * 32, _mm512_shuffle_f32x4(u1, u3, 0x88));
                _mm512_store_ps(o + (size_t)(c + 12) * 32, _mm512_shuffle_f32x4(u1, u3, 0xdd));
            }
        }
    }
    for (int j = 0; j < 32; j++) {
        const float *sj = src + (size_t)j * ldb;
        for (int k = k0; k < kc; k++) d[(size_t)k * 32 + j] = sj[k];
    }
}
static const bn_sgemm_ukr UKR = {"avx512", 12, 32, ukr, ukra, pack_bt32};

/* ---- AdamW rows (kernels.h bn_adam_fn) ---- */
/* The same arithmetic, 16 lanes at a time (the compiler will not vectorize sqrtf with errno on). */
static void adam(float *restrict pp, const float *restrict gg, float *restrict mm, float *restrict vv, size_t n,
                             float decay, float step_size, float bc2s, float omb1, float b2, float omb2, float eps) {
    const __m512 vdec = _mm512_set1_ps(decay), vo1 = _mm512_set1_ps(omb1), vb2 = _mm512_set1_ps(b2), vo2 = _mm512_set1_ps(omb2);
    const __m512 vbc = _mm512_set1_ps(bc2s), veps = _mm512_set1_ps(eps), vns = _mm512_set1_ps(-step_size);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(gg + i), m0 = _mm512_loadu_ps(mm + i), v0 = _mm512_loadu_ps(vv + i);
        __m512 p = _mm512_mul_ps(_mm512_loadu_ps(pp + i), vdec);
        __m512 m = _mm512_add_ps(m0, _mm512_mul_ps(_mm512_sub_ps(g, m0), vo1));
        __m512 v = _mm512_add_ps(_mm512_mul_ps(v0, vb2), _mm512_mul_ps(_mm512_mul_ps(vo2, g), g));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v), vbc), veps);
        p = _mm512_add_ps(p, _mm512_div_ps(_mm512_mul_ps(vns, m), den));
        _mm512_storeu_ps(pp + i, p); _mm512_storeu_ps(mm + i, m); _mm512_storeu_ps(vv + i, v);
    }
    bn_adam_ref(pp + i, gg + i, mm + i, vv + i, n - i, decay, step_size, bc2s, omb1, b2, omb2, eps);
}

#ifdef __AVX512VNNI__
static const bn_kernels SET_VNNI = {
    .name = "avx512", .layout = BN_LAYOUT_I16, .tgemm = tgemm_vnni, .quant_act = quant_act, .fgemm = fgemm,
    .hgemm_q8 = hgemm_q8_vnni, .hgemm_q4 = hgemm_q4_vnni, .sgemm = &UKR, .adam = adam,
    .tgemm_t = tgemm_vnni_t,
};
static const bn_kernels SET_B3 = {
    .name = "avx512-b3", .layout = BN_LAYOUT_B3, .tgemm = tgemm_b3, .quant_act = quant_act, .fgemm = fgemm,
    .hgemm_q8 = hgemm_q8_vnni, .hgemm_q4 = hgemm_q4_vnni, .sgemm = &UKR, .adam = adam,
};
#endif
static const bn_kernels SET_BW = {
    .name = "avx512-novnni", .layout = BN_LAYOUT_I16, .tgemm = tgemm_bw, .quant_act = quant_act, .fgemm = fgemm,
    .hgemm_q8 = hgemm_q8_bw, .hgemm_q4 = hgemm_q4_bw, .sgemm = &UKR, .adam = adam,
    .tgemm_t = tgemm_bw_t,
};

/* Partial tables (dispatch.c completes them): "avx512" needs AVX512-VNNI (vpdpbusd);
 * "avx512-novnni" (vpmaddubsw + vpmaddwd) runs on any AVX-512 F/BW/VL/DQ CPU. */
const bn_kernels *bn_kernels_avx512(void);
const bn_kernels *bn_kernels_avx512_novnni(void);
const bn_kernels *bn_kernels_avx512(void) {
#ifdef __AVX512VNNI__
    int vnni = 0;
    if (cpu_has_avx512(&vnni) && vnni) return &SET_VNNI;
#endif
    return NULL;
}
const bn_kernels *bn_kernels_avx512_novnni(void) { int vnni; return cpu_has_avx512(&vnni) ? &SET_BW : NULL; }
/* "avx512-b3": the b3 (1.6-bit) layout, needs AVX512-VNNI. */
const bn_kernels *bn_kernels_avx512_b3(void);
const bn_kernels *bn_kernels_avx512_b3(void) {
#ifdef __AVX512VNNI__
    int vnni = 0;
    if (cpu_has_avx512(&vnni) && vnni) {
        if (cpu_has_vbmi()) { b3lut_init(); g_vbmi = 1; }
        return &SET_B3;
    }
#endif
    return NULL;
}
#else
const bn_kernels *bn_kernels_avx512_b3(void);
const bn_kernels *bn_kernels_avx512_b3(void) { return NULL; }
const bn_kernels *bn_kernels_avx512(void);
const bn_kernels *bn_kernels_avx512_novnni(void);
const bn_kernels *bn_kernels_avx512(void) { return NULL; }
const bn_kernels *bn_kernels_avx512_novnni(void) { return NULL; }
#endif
