/* gemm_f32.c — cache-blocked float32 GEMM driver (see gemm_f32.h), written once for every ISA.
 * Blocking: for each NC-column block of op(B) and KC-deep slice, pack B into NR-wide panels
 * (stays in L2/L3); for each MC-row block of op(A), pack A into MR-tall panels (L2); then the
 * micro-kernel of the caller's kernel set (k->sgemm, kernels.h) computes MR x NR tiles of C from
 * one A panel and one B panel (L1). The micro-kernels live in src/kernels/.
 * Not: a BLAS; no alpha, beta in {0, 1} only. */
#include "backend/cpu/gemm_f32.h"
#include <string.h>
#include <stdlib.h>

#define MC 144
#define KC 512
#define NC 3072

size_t bn_sgemm_ws_floats(void) { return (size_t)MC * KC + (size_t)KC * (NC + BN_SGEMM_MAXNR) + 64; }

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
static void pack_b(const bn_sgemm_ukr *u, int tb, const float *B, int ldb, int pc, int jc, int kc, int nc, int NR, float *Bp) {
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
            if (nr == NR && u->pack_bt) { u->pack_bt(B + (size_t)(jc + jr) * ldb + pc, ldb, kc, d); continue; }
            for (int j = 0; j < nr; j++) {
                const float *s = B + (size_t)(jc + jr + j) * ldb + pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = s[k];
            }
            for (int j = nr; j < NR; j++) for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = 0.0f;
        }
    }
}

void bn_sgemm(const bn_kernels *k, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              int accumulate, float *C, int ldc, float *ws) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate) for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    const bn_sgemm_ukr *u = k->sgemm;
    const int MR = u->mr, NR = u->nr;
    const int direct = !ta && u->fna;   /* read full A panels in place: no transposing pack */
    float *Ap = ws;
    float *Bp = ws + (size_t)MC * KC;
    _Alignas(64) float tmp[BN_SGEMM_MAXMR * BN_SGEMM_MAXNR];
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            int acc = accumulate || pc > 0;
            pack_b(u, tb, B, ldb, pc, jc, kc, nc, NR, Bp);
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
    const bn_kernels *k; float *const *ws; int ta, tb, M, N, K; const float *A; int lda; const float *B; int ldb;
    int acc; float *C; int ldc; int split_n, align;
} mt_job;

static void mt_fn(void *arg, int ith, int nth) {
    const mt_job *j = arg;
    int a, b;
    if (j->split_n) {
        bn_split(j->N, j->align, ith, nth, &a, &b);
        if (a >= b) return;
        const float *B = j->tb ? j->B + (size_t)a * j->ldb : j->B + a;
        bn_sgemm(j->k, j->ta, j->tb, j->M, b - a, j->K, j->A, j->lda, B, j->ldb, j->acc, j->C + a, j->ldc, j->ws[ith]);
    } else {
        bn_split(j->M, j->align, ith, nth, &a, &b);
        if (a >= b) return;
        const float *A = j->ta ? j->A + a : j->A + (size_t)a * j->lda;
        bn_sgemm(j->k, j->ta, j->tb, b - a, j->N, j->K, A, j->lda, j->B, j->ldb, j->acc, j->C + (size_t)a * j->ldc, j->ldc, j->ws[ith]);
    }
}

void bn_sgemm_mt(const bn_kernels *k, bn_pool *pool, float *const *ws, int ta, int tb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, int accumulate, float *C, int ldc) {
    const bn_sgemm_ukr *u = k->sgemm;
    mt_job j = {k, ws, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, 0, 0};
    /* split the larger output dimension, in whole micro-tiles */
    j.split_n = N > M;
    j.align = j.split_n ? u->nr : u->mr;
    if (pool && bn_pool_size(pool) > 1 && (j.split_n ? N >= 2 * u->nr : M >= 2 * u->mr)) {
        bn_pool_run(pool, mt_fn, &j);
    } else bn_sgemm(k, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, ws[0]);
}

const char *bn_sgemm_isa(void) { return bn_kernels_default()->sgemm->name; }
