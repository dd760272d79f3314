/* cpu.c — the CPU backend (backend.h): ternary weights packed by the model's bn_kernels set,
 * ops as plain loops and kernel calls spread over a persistent thread pool.
 * Row-level math (RMSNorm, RoPE, softmax, gated activation) is layers.c's, shared with training.
 * Threading: BitLinear splits output rows (32-row aligned) over threads; decode attention splits
 * (token, head) pairs; prefill attention of a run of >= ATT_GEMM_MIN tokens of one sequence
 * splits heads and uses float GEMMs; the head splits vocab rows. Results do not depend on the
 * thread count (every output element is computed by one thread in a fixed order).
 * KV cache: f16 (default; stored rounded to nearest even, read back exactly, all arithmetic in
 * float; f16row.h) or f32 (bn_exec_shape.kv_type). The cache, the prefill scratch and the activation
 * buffers are fresh anonymous pages (lazy_new): memory is committed only where it is written, so
 * a 4k context costs only the positions in use.
 * Not: a graph executor; buffers are host memory (device = BN_DEV_CPU). */
#include "backend/backend.h"
#include "model/model.h"
#include "core/threads.h"
#include "backend/cpu/gemm_f32.h"
#include "backend/cpu/layers.h"
#include <math.h>
#include "backend/cpu/f16row.h"
#include <sys/mman.h>

struct bn_exec {
    const bitnet_model *m;
    const bn_kernels *k;
    bn_pool *pool;
    int n_ctx, n_seq, nmax, nthreads;
    void *kcache, *vcache;      /* [n_layers][n_seq][n_ctx][kv_dim] of f16 (uint16_t) or float */
    int kv16;                   /* 1: the cache is f16 */
    bn_f16row h;                /* the f16 row functions of the kernel set */
    float *kf, *vf;             /* [n_threads][n_ctx][head_dim] one kv head as float (f16 prefill) */
    float *rope_cos, *rope_sin; /* [n_ctx][head_dim/2] */
    int8_t *xq;    /* [nmax][kpad(max cols)] quantized BitLinear input */
    float *xs;     /* [nmax] activation scales */
    int32_t *acc;  /* [nmax][max rows of one fused group] */
    float *scores; /* [n_threads][n_ctx] (decode attention) */
    float *sbuf;   /* [n_threads][nmax][n_ctx] attention scores of a prefill run */
    float **gws;   /* [n_threads] -> bn_sgemm workspace */
    int *idx;      /* [nmax] tokens taking the per-token attention path */
};

/* ---- small float ops (per row) ----
 * Their loops carry `omp simd` reductions (enabled by -fopenmp-simd, no OpenMP runtime) so the
 * compiler vectorizes them; on x86-64 Linux, BN_CLONES (kernels.h) builds AVX2 and AVX-512 versions of the
 * row functions that inline them, picked at load time (ifunc). Elsewhere plain portable C. */

