/* model.c — the forward pass: embeddings, BitLinear layers, RoPE, attention with a KV cache,
 * and the LM head, as plain loops and kernel calls (see tests/golden/README.md for the math).
 * Prefill runs n tokens at once (each weight block serves all n rows); decode is n = 1.
 * Not: a graph framework, a batcher of independent sequences, or a sampler. */
#include "model.h"
#include "threads.h"
#include "gemm_f32.h"
#include <math.h>
#include <stdio.h>

struct bitnet_ctx {
    const bitnet_model *m;
    bn_pool *pool;
    int n_ctx, pos, nthreads;
    int nmax;                 /* rows the scratch buffers hold (prefill chunk) */
    float *kcache, *vcache;   /* [n_layers][n_ctx][kv_dim] */
    float *rope_cos, *rope_sin; /* [n_ctx][head_dim/2] */
    /* scratch, for nmax rows */
    float *x;     /* [nmax][dim]  residual stream */
    float *xb;    /* [nmax][max(dim, q_dim, ffn)]  normed input of a BitLinear */
    float *q;     /* [nmax][q_dim] */
    float *att;   /* [nmax][q_dim] attention output */
    float *hg, *hu; /* [nmax][ffn] */
    int8_t *xq;   /* [nmax][kpad(max cols)] */
    float *xs;    /* [nmax] activation scales */
    int32_t *acc; /* [nmax][max rows] */
    float *scores; /* [n_threads][n_ctx] (decode) */
    float *sbuf;   /* [n_threads][nmax][n_ctx] attention scores of a prefill chunk */
    float **gws;   /* [n_threads] -> bn_sgemm workspace */
};

/* ---- small float ops (per row) ----
 * Their loops carry `omp simd` reductions (enabled by -fopenmp-simd, no OpenMP runtime) so the
 * compiler vectorizes them; on x86-64 Linux, BN_CLONES builds AVX2 and AVX-512 versions of the
 * row functions that inline them, picked at load time (ifunc). Elsewhere plain portable C. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define BN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BN_CLONES
#endif

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

/* out[d] = x[d] * rsqrt(mean(x^2) + eps) * w[d] */
BN_CLONES static void rmsnorm(float *out, const float *x, const float *w, int d, float eps) {
    float ss = dot(x, x, d);
    float r = 1.0f / sqrtf(ss / (float)d + eps);
#pragma omp simd
    for (int i = 0; i < d; i++) out[i] = w[i] * (x[i] * r);
}

/* ---- parallel BitLinear: several matrices sharing one quantized input ---- */
typedef struct {
    bitnet_ctx *c;
    const bn_tmat *w[3];
    float *y[3];      /* [n][w->rows] outputs */
    int nw, n, ldx;
} mm_job;

static void mm_worker(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const bn_kernels *k = j->c->m->k;
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
            int32_t *acc = j->c->acc + base; /* shared [n][total] scratch */
            k->tgemm(w->data, w->rows, w->cols, r0, r1, j->c->xq, j->ldx, j->n, acc, total);
            for (int t = 0; t < j->n; t++) {
                float f = w->scale / j->c->xs[t];
                float *y = j->y[i] + (size_t)t * w->rows;
                const int32_t *ac = acc + (size_t)t * total;
                for (int r = r0; r < r1; r++) y[r] = (float)ac[r] * f;
            }
        }
        base += w->rows;
    }
}

typedef struct { bitnet_ctx *c; const float *x; int cols, ldx_in, n; } q_job;
static void quant_worker(void *arg, int ith, int nth) {
    q_job *j = arg;
    int kp = bn_kpad(j->cols), a, b;
    bn_split(j->n, 1, ith, nth, &a, &b);
    for (int t = a; t < b; t++)
        j->c->xs[t] = j->c->m->k->quant_act(j->x + (size_t)t * j->ldx_in, j->cols, j->c->xq + (size_t)t * kp, kp);
}

