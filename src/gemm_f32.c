/* gemm_f32.c — cache-blocked float32 GEMM with runtime-dispatched micro-kernels (see gemm_f32.h).
 * Blocking: for each NC-column block of op(B) and KC-deep slice, pack B into NR-wide panels
 * (stays in L2/L3); for each MC-row block of op(A), pack A into MR-tall panels (L2); then the
 * micro-kernel computes MR x NR tiles of C from one A panel and one B panel (L1).
 * ISA micro-kernels use GCC target attributes, so no file-specific -m flags are needed; they are
 * only called after __builtin_cpu_supports says the CPU has the features.
 * Not: a BLAS; no alpha, beta in {0, 1} only. */
#include "gemm_f32.h"
#include <string.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MC 144
#define KC 512
#define NC 3072
#define MAXMR 12
#define MAXNR 32

typedef void (*ukr_fn)(int kc, const float *A, const float *B, float *C, int ldc, int acc);
typedef void (*ukra_fn)(int kc, const float *A, int lda, const float *B, float *C, int ldc, int acc);
/* fna (may be NULL): the same tile with A read unpacked (row stride lda, k contiguous). */
typedef struct { const char *name; int mr, nr; ukr_fn fn; ukra_fn fna; } ukr_t;

/* Plain C 4x16 micro-kernel: A panel kc x 4 (k-major), B panel kc x 16. */
static void ukr_c(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
    float c[4][16] = {{0}};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < 4; i++) {
            float a = A[k * 4 + i];
            for (int j = 0; j < 16; j++) c[i][j] += a * B[k * 16 + j];
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) C[i * ldc + j] = (acc ? C[i * ldc + j] : 0.0f) + c[i][j];
}

#if defined(__x86_64__)
/* AVX2+FMA 6x16: 12 ymm accumulators. */
__attribute__((target("avx2,fma")))
static void ukr_avx2(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
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

/* AVX-512 12x32: 24 zmm accumulators, 2 B vectors, broadcast A from memory. */
__attribute__((target("avx512f,fma")))
static void ukr_avx512(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
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
 * transposed). Same FMA order as ukr_avx512 on a packed panel, so results are identical. */
__attribute__((target("avx512f,fma")))
static void ukra_avx512(int kc, const float *A, int lda, const float *B, float *C, int ldc, int acc) {
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
__attribute__((target("avx512f")))
static void pack_bt32_avx512(const float *src, int ldb, int kc, float *d) {
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
#endif

static const ukr_t UK_C = {"c", 4, 16, ukr_c, NULL};
#if defined(__x86_64__)
static const ukr_t UK_AVX2 = {"avx2", 6, 16, ukr_avx2, NULL};
static const ukr_t UK_AVX512 = {"avx512", 12, 32, ukr_avx512, ukra_avx512};
#endif
static const ukr_t *g_uk;

static const ukr_t *by_name(const char *n) {
    if (!strcmp(n, "c")) return &UK_C;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!strcmp(n, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &UK_AVX2;
    if (!strcmp(n, "avx512") && __builtin_cpu_supports("avx512f")) return &UK_AVX512;
#endif
    return NULL;
}

static const ukr_t *cur(void) {
    const ukr_t *u = __atomic_load_n(&g_uk, __ATOMIC_ACQUIRE);
    if (u) return u;
    const char *e = getenv("BITNET_GEMM");
    if (e) u = by_name(e);
    if (!u) u = by_name("avx512");
    if (!u) u = by_name("avx2");
    if (!u) u = &UK_C;
    __atomic_store_n(&g_uk, u, __ATOMIC_RELEASE);
    return u;
}

const char *bn_sgemm_isa(void) { return cur()->name; }
int bn_sgemm_set_isa(const char *name) {
    const ukr_t *u = by_name(name);
    if (!u) return 0;
    __atomic_store_n(&g_uk, u, __ATOMIC_RELEASE);
    return 1;
}

size_t bn_sgemm_ws_floats(void) { return (size_t)MC * KC + (size_t)KC * (NC + MAXNR) + 64; }

/* Pack op(A)[ic:ic+mc, pc:pc+kc] into MR-row panels: Ap[p][k][MR], zero-padded rows.
 * direct: only the last, partial panel is packed (full panels are read in place by fna). */
static void pack_a(int ta, const float *A, int lda, int ic, int pc, int mc, int kc, int MR, float *Ap, int direct) {
    for (int ir = direct ? mc - mc % MR : 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        float *d = Ap + (size_t)ir * kc;
        if (!ta) {
            for (int i = 0; i < mr; i++) {
                const float *s = A + (size_t)(ic + ir + i) * lda + pc;
                for (int k = 0; k < kc; k++) d[k * MR + i] = s[k];
            }
        } else if (mr == MR && MR == 12) {   /* constant-size copies inline to vector moves */
            for (int k = 0; k < kc; k++) memcpy(d + (size_t)k * 12, A + (size_t)(pc + k) * lda + ic + ir, 12 * sizeof(float));
        } else {
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)(pc + k) * lda + ic + ir;
                for (int i = 0; i < mr; i++) d[k * MR + i] = s[i];
            }
        }
        if (mr < MR)
            for (int k = 0; k < kc; k++) for (int i = mr; i < MR; i++) d[k * MR + i] = 0.0f;
    }
}

/* Pack op(B)[pc:pc+kc, jc:jc+nc] into NR-column panels: Bp[p][k][NR], zero-padded columns. */
static void pack_b(int tb, const float *B, int ldb, int pc, int jc, int kc, int nc, int NR, float *Bp) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float *d = Bp + (size_t)jr * kc;
        if (!tb) {
            for (int k = 0; k < kc; k++) {
                const float *s = B + (size_t)(pc + k) * ldb + jc + jr;
                float *dk = d + (size_t)k * NR;
                if (nr == 32) memcpy(dk, s, 32 * sizeof(float));   /* constant size: inline vector moves */
                else {
                    memcpy(dk, s, (size_t)nr * sizeof(float));
                    for (int j = nr; j < NR; j++) dk[j] = 0.0f;
                }
            }
        } else {
#if defined(__x86_64__)
            if (NR == 32 && nr == 32 && cur() == &UK_AVX512) { pack_bt32_avx512(B + (size_t)(jc + jr) * ldb + pc, ldb, kc, d); continue; }
#endif
            for (int j = 0; j < nr; j++) {
                const float *s = B + (size_t)(jc + jr + j) * ldb + pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = s[k];
            }
            for (int j = nr; j < NR; j++) for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = 0.0f;
        }
    }
}