static inline __attribute__((always_inline)) float dot(const float *a, const float *b, int n) {
    float d = 0.f;
#pragma omp simd reduction(+ : d)
    for (int i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

static inline __attribute__((always_inline)) void axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* ---- lazily committed buffers ----
 * n bytes, zero, 64-byte aligned, from fresh anonymous pages (a 64-byte header before them
 * holds the mapping's size): a page costs memory only once it is written. NULL on failure. */
static void *lazy_new(size_t n) {
    size_t t = n + 64;
    void *p = mmap(NULL, t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *(size_t *)p = t;
    return (char *)p + 64;
}
static void lazy_free(void *q) {
    if (!q) return;
    char *p = (char *)q - 64;
    munmap(p, *(size_t *)p);
}

static void cpu_rmsnorm(bn_exec *e, float *out, const float *x, const float *w, int n, int d, float eps) {
    for (int t = 0; t < n; t++) bn_rmsnorm_row(out + (size_t)t * d, x + (size_t)t * d, w, d, eps);
}

/* ---- weights ----
 * Packed ternary matrices are streamed once per token: they live in anonymous pages starting
 * on a 2 MiB boundary, advised for transparent huge pages (MADV_HUGEPAGE; a no-op where THP is
 * off), so the 2 MiB-aligned interior of a matrix costs one TLB entry per 2 MiB instead of 512;
 * the tail keeps 4 KiB pages, so nothing beyond the matrix is committed. */
#define HUGE_SZ ((size_t)2 << 20)
static size_t page_round(size_t n) { size_t pg = 4096; return (n + pg - 1) / pg * pg; }
static void *stream_new(size_t n) {
    size_t len = page_round(n);
    char *p = mmap(NULL, len + HUGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + HUGE_SZ > a) munmap(a + len, (size_t)(p + HUGE_SZ - a));
#ifdef MADV_HUGEPAGE
    if (len >= HUGE_SZ) madvise(a, len, MADV_HUGEPAGE);
#endif
    return a;
}
static void stream_free(void *p, size_t n) { if (p) munmap(p, page_round(n)); }

static bitnet_status cpu_tmat_new(const bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w) {
    const bn_kernels *k = m->k;
    w->rows = rows; w->cols = cols; w->scale = scale;
    w->device = BN_DEV_CPU;
    w->layout = k->layout == BN_LAYOUT_I16 ? BN_LAYOUT_TERN_I16 : k->layout == BN_LAYOUT_B3 ? BN_LAYOUT_TERN_B3 : BN_LAYOUT_TERN_REF;
    w->bytes = k->packed_size(rows, cols);
    w->data = stream_new(w->bytes);
    if (!w->data) { w->bytes = 0; return bn_err(BITNET_ERR_NOMEM, "out of memory for a %d x %d ternary matrix", rows, cols); }
    k->pack(q, rows, cols, w->data);
    return BITNET_OK;
}

static void cpu_tmat_free(bn_tmat *w) { stream_free(w->data, w->bytes); w->data = NULL; }

/* ---- fused BitLinear: several matrices sharing one quantized input ---- */
typedef struct {
    bn_exec *e;
    const bn_tmat *const *w;
    float *const *y;  /* [n][w->rows] outputs */
    int nw, n, ldx;
} mm_job;

static void mm_worker(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const bn_kernels *k = j->e->k;
    int total = 0;
    for (int i = 0; i < j->nw; i++) total += j->w[i]->rows;
    int a, b;
    bn_split(total, 32, ith, nth, &a, &b);
    int base = 0;
    for (int i = 0; i < j->nw; i++) {
        const bn_tmat *w = j->w[i];
        int r0 = a - base, r1 = b - base;
        if (r0 < 0) r0 = 0;
        if (r1 > w->rows) r1 = w->rows;
        if (r0 < r1) {
            int32_t *acc = j->e->acc + base; /* shared [n][total] scratch */
            k->tgemm(w->data, w->rows, w->cols, r0, r1, j->e->xq, j->ldx, j->n, acc, total);
            for (int t = 0; t < j->n; t++) {
                float f = w->scale / j->e->xs[t];
                float *y = j->y[i] + (size_t)t * w->rows;
                const int32_t *ac = acc + (size_t)t * total;
                for (int r = r0; r < r1; r++) y[r] = (float)ac[r] * f;
            }
        }
        base += w->rows;
    }
}

typedef struct { bn_exec *e; const float *x; int cols, n; } q_job;
static void quant_worker(void *arg, int ith, int nth) {
    q_job *j = arg;
    int kp = bn_kpad(j->cols), a, b;
    bn_split(j->n, 1, ith, nth, &a, &b);
    for (int t = a; t < b; t++)
        j->e->xs[t] = j->e->k->quant_act(j->x + (size_t)t * j->cols, j->cols, j->e->xq + (size_t)t * kp, kp);
}

static void cpu_bitlinear(bn_exec *e, const float *x, int n, int nw, const bn_tmat *const *w, float *const *y) {
    q_job qj = {e, x, w[0]->cols, n};
    if (n == 1) quant_worker(&qj, 0, 1); else bn_pool_run(e->pool, quant_worker, &qj);
    mm_job j = {e, w, y, nw, n, bn_kpad(w[0]->cols)};
    bn_pool_run(e->pool, mm_worker, &j);
}

/* ---- RoPE ---- */
static void cpu_rope(bn_exec *e, float *v, int n, int n_heads, const int32_t *pos) {
    int hd = e->m->cfg.head_dim, half = hd / 2;
    for (int t = 0; t < n; t++) {
        const float *cs = e->rope_cos + (size_t)pos[t] * half, *sn = e->rope_sin + (size_t)pos[t] * half;
        for (int h = 0; h < n_heads; h++) bn_rope_row(v + ((size_t)t * n_heads + h) * hd, cs, sn, half, 0);
    }
}

/* ---- attention ---- */
typedef struct {
    bn_exec *e;
    int layer, n;            /* per-token path: n tokens idx[0..n); GEMM path: n tokens from t0 */
    const float *q; float *out;
    const int32_t *seq, *pos;
    const int *idx;
    int t0;
} att_job;

/* Row 0 of layer `layer`, sequence seq in cache (f16 or float elements). */
static char *cache_of(const bn_exec *e, void *cache, int layer, int seq) {
    int kvd = e->m->cfg.n_kv_heads * e->m->cfg.head_dim;
    return (char *)cache + ((size_t)layer * e->n_seq + seq) * e->n_ctx * kvd * (e->kv16 ? 2 : 4);
}

/* one (token, head) pair per work item: scores over positions 0..pos, softmax, weighted sum */
BN_CLONES static void att_worker(void *arg, int ith, int nth) {
    att_job *j = arg;
    bn_exec *e = j->e;
    const bn_config *cf = &e->m->cfg;
    int hd = cf->head_dim, nh = cf->n_heads, kvd = cf->n_kv_heads * hd, qd = nh * hd, grp = nh / cf->n_kv_heads;
    float *sc = e->scores + (size_t)ith * e->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    int a, b;
    bn_split(j->n * nh, 1, ith, nth, &a, &b);
    for (int w = a; w < b; w++) {
        int t = j->idx[w / nh], h = w % nh, kh = h / grp, p = j->pos[t];
        const char *kc = cache_of(e, e->kcache, j->layer, j->seq[t]), *vc = cache_of(e, e->vcache, j->layer, j->seq[t]);
        const float *q = j->q + (size_t)t * qd + h * hd;
        float *o = j->out + (size_t)t * qd + h * hd;
        if (e->kv16) {
            const uint16_t *K = (const uint16_t *)kc + kh * hd, *V = (const uint16_t *)vc + kh * hd;
            for (int s = 0; s <= p; s++) sc[s] = e->h.dot(q, K + (size_t)s * kvd, hd);
            bn_softmax_row(sc, p + 1, scale);
            for (int i = 0; i < hd; i++) o[i] = 0.f;
            for (int s = 0; s <= p; s++) e->h.axpy(o, sc[s], V + (size_t)s * kvd, hd);
        } else {
            const float *K = (const float *)kc + kh * hd, *V = (const float *)vc + kh * hd;
            for (int s = 0; s <= p; s++) sc[s] = dot(q, K + (size_t)s * kvd, hd);
            bn_softmax_row(sc, p + 1, scale);
            for (int i = 0; i < hd; i++) o[i] = 0.f;
            for (int s = 0; s <= p; s++) axpy(o, sc[s], V + (size_t)s * kvd, hd);
        }
    }
}

/* Prefill attention (a run of n >= ATT_GEMM_MIN consecutive tokens of one sequence, positions
 * pos0..pos0+n-1): per query head, S = Q K^T over all cached positions as one float GEMM, causal
 * mask + softmax per row, then O = P V as another GEMM. An f16 cache is first converted to float
 * (K, V of kv head kh: [L][hd] in the thread's kf/vf), once per kv head. */
#define ATT_GEMM_MIN 8
static void att_gemm_worker(void *arg, int ith, int nth) {
    att_job *j = arg;
    bn_exec *e = j->e;
    const bn_config *cf = &e->m->cfg;
    int hd = cf->head_dim, nh = cf->n_heads, kvd = cf->n_kv_heads * hd, qd = nh * hd, grp = nh / cf->n_kv_heads;
    int n = j->n, pos0 = j->pos[j->t0], L = pos0 + n;
    const char *kc = cache_of(e, e->kcache, j->layer, j->seq[j->t0]), *vc = cache_of(e, e->vcache, j->layer, j->seq[j->t0]);
    const float *Q = j->q + (size_t)j->t0 * qd;
    float *O = j->out + (size_t)j->t0 * qd;
    float *S = e->sbuf + (size_t)ith * e->nmax * e->n_ctx;
    float *kf = e->kf ? e->kf + (size_t)ith * e->n_ctx * hd : NULL, *vf = e->vf ? e->vf + (size_t)ith * e->n_ctx * hd : NULL;
    float scale = 1.0f / sqrtf((float)hd);
    int a, b, have = -1;
    bn_split(nh, 1, ith, nth, &a, &b);
    for (int h = a; h < b; h++) {
        int kh = h / grp, ld = kvd;
        const float *K = (const float *)kc + kh * hd, *V = (const float *)vc + kh * hd;
        if (e->kv16) {
            if (kh != have) {
                for (int s = 0; s < L; s++) {
                    e->h.to_f32(kf + (size_t)s * hd, (const uint16_t *)kc + (size_t)s * kvd + kh * hd, hd);
                    e->h.to_f32(vf + (size_t)s * hd, (const uint16_t *)vc + (size_t)s * kvd + kh * hd, hd);
                }
                have = kh;
            }
            K = kf; V = vf; ld = hd;
        }
        bn_sgemm(e->k, 0, 1, n, L, hd, Q + h * hd, qd, K, ld, 0, S, L, e->gws[ith]);
        for (int t = 0; t < n; t++) bn_softmax_causal_row(S + (size_t)t * L, pos0 + t + 1, L, scale);  /* causal: 0..pos0+t */
        bn_sgemm(e->k, 0, 0, n, hd, L, S, L, V, ld, 0, O + h * hd, qd, e->gws[ith]);
    }
}

/* Runs of batch entries of one sequence (consecutive positions, as the caller guarantees) of at
 * least ATT_GEMM_MIN tokens take the GEMM path, one pool run each; all other tokens share one
 * pool run of the per-token path. */
static void cpu_attention(bn_exec *e, int layer, const float *q, const float *k, const float *v, int n,
                          const int32_t *seq, const int32_t *pos, float *out) {
    int kvd = e->m->cfg.n_kv_heads * e->m->cfg.head_dim;
    for (int t = 0; t < n; t++) {
        char *kd = cache_of(e, e->kcache, layer, seq[t]), *vd = cache_of(e, e->vcache, layer, seq[t]);
        if (e->kv16) {
            e->h.to_f16((uint16_t *)kd + (size_t)pos[t] * kvd, k + (size_t)t * kvd, kvd);
            e->h.to_f16((uint16_t *)vd + (size_t)pos[t] * kvd, v + (size_t)t * kvd, kvd);
        } else {
            memcpy((float *)kd + (size_t)pos[t] * kvd, k + (size_t)t * kvd, (size_t)kvd * 4);
            memcpy((float *)vd + (size_t)pos[t] * kvd, v + (size_t)t * kvd, (size_t)kvd * 4);
        }
    }
    att_job j = {e, layer, 0, q, out, seq, pos, e->idx, 0};
    int nshort = 0;
    for (int t0 = 0, t1; t0 < n; t0 = t1) {
        for (t1 = t0 + 1; t1 < n && seq[t1] == seq[t0]; t1++) {}
        if (t1 - t0 >= ATT_GEMM_MIN) {
            att_job g = j; g.t0 = t0; g.n = t1 - t0;
            bn_pool_run(e->pool, att_gemm_worker, &g);
        } else for (int t = t0; t < t1; t++) e->idx[nshort++] = t;
    }
    if (nshort) { j.n = nshort; bn_pool_run(e->pool, att_worker, &j); }
}

/* ---- activation, residual, embedding, head ---- */
static void cpu_glu(bn_exec *e, float *g, const float *u, size_t n, int act) {
    bn_glu_row(g, g, u, n, act == BN_ACT_SILU);
}

static void cpu_add(bn_exec *e, float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void cpu_embed(bn_exec *e, const int32_t *ids, int n, float *x) {
    const bitnet_model *m = e->m;
    int dim = m->cfg.hidden_size;
    for (int t = 0; t < n; t++) {
        const void *em = m->embed;
        size_t off = (size_t)ids[t] * dim;
        if (m->embed_dt == BN_W_F32) memcpy(x + (size_t)t * dim, (const float *)em + off, (size_t)dim * 4);
        else for (int i = 0; i < dim; i++) {
            uint16_t h; memcpy(&h, (const uint16_t *)em + off + i, 2);
            x[(size_t)t * dim + i] = m->embed_dt == BN_W_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h);
        }
    }
}

typedef struct { bn_exec *e; const float *x; int n; float *y; } head_job;
static void head_worker(void *arg, int ith, int nth) {
    head_job *j = arg;
    const bitnet_model *m = j->e->m;
    const bn_kernels *k = j->e->k;
    int a, b;
    bn_split(m->cfg.vocab_size, 64, ith, nth, &a, &b);
    if (a >= b) return;
    int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
    if (m->head_type == BITNET_HEAD_Q8) k->hgemm_q8(m->head_q, V, D, a, b, j->x, D, j->n, j->y, V);
    else if (m->head_type == BITNET_HEAD_Q4) k->hgemm_q4(m->head_q, V, D, a, b, j->x, D, j->n, j->y, V);
    else k->fgemm(m->head, m->head_dt, V, D, a, b, j->x, D, j->n, j->y, V);
}

static void cpu_head(bn_exec *e, const float *x, int n, float *logits) {
    head_job hj = {e, x, n, logits};
    bn_pool_run(e->pool, head_worker, &hj);
}

/* 0 * x is NaN exactly when x is NaN or infinite, so one vectorizable sum tells. */
static int cpu_finite(bn_exec *e, const float *x, size_t n) {
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += x[i] * 0.f;
    return s == 0.f;
}

/* ---- execution state ---- */
static float *cpu_buf_new(bn_exec *e, size_t n) { return lazy_new(n * sizeof(float)); }
static void cpu_buf_free(bn_exec *e, float *p) { lazy_free(p); }

static void cpu_exec_free(bn_exec *e) {
    if (!e) return;
    bn_pool_free(e->pool);
    if (e->gws) for (int i = 0; i < e->nthreads; i++) lazy_free(e->gws[i]);
    free(e->gws);
    void *lazy[] = {e->sbuf, e->kcache, e->vcache, e->kf, e->vf, e->acc};
    for (size_t i = 0; i < sizeof lazy / sizeof lazy[0]; i++) lazy_free(lazy[i]);
    void *bufs[] = {e->rope_cos, e->rope_sin, e->xq, e->xs, e->scores, e->idx};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bn_free(bufs[i]);
    free(e);
}

static bitnet_status cpu_exec_new(const bitnet_model *m, const bn_exec_shape *sh, bn_exec **out) {
    *out = NULL;
    const bn_config *cf = &m->cfg;
    bn_exec *e = calloc(1, sizeof *e);
    if (!e) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    e->m = m; e->k = m->k;
    e->n_ctx = sh->n_ctx; e->n_seq = sh->n_seq; e->nmax = sh->nmax; e->nthreads = sh->n_threads;
    bitnet_status s = bn_pool_new(e->nthreads, &e->pool);
    if (s) { free(e); return s; }
    int dim = cf->hidden_size, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, ffn = cf->intermediate_size;
    int wide = dim > qd ? dim : qd; if (ffn > wide) wide = ffn;
    int maxrows = 2 * ffn > qd + 2 * kvd ? 2 * ffn : qd + 2 * kvd; if (dim > maxrows) maxrows = dim;
    e->kv16 = sh->kv_type == BITNET_KV_F16;
    e->h = bn_f16row_for(m->k->name);
    size_t N = (size_t)e->nmax, nt = (size_t)e->nthreads;
    size_t cache = (size_t)cf->n_layers * e->n_seq * e->n_ctx * kvd * (e->kv16 ? 2 : 4);
    e->kcache = lazy_new(cache);
    e->vcache = lazy_new(cache);
    if (e->kv16) {
        e->kf = lazy_new(nt * e->n_ctx * hd * 4);
        e->vf = lazy_new(nt * e->n_ctx * hd * 4);
    }
    e->rope_cos = bn_alloc((size_t)e->n_ctx * (hd / 2) * 4);
    e->rope_sin = bn_alloc((size_t)e->n_ctx * (hd / 2) * 4);
    e->xq = bn_alloc(N * bn_kpad(wide)); e->xs = bn_alloc(N * 4);
    e->acc = lazy_new(N * maxrows * 4);
    e->scores = bn_alloc(nt * e->n_ctx * 4);
    e->sbuf = lazy_new(nt * N * e->n_ctx * 4);
    e->idx = bn_alloc(N * sizeof(int));
    e->gws = calloc(nt, sizeof *e->gws);
    for (size_t i = 0; e->gws && i < nt; i++) if (!(e->gws[i] = lazy_new(bn_sgemm_ws_floats() * 4))) { lazy_free(e->sbuf); e->sbuf = NULL; }
    if (!e->kcache || !e->vcache || (e->kv16 && (!e->kf || !e->vf)) || !e->rope_cos || !e->rope_sin || !e->xq || !e->xs || !e->acc || !e->scores ||
        !e->sbuf || !e->idx || !e->gws) {
        cpu_exec_free(e);
        return bn_err(BITNET_ERR_NOMEM, "out of memory for a context of %d sequences x %d tokens", sh->n_seq, sh->n_ctx);
    }
    bn_rope_tables(cf->rope_theta, hd, e->n_ctx, e->rope_cos, e->rope_sin);
    *out = e;
    return BITNET_OK;
}

static void cpu_kv_copy(bn_exec *e, int src, int dst, int n) {
    /* rows 0..n-1 of every layer; a row is kvd elements of the cache's type (f16 or float) */
    size_t bytes = (size_t)n * e->m->cfg.n_kv_heads * e->m->cfg.head_dim * (e->kv16 ? 2 : 4);
    for (int l = 0; l < e->m->cfg.n_layers; l++) {
        memcpy(cache_of(e, e->kcache, l, dst), cache_of(e, e->kcache, l, src), bytes);
        memcpy(cache_of(e, e->vcache, l, dst), cache_of(e, e->vcache, l, src), bytes);
    }
}

static const bn_backend CPU = {
    .name = "cpu", .device = BN_DEV_CPU,
    .tmat_new = cpu_tmat_new, .tmat_free = cpu_tmat_free,
    .exec_new = cpu_exec_new, .exec_free = cpu_exec_free, .buf_new = cpu_buf_new, .buf_free = cpu_buf_free,
    .embed = cpu_embed, .rmsnorm = cpu_rmsnorm, .bitlinear = cpu_bitlinear, .rope = cpu_rope,
    .attention = cpu_attention, .glu = cpu_glu, .add = cpu_add, .head = cpu_head, .finite = cpu_finite,
    .kv_copy = cpu_kv_copy,
};

const bn_backend *bn_backend_cpu(void) { return &CPU; }