/* y_i[n][w_i->rows] = BitLinear_i(x[n][cols]) for i < nw (all w_i have the same cols). */
static void bitlinear(bitnet_ctx *c, const float *x, int n, int nw, const bn_tmat *w0, float *y0,
                      const bn_tmat *w1, float *y1, const bn_tmat *w2, float *y2) {
    q_job qj = {c, x, w0->cols, w0->cols, n};
    if (n == 1) quant_worker(&qj, 0, 1); else bn_pool_run(c->pool, quant_worker, &qj);
    mm_job j = {c, {w0, w1, w2}, {y0, y1, y2}, nw, n, bn_kpad(w0->cols)};
    bn_pool_run(c->pool, mm_worker, &j);
    for (int i = 0; i < nw; i++) if (j.w[i]->lora) bn_lora_apply(j.w[i], c->xq, j.ldx, c->xs, n, j.y[i]);   /* LoRA hook */
}

/* ---- attention ---- */
typedef struct { bitnet_ctx *c; int layer, n, pos0; } att_job;

BN_CLONES static void att_worker(void *arg, int ith, int nth) {
    att_job *j = arg;
    bitnet_ctx *c = j->c;
    const bn_config *cf = &c->m->cfg;
    int hd = cf->head_dim, nh = cf->n_heads, kvd = cf->n_kv_heads * hd, qd = nh * hd, grp = nh / cf->n_kv_heads;
    const float *kc = c->kcache + (size_t)j->layer * c->n_ctx * kvd;
    const float *vc = c->vcache + (size_t)j->layer * c->n_ctx * kvd;
    float *sc = c->scores + (size_t)ith * c->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    int a, b;
    bn_split(j->n * nh, 1, ith, nth, &a, &b);
    for (int w = a; w < b; w++) {
        int t = w / nh, h = w % nh, kh = h / grp, p = j->pos0 + t;
        const float *q = c->q + (size_t)t * qd + h * hd;
        float mx = -INFINITY;
        for (int s = 0; s <= p; s++) {
            sc[s] = dot(q, kc + (size_t)s * kvd + kh * hd, hd) * scale;
            if (sc[s] > mx) mx = sc[s];
        }
        float sum = 0.f;
        for (int s = 0; s <= p; s++) { sc[s] = expf(sc[s] - mx); sum += sc[s]; }
        float inv = 1.0f / sum;
        float *o = c->att + (size_t)t * qd + h * hd;
        for (int i = 0; i < hd; i++) o[i] = 0.f;
        for (int s = 0; s <= p; s++) axpy(o, sc[s] * inv, vc + (size_t)s * kvd + kh * hd, hd);
    }
}

/* Prefill attention (n >= ATT_GEMM_MIN tokens): per query head, S = Q K^T over all cached
 * positions as one float GEMM, causal mask + softmax per row, then O = P V as another GEMM. */
#define ATT_GEMM_MIN 8
static void att_gemm_worker(void *arg, int ith, int nth) {
    att_job *j = arg;
    bitnet_ctx *c = j->c;
    const bn_config *cf = &c->m->cfg;
    int hd = cf->head_dim, nh = cf->n_heads, kvd = cf->n_kv_heads * hd, qd = nh * hd, grp = nh / cf->n_kv_heads;
    int n = j->n, L = j->pos0 + n;
    const float *kc = c->kcache + (size_t)j->layer * c->n_ctx * kvd;
    const float *vc = c->vcache + (size_t)j->layer * c->n_ctx * kvd;
    float *S = c->sbuf + (size_t)ith * c->nmax * c->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    int a, b;
    bn_split(nh, 1, ith, nth, &a, &b);
    for (int h = a; h < b; h++) {
        int kh = h / grp;
        bn_sgemm(0, 1, n, L, hd, c->q + h * hd, qd, kc + kh * hd, kvd, 0, S, L, c->gws[ith]);
        for (int t = 0; t < n; t++) {
            float *row = S + (size_t)t * L;
            int last = j->pos0 + t;           /* causal: positions 0..last */
            float mx = -INFINITY;
            for (int s2 = 0; s2 <= last; s2++) { row[s2] *= scale; if (row[s2] > mx) mx = row[s2]; }
            float sum = 0.f;
            for (int s2 = 0; s2 <= last; s2++) { row[s2] = expf(row[s2] - mx); sum += row[s2]; }
            float inv = 1.0f / sum;
            for (int s2 = 0; s2 <= last; s2++) row[s2] *= inv;
            for (int s2 = last + 1; s2 < L; s2++) row[s2] = 0.f;
        }
        bn_sgemm(0, 0, n, hd, L, S, L, vc + kh * hd, kvd, 0, c->att + h * hd, qd, c->gws[ith]);
    }
}