void bn_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              int accumulate, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    const ukr_t *u = cur();
    const int MR = u->mr, NR = u->nr;
    const int direct = !ta && u->fna;   /* read full A panels in place: no transposing pack */
    float *Ap = ws;
    float *Bp = ws + (size_t)MC * KC;
    _Alignas(64) float tmp[MAXMR * MAXNR];
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int acc = accumulate || pc > 0;
            pack_b(tb, B, ldb, pc, jc, kc, nc, NR, Bp);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(ta, A, lda, ic, pc, mc, kc, MR, Ap, direct);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = Bp + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        const float *ap = Ap + (size_t)ir * kc;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        if (direct && mr == MR) {
                            const float *ad = A + (size_t)(ic + ir) * lda + pc;
                            if (nr == NR) u->fna(kc, ad, lda, bp, c, ldc, acc);
                            else {
                                u->fna(kc, ad, lda, bp, tmp, NR, 0);
                                for (int i = 0; i < mr; i++)
                                    for (int j = 0; j < nr; j++)
                                        c[(size_t)i * ldc + j] = (acc ? c[(size_t)i * ldc + j] : 0.0f) + tmp[i * NR + j];
                            }
                        } else if (mr == MR && nr == NR) u->fn(kc, ap, bp, c, ldc, acc);
                        else {
                            u->fn(kc, ap, bp, tmp, NR, 0);
                            for (int i = 0; i < mr; i++)
                                for (int j = 0; j < nr; j++)
                                    c[(size_t)i * ldc + j] = (acc ? c[(size_t)i * ldc + j] : 0.0f) + tmp[i * NR + j];
                        }
                    }
                }
            }
        }
    }
}

typedef struct {
    float *const *ws; int ta, tb, M, N, K; const float *A; int lda; const float *B; int ldb;
    int acc; float *C; int ldc; int split_n, align;
} mt_job;

static void mt_fn(void *arg, int ith, int nth) {
    const mt_job *j = arg;
    int a, b;
    if (j->split_n) {
        bn_split(j->N, j->align, ith, nth, &a, &b);
        if (a >= b) return;
        const float *B = j->tb ? j->B + (size_t)a * j->ldb : j->B + a;
        bn_sgemm(j->ta, j->tb, j->M, b - a, j->K, j->A, j->lda, B, j->ldb, j->acc, j->C + a, j->ldc, j->ws[ith]);
    } else {
        bn_split(j->M, j->align, ith, nth, &a, &b);
        if (a >= b) return;
        const float *A = j->ta ? j->A + a : j->A + (size_t)a * j->lda;
        bn_sgemm(j->ta, j->tb, b - a, j->N, j->K, A, j->lda, j->B, j->ldb, j->acc, j->C + (size_t)a * j->ldc, j->ldc, j->ws[ith]);
    }
}

void bn_sgemm_mt(bn_pool *pool, float *const *ws, int ta, int tb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, int accumulate, float *C, int ldc) {
    const ukr_t *u = cur();
    mt_job j = {ws, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, 0, 0};
    /* split the larger output dimension, in whole micro-tiles */
    j.split_n = N > M;
    j.align = j.split_n ? u->nr : u->mr;
    if (pool && bn_pool_size(pool) > 1 && (j.split_n ? N >= 2 * u->nr : M >= 2 * u->mr)) {
        bn_pool_run(pool, mt_fn, &j);
    } else bn_sgemm(ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, ws[0]);
}