/* rotate-half RoPE on one head vector at position p */
static void rope(const bitnet_ctx *c, float *v, int p) {
    int half = c->m->cfg.head_dim / 2;
    const float *cs = c->rope_cos + (size_t)p * half, *sn = c->rope_sin + (size_t)p * half;
    for (int i = 0; i < half; i++) {
        float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cs[i] - x2 * sn[i];
        v[i + half] = x2 * cs[i] + x1 * sn[i];
    }
}

/* ---- head ---- */
typedef struct { bitnet_ctx *c; const float *x; int n; float *y; } head_job;
static void head_worker(void *arg, int ith, int nth) {
    head_job *j = arg;
    const bitnet_model *m = j->c->m;
    int a, b;
    bn_split(m->cfg.vocab_size, 64, ith, nth, &a, &b);
    if (a >= b) return;
    int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
    if (m->head_type == BITNET_HEAD_Q8) m->k->hgemm_q8(m->head_q, V, D, a, b, j->x, D, j->n, j->y, V);
    else if (m->head_type == BITNET_HEAD_Q4) m->k->hgemm_q4(m->head_q, V, D, a, b, j->x, D, j->n, j->y, V);
    else m->k->fgemm(m->head, m->head_dt, V, D, a, b, j->x, D, j->n, j->y, V);
}

BN_CLONES static void act_ffn(const bn_config *cf, float *g, const float *u, int n) {
    if (cf->act == BN_ACT_RELU2) {
        for (int i = 0; i < n; i++) { float r = g[i] > 0.f ? g[i] : 0.f; g[i] = r * r * u[i]; }
    } else {
        for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* Forward n (<= nmax) tokens at positions pos..pos+n-1. logits: NULL, or [n][vocab] (all) or
 * [vocab] (last row). */
static void forward(bitnet_ctx *c, const int32_t *ids, int n, float *logits, int all) {
    const bitnet_model *m = c->m;
    const bn_config *cf = &m->cfg;
    int dim = cf->hidden_size, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd;
    int ffn = cf->intermediate_size, pos0 = c->pos;
    for (int t = 0; t < n; t++) {
        const void *e = m->embed;
        size_t off = (size_t)ids[t] * dim;
        if (m->embed_dt == BN_W_F32) memcpy(c->x + (size_t)t * dim, (const float *)e + off, (size_t)dim * 4);
        else for (int i = 0; i < dim; i++) {
            uint16_t h; memcpy(&h, (const uint16_t *)e + off + i, 2);
            c->x[(size_t)t * dim + i] = m->embed_dt == BN_W_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h);
        }
    }
    for (int l = 0; l < cf->n_layers; l++) {
        const bn_layer *L = &m->layers[l];
        float *kc = c->kcache + ((size_t)l * c->n_ctx + pos0) * kvd;
        float *vc = c->vcache + ((size_t)l * c->n_ctx + pos0) * kvd;
        /* attention block; k and v go straight into the cache rows pos0.. */
        for (int t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm, dim, cf->norm_eps);
        bitlinear(c, c->xb, n, 3, &L->wq, c->q, &L->wk, kc, &L->wv, vc);
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < cf->n_heads; h++) rope(c, c->q + (size_t)t * qd + h * hd, pos0 + t);
            for (int h = 0; h < cf->n_kv_heads; h++) rope(c, kc + (size_t)t * kvd + h * hd, pos0 + t);
        }
        att_job aj = {c, l, n, pos0};
        bn_pool_run(c->pool, n >= ATT_GEMM_MIN ? att_gemm_worker : att_worker, &aj);
        for (int t = 0; t < n; t++) rmsnorm(c->att + (size_t)t * qd, c->att + (size_t)t * qd, L->attn_sub_norm, qd, cf->norm_eps);
        bitlinear(c, c->att, n, 1, &L->wo, c->q, NULL, NULL, NULL, NULL);
        for (size_t i = 0; i < (size_t)n * dim; i++) c->x[i] += c->q[i];
        /* feed-forward block */
        for (int t = 0; t < n; t++) rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, cf->norm_eps);
        bitlinear(c, c->xb, n, 2, &L->wgate, c->hg, &L->wup, c->hu, NULL, NULL);
        act_ffn(cf, c->hg, c->hu, n * ffn);
        for (int t = 0; t < n; t++) rmsnorm(c->hg + (size_t)t * ffn, c->hg + (size_t)t * ffn, L->ffn_sub_norm, ffn, cf->norm_eps);
        bitlinear(c, c->hg, n, 1, &L->wdown, c->q, NULL, NULL, NULL, NULL);
        for (size_t i = 0; i < (size_t)n * dim; i++) c->x[i] += c->q[i];
    }
    c->pos += n;
    if (!logits) return;
    int first = all ? 0 : n - 1, rows = all ? n : 1;
    for (int t = first; t < n; t++) rmsnorm(c->xb + (size_t)(t - first) * dim, c->x + (size_t)t * dim, m->final_norm, dim, cf->norm_eps);
    head_job hj = {c, c->xb, rows, logits};
    bn_pool_run(c->pool, head_worker, &hj);
}

bitnet_status bitnet_ctx_new(const bitnet_model *m, const bitnet_ctx_params *p, bitnet_ctx **out) {
    *out = NULL;
    const bn_config *cf = &m->cfg;
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (cf->max_pos < 4096 ? cf->max_pos : 4096);
    int nt = p && p->n_threads > 0 ? p->n_threads : 1;
    if (n_ctx > cf->max_pos) return bn_err(BITNET_ERR_ARG, "context %d exceeds the model's max_position_embeddings %d", n_ctx, cf->max_pos);
    bitnet_ctx *c = calloc(1, sizeof *c);
    if (!c) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    c->m = m; c->n_ctx = n_ctx; c->nmax = n_ctx < 256 ? n_ctx : 256;
    c->nthreads = nt;
    bitnet_status s = bn_pool_new(nt, &c->pool);
    if (s) { free(c); return s; }
    int dim = cf->hidden_size, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, ffn = cf->intermediate_size;
    int wide = dim > qd ? dim : qd; if (ffn > wide) wide = ffn;
    int maxrows = 2 * ffn > qd + 2 * kvd ? 2 * ffn : qd + 2 * kvd; if (dim > maxrows) maxrows = dim;
    size_t N = (size_t)c->nmax;
    c->kcache = bn_alloc((size_t)cf->n_layers * n_ctx * kvd * 4);
    c->vcache = bn_alloc((size_t)cf->n_layers * n_ctx * kvd * 4);
    c->rope_cos = bn_alloc((size_t)n_ctx * (hd / 2) * 4);
    c->rope_sin = bn_alloc((size_t)n_ctx * (hd / 2) * 4);
    c->x = bn_alloc(N * dim * 4); c->xb = bn_alloc(N * wide * 4);
    c->q = bn_alloc(N * (qd > dim ? qd : dim) * 4); c->att = bn_alloc(N * qd * 4);
    c->hg = bn_alloc(N * ffn * 4); c->hu = bn_alloc(N * ffn * 4);
    c->xq = bn_alloc(N * bn_kpad(wide)); c->xs = bn_alloc(N * 4);
    c->acc = bn_alloc(N * maxrows * 4);
    c->scores = bn_alloc((size_t)nt * n_ctx * 4);
    c->sbuf = bn_alloc((size_t)nt * N * n_ctx * 4);
    c->gws = calloc((size_t)nt, sizeof *c->gws);
    for (int i = 0; c->gws && i < nt; i++) if (!(c->gws[i] = bn_alloc(bn_sgemm_ws_floats() * 4))) { bn_free(c->sbuf); c->sbuf = NULL; }
    if (!c->kcache || !c->vcache || !c->rope_cos || !c->rope_sin || !c->x || !c->xb || !c->q || !c->att ||
        !c->hg || !c->hu || !c->xq || !c->xs || !c->acc || !c->scores || !c->sbuf || !c->gws) {
        bitnet_ctx_free(c);
        return bn_err(BITNET_ERR_NOMEM, "out of memory for a %d-token context", n_ctx);
    }
    /* inv_freq[i] = theta^(-2i/hd) computed as the reference does: 1 / theta^(2i/hd) in float32 */
    for (int i = 0; i < hd / 2; i++) {
        float inv = 1.0f / powf(cf->rope_theta, (float)(2 * i) / (float)hd);
        for (int p2 = 0; p2 < n_ctx; p2++) {
            float ang = (float)p2 * inv;
            c->rope_cos[(size_t)p2 * (hd / 2) + i] = cosf(ang);
            c->rope_sin[(size_t)p2 * (hd / 2) + i] = sinf(ang);
        }
    }
    *out = c;
    return BITNET_OK;
}

void bitnet_ctx_free(bitnet_ctx *c) {
    if (!c) return;
    bn_pool_free(c->pool);
    if (c->gws) for (int i = 0; i < c->nthreads; i++) bn_free(c->gws[i]);
    free(c->gws);
    void *bufs[] = {c->sbuf, c->kcache, c->vcache, c->rope_cos, c->rope_sin, c->x, c->xb, c->q, c->att, c->hg, c->hu,
                    c->xq, c->xs, c->acc, c->scores};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bn_free(bufs[i]);
    free(c);
}

void bitnet_ctx_reset(bitnet_ctx *c) { c->pos = 0; }
int bitnet_ctx_pos(const bitnet_ctx *c) { return c->pos; }

bitnet_status bitnet_ctx_truncate(bitnet_ctx *c, int pos) {
    if (pos < 0 || pos > c->pos) return bn_err(BITNET_ERR_ARG, "truncate to %d outside [0, %d]", pos, c->pos);
    c->pos = pos;
    return BITNET_OK;
}

bitnet_status bitnet_ctx_eval(bitnet_ctx *c, const int32_t *ids, int n, float *logits, int all_logits) {
    const bn_config *cf = &c->m->cfg;
    if (n <= 0) return bn_err(BITNET_ERR_ARG, "no tokens to evaluate");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cf->vocab_size)
            return bn_err(BITNET_ERR_ARG, "token id %d at index %d is out of the vocabulary [0, %d)", ids[i], i, cf->vocab_size);
    if (n > c->n_ctx - c->pos)
        return bn_err(BITNET_ERR_ARG, "context full: %d tokens in cache + %d new exceed the context of %d", c->pos, n, c->n_ctx);
    for (int done = 0; done < n; ) {
        int chunk = n - done < c->nmax ? n - done : c->nmax;
        int last = done + chunk == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (size_t)done * cf->vocab_size;
        else if (logits && last) lg = logits;
        forward(c, ids + done, chunk, lg, all_logits);
        done += chunk;
    }
    return BITNET_OK;
}
