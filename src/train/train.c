/* train.c — the training model (see train.h): parameters, activations, and forward/backward
 * function pairs per layer type: embedding, rmsnorm, bitlinear (quantizers + GEMM), rope,
 * causal GQA attention, relu2/silu-gated FFN, head + cross-entropy.
 * Layouts (row-major, BT = B*T tokens, C = hidden, Q = heads*head_dim, KV = kv_heads*head_dim,
 * I = intermediate, V = vocab): token-major activations [BT, D]; attention probabilities
 * [B, H, T, T]. Not: an inference path (no KV cache), not mixed precision. */
#include "train/train.h"
#include "backend/backend.h"
#include "arch/arch.h"
#include "io/ternary.h"
#include "backend/cpu/layers.h"
#include "core/rng.h"
#include "backend/cpu/gemm_f32.h"
#include "io/safetensors.h"
#include "train/lora.h"
#include <math.h>
#include <stdio.h>

/* activations kept for backward, for one (B, T) */
typedef struct bn_tlacts {
    float *resid;      /* [BT, C] layer input h */
    float *rstd_in;    /* [BT] */
    float *x_in;       /* [BT, C] quantized (dequantized floats) input of q/k/v */
    float *q, *k, *v;  /* [BT, Q], [BT, KV], [BT, KV] after RoPE (q, k) */
    float *att;        /* [B, H, T, T] softmax probabilities */
    float *atto;       /* [BT, Q] attention output (input of attn_sub norm) */
    float *rstd_as;    /* [BT] */
    float *x_as;       /* [BT, Q] quantized input of o_proj */
    float *mid;        /* [BT, C] h after the attention residual */
    float *rstd_post;  /* [BT] */
    float *x_post;     /* [BT, C] quantized input of gate/up */
    float *gate, *up;  /* [BT, I] */
    float *hmul;       /* [BT, I] act(gate) * up (input of ffn_sub norm) */
    float *rstd_fs;    /* [BT] */
    float *x_fs;       /* [BT, I] quantized input of down_proj */
} bn_tlacts;

struct bn_tacts {
    bn_tlacts *l;
    float *out;        /* [BT, C] final h */
    float *rstd_f;     /* [BT] */
    float *xf;         /* [BT, C] final norm output */
    float *logits;     /* [BT, V]; backward turns it into dlogits */
    float *tmp;        /* [BT, max(C,Q,I)] scratch (pre-quant norm output, GEMM outputs) */
    float *d_res;      /* [BT, C] gradient of the running residual */
    float *d_a;        /* [BT, max(C,Q,I)] */
    float *d_b;        /* [BT, max(C,Q,I)] */
    float *d_q, *d_k, *d_v; /* [BT, Q], [BT, KV], [BT, KV] */
    float *rope_cos, *rope_sin; /* [T, head_dim/2] */
    float *rowbuf;     /* [BT] per-row losses */
    float *dP;         /* [threads, T, T] attention backward scratch */
    float *fx, *fxr;   /* [BT, max(C,Q,I)], [BT]: LoRA on a quantized base only (else NULL): the
                        * float BitLinear input of the low-rank branch, recomputed in backward */
    int32_t *inputs;   /* [BT] */
    float *block;      /* everything above but the rope tables and rowbuf, from ops->alloc */
    float *hblock;     /* rope_cos, rope_sin, rowbuf: host memory */
};

/* ---------------------------------------------------------------- helpers, thread splits */

typedef void (*range_fn)(void *ctx, int a, int b);
typedef struct { range_fn fn; void *ctx; int n; } par_job;
static void par_run(void *arg, int ith, int nth) {
    par_job *j = arg; int a, b;
    bn_split(j->n, 1, ith, nth, &a, &b);
    if (a < b) j->fn(j->ctx, a, b);
}
/* Run fn over [0, n) split in contiguous ranges across the pool. */
static void par_for(bn_pool *p, int n, range_fn fn, void *ctx) {
    if (n <= 0) return;
    par_job j = {fn, ctx, n};
    if (bn_pool_size(p) == 1 || n == 1) fn(ctx, 0, n);
    else bn_pool_run(p, par_run, &j);
}

static inline float *P(const bn_train_model *m, int i) { return m->params + m->tp[i].off; }
static inline float *G(const bn_train_model *m, int i) { return m->grads ? m->grads + m->tp[i].off : NULL; }   /* NULL: frozen */
static inline int is_fz(const bn_train_model *m, int i) { return m->fz && m->fz[i].data; }   /* kept packed (m->fz) */
static inline float *WQ(const bn_train_model *m, int i) { return m->wq ? m->wq + m->tp[i].off : P(m, i); }   /* no wq: no_quant or frozen */

/* ---------------------------------------------------------------- model construction */

/* Append parameter slot sl of layer l (-1 for globals), named and shaped by the arch table. */
static int add_tp(bn_train_model *m, bn_slot sl, int l) {
    bn_tparam *t = &m->tp[m->n_tp];
    bn_arch_tensor_name(bn_arch_naming(&m->cfg), sl, l, t->name, sizeof t->name);
    t->ndim = bn_arch_shape(&m->cfg, sl, t->shape);
    if (t->ndim == 1) t->shape[1] = 0;
    t->numel = (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
    t->off = m->n_params; t->kind = (bn_pkind)bn_arch_kind(sl);   /* bn_tkind values == bn_pkind */
    t->slot = sl; t->layer = l;
    if (m->fz && t->kind != BN_PK_NORM) t->off = 0;   /* packed frozen base: kept in m->fz */
    else m->n_params += (t->numel + 15) & ~(size_t)15;   /* keep each tensor 64-byte aligned */
    return m->n_tp++;
}

bitnet_status bn_train_model_new(const bn_config *cfg, int no_quant, int n_threads, bn_train_model **out) {
    return bn_train_model_new_ex(cfg, no_quant, n_threads, NULL, out);
}

static bitnet_status model_new(const bn_config *cfg, int no_quant, int n_threads, const char *kernels, int packed,
                               bn_train_model **out) {
    *out = NULL;
    const bn_kernels *k = bn_kernels_default();
    if (kernels && *kernels && !(k = bn_kernels_by_name(kernels)))
        return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", kernels);
    bn_train_model *m = calloc(1, sizeof *m);
    if (!m) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    m->cfg = *cfg; m->no_quant = no_quant; m->k = k; m->ops = bn_train_ops_cpu();
    const bn_config *c = cfg;
    size_t ntp_max = (size_t)c->n_layers * BN_LAYER_SLOTS + 3;
    m->tp = calloc(ntp_max, sizeof *m->tp);
    m->L = calloc((size_t)c->n_layers, sizeof *m->L);
    if (packed) m->fz = calloc(ntp_max, sizeof *m->fz);
    m->int_fwd = packed;
    if (!m->tp || !m->L || (packed && !m->fz)) { bn_train_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    m->embed = add_tp(m, BN_S_EMBED, -1);
    for (int l = 0; l < c->n_layers; l++) {
        bn_tlayer *L = &m->L[l];
        int *idx[BN_LAYER_SLOTS] = {&L->in_norm, &L->q, &L->k, &L->v, &L->attn_sub, &L->o,
                                    &L->post_norm, &L->gate, &L->up, &L->ffn_sub, &L->down};  /* bn_slot order */
        for (int sl = 0; sl < BN_LAYER_SLOTS; sl++) *idx[sl] = add_tp(m, (bn_slot)sl, l);
    }
    m->final_norm = add_tp(m, BN_S_FINAL_NORM, -1);
    m->head = c->tied ? -1 : add_tp(m, BN_S_HEAD, -1);
    size_t bytes = m->n_params * sizeof(float);
    m->params = bn_alloc(bytes);
    if (!packed) {
        m->grads = bn_alloc(bytes); m->adam_m = bn_alloc(bytes); m->adam_v = bn_alloc(bytes);
        m->wq = no_quant ? NULL : bn_alloc(bytes);
    } else {   /* tiles of the widest frozen matrix */
        size_t wmax = 0;
        for (int i = 0; i < m->n_tp; i++) if (m->tp[i].kind != BN_PK_NORM && (size_t)m->tp[i].shape[1] > wmax) wmax = (size_t)m->tp[i].shape[1];
        m->fzbuf = bn_alloc(BN_FZ_TILE * wmax * sizeof(float)); m->fzq = bn_alloc(BN_FZ_TILE * wmax);
        if (!m->fzbuf || !m->fzq) { bn_train_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    }
    if (!m->params || (!packed && (!m->grads || !m->adam_m || !m->adam_v || (!no_quant && !m->wq)))) {
        bn_train_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory for %zu parameters", m->n_params);
    }
    for (int i = 0; i < m->n_tp; i++)
        if (m->tp[i].kind == BN_PK_NORM) for (size_t j = 0; j < m->tp[i].numel; j++) P(m, i)[j] = 1.0f;
    bitnet_status s = bn_pool_new(n_threads, &m->pool);
    if (s) { bn_train_model_free(m); return s; }
    int nth = bn_pool_size(m->pool);
    m->ws = calloc((size_t)nth, sizeof *m->ws);
    if (!m->ws) { bn_train_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < nth; i++)
        if (!(m->ws[i] = bn_alloc(bn_sgemm_ws_floats() * sizeof(float)))) { bn_train_model_free(m); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    *out = m;
    return BITNET_OK;
}

bitnet_status bn_train_model_new_ex(const bn_config *cfg, int no_quant, int n_threads, const char *kernels,
                                    bn_train_model **out) {
    return model_new(cfg, no_quant, n_threads, kernels, 0, out);
}
bitnet_status bn_train_model_new_packed(const bn_config *cfg, int n_threads, const char *kernels, bn_train_model **out) {
    return model_new(cfg, 0, n_threads, kernels, 1, out);
}
static void free_acts(bn_train_model *m);
void bn_train_set_grad_checkpoint(bn_train_model *m, int on) {
    if (m->grad_ckpt != !!on) { free_acts(m); m->grad_ckpt = !!on; }
}

static void quantize_weights(bn_train_model *m);
bitnet_status bn_train_model_freeze(bn_train_model *m) {
    if (!m->grads) return BITNET_OK;
    quantize_weights(m);   /* W_deq once, then kept in params */
    if (m->wq)
        for (int i = 0; i < m->n_tp; i++)
            if (m->tp[i].kind == BN_PK_LINEAR) memcpy(P(m, i), m->wq + m->tp[i].off, m->tp[i].numel * sizeof(float));
    bn_free(m->wq); bn_free(m->grads); bn_free(m->adam_m); bn_free(m->adam_v);
    m->wq = m->grads = m->adam_m = m->adam_v = NULL;
    return BITNET_OK;
}

static void free_acts(bn_train_model *m) {
    if (!m->a) return;
    m->ops->free(m, m->a->block);
    bn_free(m->a->hblock);
    free(m->a->l);
    free(m->a);
    m->a = NULL;
    free(m->targets); m->targets = NULL;
    m->cap_bt = 0;
}

void bn_train_model_free(bn_train_model *m) {
    if (!m) return;
    free_acts(m);
    if (m->ops && m->ops->release) m->ops->release(m);
    if (m->ws) { for (int i = 0; i < bn_pool_size(m->pool); i++) bn_free(m->ws[i]); free(m->ws); }
    bn_pool_free(m->pool);
    bn_free(m->params); bn_free(m->grads); bn_free(m->adam_m); bn_free(m->adam_v); bn_free(m->wq);
    if (m->fz) for (int i = 0; i < m->n_tp; i++) bn_free(m->fz[i].data);
    free(m->fz); bn_free(m->fzbuf); bn_free(m->fzq); bn_free(m->fxq); bn_free(m->fxs); bn_free(m->fyi);
    free(m->tp); free(m->L); free(m);
}

int bn_train_param_index(const bn_train_model *m, const char *name) {
    for (int i = 0; i < m->n_tp; i++) if (!strcmp(m->tp[i].name, name)) return i;
    return -1;
}

void bn_train_model_init_random(bn_train_model *m, uint64_t seed, float std) {
    uint64_t s = seed;
    for (int i = 0; i < m->n_tp; i++) {
        if (m->fz && m->tp[i].kind != BN_PK_NORM) continue;   /* a packed frozen base has no float slot for it */
        float *p = P(m, i);
        if (m->tp[i].kind == BN_PK_NORM) { for (size_t j = 0; j < m->tp[i].numel; j++) p[j] = 1.0f; continue; }
        for (size_t j = 0; j < m->tp[i].numel; j += 2) {   /* Box-Muller */
            double u1 = ((bn_splitmix64(&s) >> 11) + 1.0) * 0x1.0p-53, u2 = (bn_splitmix64(&s) >> 11) * 0x1.0p-53;
            double r = sqrt(-2.0 * log(u1));
            p[j] = (float)(std * r * cos(2 * M_PI * u2));
            if (j + 1 < m->tp[i].numel) p[j + 1] = (float)(std * r * sin(2 * M_PI * u2));
        }
    }
}

bitnet_status bn_train_model_load_weights(bn_train_model *m, const char *dir) {
    if (m->fz) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: a packed frozen base is read by bn_train_model_from_dir_frozen, not into float slots", dir);
    bn_st *st;
    bitnet_status s = bn_st_open_dir(dir, &st);
    if (s) return s;
    for (int i = 0; i < m->n_tp && !s; i++) {
        const bn_tparam *p = &m->tp[i];
        const bn_tensor *t = bn_st_find(st, p->name);
        if (t && p->kind == BN_PK_LINEAR && t->dtype == BN_U8)
            s = bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' is packed ternary (uint8); training needs float master weights", dir, p->name);
        else s = bn_arch_read_f32(st, p->name, p->ndim, p->shape, P(m, i));
    }
    bn_st_free(st);
    return s;
}

bitnet_status bn_train_model_from_dir(const char *dir, int no_quant, int n_threads, bn_train_model **out) {
    return bn_train_model_from_dir_ex(dir, no_quant, n_threads, NULL, out);
}

bitnet_status bn_train_model_from_dir_ex(const char *dir, int no_quant, int n_threads, const char *kernels, bn_train_model **out) {
    *out = NULL;
    bn_config c;
    bitnet_status s = bn_config_load(dir, &c);
    if (s) return s;
    bn_train_model *m;
    if ((s = bn_train_model_new_ex(&c, no_quant, n_threads, kernels, &m))) return s;
    if ((s = bn_train_model_load_weights(m, dir))) { bn_train_model_free(m); return s; }
    *out = m;
    return BITNET_OK;
}

static bitnet_status ensure_acts(bn_train_model *m, int B, int T) {
    const bn_config *c = &m->cfg;
    int BT = B * T, need_fx = m->lora && !m->no_quant;
    if (m->a && BT <= m->cap_bt && T == m->T && (!need_fx || m->a->fx)) { m->B = B; return BITNET_OK; }
    free_acts(m);
    size_t C = c->hidden_size, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t I = c->intermediate_size, V = c->vocab_size, H = c->n_heads, hd2 = c->head_dim / 2;
    size_t mx = C > Q ? C : Q; if (I > mx) mx = I;
    size_t bt = (size_t)BT;
    /* count floats, each array rounded to 16 floats */
#define R16(x) (((x) + 15) & ~(size_t)15)
    size_t per_layer = R16(bt * C) * 3 + R16(bt) * 4 + R16(bt * Q) * 3 + R16(bt * KV) * 2 + R16((size_t)B * H * T * T)
                     + R16(bt * C) + R16(bt * I) * 4;
    int nfull = m->grad_ckpt ? 1 : c->n_layers;   /* checkpointing: one layer's set, shared; each layer keeps its input */
    size_t total = per_layer * nfull + R16(bt * C) * (size_t)(c->n_layers - nfull) + R16(bt * C) * 3 + R16(bt) + R16(bt * V)
                 + R16(bt * mx) * 3 + R16(bt * Q) + R16(bt * KV) * 2 + R16((size_t)bn_pool_size(m->pool) * T * T)
                 + (need_fx ? R16(bt * mx) + R16(bt) : 0);
    size_t htotal = R16((size_t)T * hd2) * 2 + R16(bt);
    /* the same count in double: a shape whose size_t count wrapped is refused, not under-allocated */
    double dbt = (double)BT, big = ((double)B * H * T * T + dbt * (6.0 * C + 4.0 * I + 3.0 * Q + 2.0 * KV + 4)) * nfull
                 + dbt * C * (c->n_layers - nfull) + dbt * (3.0 * C + V + 3.0 * mx + Q + 2.0 * KV + 3) + (double)bn_pool_size(m->pool) * T * T
                 + (need_fx ? dbt * (mx + 1.0) : 0);
    if (big * sizeof(float) > (double)SIZE_MAX / 4)
        return bn_err(BITNET_ERR_NOMEM, "training activations for batch %d x seq %d do not fit in memory (%.3g GiB)", B, T, big * 4 / (1 << 30));
    struct bn_tacts *a = calloc(1, sizeof *a);
    if (!a) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    a->l = calloc((size_t)c->n_layers, sizeof *a->l);
    a->block = m->ops->alloc(m, total);
    a->hblock = bn_alloc(htotal * sizeof(float));
    m->targets = malloc(2 * bt * sizeof(int32_t));
    if (!a->l || !a->block || !a->hblock || !m->targets) {
        free(a->l); m->ops->free(m, a->block); bn_free(a->hblock); free(a); free(m->targets); m->targets = NULL;
        return bn_err(BITNET_ERR_NOMEM, "out of memory for training activations (B*T = %d, %.1f GiB)", BT, total * 4.0 / (1 << 30));
    }
    float *p = a->block;
#define TAKE(n) (p += R16(n), p - R16(n))
    for (int l = 0; l < c->n_layers; l++) {
        bn_tlacts *L = &a->l[l];
        if (l >= nfull) { *L = a->l[0]; L->resid = TAKE(bt * C); continue; }   /* the shared set, its own input */
        L->resid = TAKE(bt * C); L->rstd_in = TAKE(bt); L->x_in = TAKE(bt * C);
        L->q = TAKE(bt * Q); L->k = TAKE(bt * KV); L->v = TAKE(bt * KV);
        L->att = TAKE((size_t)B * H * T * T); L->atto = TAKE(bt * Q); L->rstd_as = TAKE(bt); L->x_as = TAKE(bt * Q);
        L->mid = TAKE(bt * C); L->rstd_post = TAKE(bt); L->x_post = TAKE(bt * C);
        L->gate = TAKE(bt * I); L->up = TAKE(bt * I); L->hmul = TAKE(bt * I); L->rstd_fs = TAKE(bt); L->x_fs = TAKE(bt * I);
    }
    a->out = TAKE(bt * C); a->rstd_f = TAKE(bt); a->xf = TAKE(bt * C); a->logits = TAKE(bt * V);
    a->tmp = TAKE(bt * mx); a->d_res = TAKE(bt * C); a->d_a = TAKE(bt * mx); a->d_b = TAKE(bt * mx);
    a->d_q = TAKE(bt * Q); a->d_k = TAKE(bt * KV); a->d_v = TAKE(bt * KV);
    a->inputs = m->targets + bt;
    a->dP = TAKE((size_t)bn_pool_size(m->pool) * T * T);
    if (need_fx) { a->fx = TAKE(bt * mx); a->fxr = TAKE(bt); }
    p = a->hblock;
    a->rope_cos = TAKE((size_t)T * hd2); a->rope_sin = TAKE((size_t)T * hd2); a->rowbuf = TAKE(bt);
#undef TAKE
#undef R16
    bn_rope_tables(c->rope_theta, c->head_dim, T, a->rope_cos, a->rope_sin);
    m->a = a; m->B = B; m->T = T; m->cap_bt = BT;
    return BITNET_OK;
}

/* ---------------------------------------------------------------- vectorized row kernels
 * Loops carry `omp simd` (enabled by -fopenmp-simd, no OpenMP runtime); on x86-64 Linux
 * BN_CLONES (kernels.h) also builds AVX2 and AVX-512 versions picked at load time (ifunc). Elementwise
 * arithmetic is the same as the scalar code (no FMA contraction under -std=c11); reductions
 * (sums, maxima) are vectorized, so sums are in a fixed, thread-count-independent order. */

/* Per-token absmax int8 quantization of one row, dequantized: y = clamp(rint(x s), -128, 127) / s,
 * s = 127 / max(max|x|, 1e-5). y may equal x. */
BN_CLONES static void quant_row(const float *x, float *y, int D) {
    float mx = 0;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < D; i++) { float v = fabsf(x[i]); mx = v > mx ? v : mx; }
    float s = bn_act_scale(mx);
#pragma omp simd
    for (int i = 0; i < D; i++) y[i] = bn_act_q(x[i], s) / s;
}
/* W_deq = bn_ternary_q(w, g) / g = clamp(rint(w g), -1, 1) / g */
BN_CLONES static void ternary_deq(const float *w, float *dq, float g, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) dq[i] = bn_ternary_q(w[i], g) / g;
}
/* sum dy[i] w[i] x[i] */
BN_CLONES static float dot3(const float *dy, const float *w, const float *x, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += dy[i] * w[i] * x[i];
    return s;
}
/* dx (+)= rs dy w - k x */
BN_CLONES static void rms_dx(float *dx, const float *dy, const float *w, const float *x, float rs, float k, int n, int acc) {
    if (acc) {
#pragma omp simd
        for (int i = 0; i < n; i++) dx[i] += rs * dy[i] * w[i] - k * x[i];
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = rs * dy[i] * w[i] - k * x[i];
    }
}
/* dw += dy x rs */
BN_CLONES static void rms_dw(float *dw, const float *dy, const float *x, float rs, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) dw[i] += dy[i] * x[i] * rs;
}

BN_CLONES static float dot2(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}
/* softmax backward of one row: d = p (d - dsum) scale */
BN_CLONES static void dsoftmax_row(float *d, const float *p, float dsum, float scale, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) d[j] = p[j] * (d[j] - dsum) * scale;
}

/* ---------------------------------------------------------------- quantizers */

/* Thread ith quantizes whole BitLinear matrices: those whose middle element falls in its share
 * of all linear elements (each matrix's scale comes from one bn_ternarize call, as before). */
static void wq_run(void *arg, int ith, int nth) {
    bn_train_model *m = arg;
    size_t total = 0, cum = 0;
    for (int i = 0; i < m->n_tp; i++) if (m->tp[i].kind == BN_PK_LINEAR) total += m->tp[i].numel;
    for (int i = 0; i < m->n_tp; i++) {
        if (m->tp[i].kind != BN_PK_LINEAR) continue;
        size_t mid = cum + m->tp[i].numel / 2;
        cum += m->tp[i].numel;
        if ((int)(mid * (size_t)nth / total) != ith) continue;
        float mean = bn_ternarize(P(m, i), m->tp[i].numel, NULL);
        ternary_deq(P(m, i), WQ(m, i), 1.0f / mean, (int)m->tp[i].numel);
    }
}
/* Weight quantization of every BitLinear matrix into m->wq: W_deq = clamp(rint(W g), -1, 1) / g. */
static void quantize_weights(bn_train_model *m) {
    if (!m->wq) return;   /* no_quant, or frozen (params hold W_deq already) */
    bn_pool_run(m->pool, wq_run, m);
}

/* ---------------------------------------------------------------- rmsnorm (+ quant) */

typedef struct { const float *x, *w; float *y, *rstd, *yq; int D; float eps; } rms_ctx;
static void rms_fwd_range(void *c_, int a, int b) {
    rms_ctx *c = c_;
    int D = c->D;
    for (int r = a; r < b; r++) {
        const float *x = c->x + (size_t)r * D; float *y = c->y + (size_t)r * D;
        c->rstd[r] = bn_rmsnorm_row(y, x, c->w, D, c->eps);
        if (c->yq) quant_row(y, c->yq + (size_t)r * D, D);   /* fused: y's row is still in L1 */
    }
}
/* y = rmsnorm(x) * w ([N, D]); rstd[N] kept. If yq: also yq = quant(y) (the BitLinear input). */
static void rmsnorm_forward(bn_train_model *m, const float *x, const float *w, float *y, float *rstd, float *yq, int N, int D) {
    rms_ctx c = {x, w, y, rstd, yq, D, m->cfg.norm_eps};
    par_for(m->pool, N, rms_fwd_range, &c);
}

typedef struct { const float *dy, *x, *w, *rstd; float *dx, *dw, *rowdot; int D, N, acc; } rmsb_ctx;
static void rms_bwd_rows(void *c_, int a, int b) {
    rmsb_ctx *c = c_;
    int D = c->D;
    for (int r = a; r < b; r++) {
        const float *dy = c->dy + (size_t)r * D, *x = c->x + (size_t)r * D;
        float rs = c->rstd[r], dot = dot3(dy, c->w, x, D);
        float k = dot * rs * rs * rs / (float)D;
        rms_dx(c->dx + (size_t)r * D, dy, c->w, x, rs, k, D, c->acc);
    }
}
static void rms_bwd_cols(void *c_, int a, int b) {
    rmsb_ctx *c = c_;
    int D = c->D;
    for (int r = 0; r < c->N; r++) rms_dw(c->dw + a, c->dy + (size_t)r * D + a, c->x + (size_t)r * D + a, c->rstd[r], b - a);
}
/* dx (= or += when acc) = d rmsnorm / dx . dy;  dw += sum_rows dy * x * rstd.
 * x: [N, D] the norm's input; dx must not alias dy. Column-split dw keeps sums thread-count independent. */
static void rmsnorm_backward(bn_train_model *m, const float *dy, const float *x, const float *w, const float *rstd,
                             float *dx, float *dw, int N, int D, int acc) {
    rmsb_ctx c = {dy, x, w, rstd, dx, dw, NULL, D, N, acc};
    if (dw) par_for(m->pool, D, rms_bwd_cols, &c);   /* dw NULL: frozen base */
    par_for(m->pool, N, rms_bwd_rows, &c);
}

/* ---------------------------------------------------------------- frozen matrices of a packed base */

/* Rows [r0 + a, r0 + b) of frozen matrix i as float32 into dst (row r at (r - r0) * cols): the
 * ternary values times the scale (= W_deq, bit for bit), or the loaded embedding/head values. */
typedef struct { const bn_train_model *m; int i, r0; float *dst; } fzr_ctx;
static void fz_rows_range(void *c_, int a, int b) {
    fzr_ctx *c = c_;
    const bn_tparam *t = &c->m->tp[c->i];
    const bn_tfrozen *f = &c->m->fz[c->i];
    int rows = (int)t->shape[0], cols = (int)t->shape[1];
    float *d = c->dst + (size_t)a * cols;
    size_t n = (size_t)(b - a) * cols;
    if (f->wdt < 0) {
        int8_t *q = c->m->fzq + (size_t)a * cols;
        c->m->k->unpack(f->data, rows, cols, c->r0 + a, c->r0 + b, q);
        for (size_t j = 0; j < n; j++) d[j] = (float)q[j] * f->scale;
    } else {
        size_t o = (size_t)(c->r0 + a) * cols;
        for (size_t j = 0; j < n; j++) d[j] = bn_wget(f->data, f->wdt, o + j);
    }
}
/* m->fzbuf = rows [r0, r1) of frozen matrix i (r1 - r0 <= BN_FZ_TILE), split over the pool. */
static const float *fz_tile(const bn_train_model *m, int i, int r0, int r1) {
    fzr_ctx c = {m, i, r0, m->fzbuf};
    par_for(m->pool, r1 - r0, fz_rows_range, &c);
    return m->fzbuf;
}
/* y[N, out] (=, or += when acc) x[N, in] @ W^T for frozen matrix i, one tile of W's rows at a time. */
static void fz_gemm_xwt(bn_train_model *m, int i, const float *x, float *y, int N, int acc) {
    int out = (int)m->tp[i].shape[0], in = (int)m->tp[i].shape[1];
    for (int r0 = 0; r0 < out; r0 += BN_FZ_TILE) {
        int r1 = r0 + BN_FZ_TILE < out ? r0 + BN_FZ_TILE : out;
        bn_sgemm_mt(m->k, m->pool, m->ws, 0, 1, N, r1 - r0, in, x, in, fz_tile(m, i, r0, r1), in, acc, y + r0, out);
    }
}
/* dx[N, in] (=, or += when acc) dy[N, out] @ W for frozen matrix i: the backward through it, W read
 * from its packed (or loaded) form a tile at a time, never as a whole float copy. */
static void fz_gemm_dyw(bn_train_model *m, int i, const float *dy, float *dx, int N, int acc) {
    int out = (int)m->tp[i].shape[0], in = (int)m->tp[i].shape[1];
    for (int r0 = 0; r0 < out; r0 += BN_FZ_TILE) {
        int r1 = r0 + BN_FZ_TILE < out ? r0 + BN_FZ_TILE : out;
        bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, in, r1 - r0, dy + r0, out, fz_tile(m, i, r0, r1), in, acc || r0 > 0, dx, in);
    }
}
/* The int buffers of the packed BitLinear forward for N tokens. */
static bitnet_status fz_reserve(bn_train_model *m, int N) {
    if (!m->fz || N <= m->cap_fq) return BITNET_OK;
    int in = 0, out = 0;
    for (int i = 0; i < m->n_tp; i++)
        if (m->tp[i].kind == BN_PK_LINEAR) {
            if (m->tp[i].shape[1] > in) in = (int)m->tp[i].shape[1];
            if (m->tp[i].shape[0] > out) out = (int)m->tp[i].shape[0];
        }
    bn_free(m->fxq); bn_free(m->fxs); bn_free(m->fyi);
    m->fxq = bn_alloc((size_t)N * bn_kpad(in)); m->fxs = bn_alloc((size_t)N * sizeof(float));
    m->fyi = bn_alloc((size_t)N * out * sizeof(int32_t));
    if (!m->fxq || !m->fxs || !m->fyi) {
        bn_free(m->fxq); bn_free(m->fxs); bn_free(m->fyi); m->fxq = NULL; m->fxs = NULL; m->fyi = NULL; m->cap_fq = 0;
        return bn_err(BITNET_ERR_NOMEM, "out of memory for the packed BitLinear buffers (%d tokens)", N);
    }
    m->cap_fq = N;
    return BITNET_OK;
}

/* y[N, out] (=, or += when acc) BitLinear(x) through the packed matrix i with the kernel set's
 * ternary GEMM, as inference computes it: x (the dequantized int8 input the forward keeps) is
 * quantized again per token (quant_act gives back the same int8 values), the product is exact
 * int32, y = y_int / s * scale. Threads split the tokens for the quantizer and 16-row blocks of W. */
typedef struct { bn_train_model *m; int i, N, acc, phase; const float *x; float *y; } fzl_ctx;
static void fz_linear_run(void *arg, int ith, int nth) {
    fzl_ctx *c = arg;
    bn_train_model *m = c->m;
    int out = (int)m->tp[c->i].shape[0], in = (int)m->tp[c->i].shape[1], kp = bn_kpad(in), a, b;
    if (c->phase == 0) {
        bn_split(c->N, 1, ith, nth, &a, &b);
        for (int t = a; t < b; t++) m->fxs[t] = m->k->quant_act(c->x + (size_t)t * in, in, m->fxq + (size_t)t * kp, kp);
        return;
    }
    bn_split(out, 16, ith, nth, &a, &b);
    if (a >= b) return;
    m->k->tgemm(m->fz[c->i].data, out, in, a, b, m->fxq, kp, c->N, m->fyi, out);
    float sc = m->fz[c->i].scale;
    for (int t = 0; t < c->N; t++) {
        const int32_t *yi = m->fyi + (size_t)t * out;
        float *y = c->y + (size_t)t * out, s = m->fxs[t];
        if (c->acc) for (int r = a; r < b; r++) y[r] += (float)yi[r] / s * sc;
        else for (int r = a; r < b; r++) y[r] = (float)yi[r] / s * sc;
    }
}
static void fz_linear_int(bn_train_model *m, int i, const float *x, float *y, int N, int acc) {
    fzl_ctx c = {m, i, N, acc, 0, x, y};
    bn_pool_run(m->pool, fz_linear_run, &c);
    c.phase = 1;
    bn_pool_run(m->pool, fz_linear_run, &c);
}

/* ---------------------------------------------------------------- bitlinear = GEMM on quantized operands */

/* y[N, out] = x[N, in] @ W^T (W: [out, in]) ; accumulate: y += */
static void linear_forward(bn_train_model *m, const float *x, int widx, float *y, int N, int acc) {
    int out = (int)m->tp[widx].shape[0], in = (int)m->tp[widx].shape[1];
    if (is_fz(m, widx) && m->fz[widx].wdt < 0 && m->int_fwd) fz_linear_int(m, widx, x, y, N, acc);
    else if (is_fz(m, widx)) fz_gemm_xwt(m, widx, x, y, N, acc);
    else bn_sgemm_mt(m->k, m->pool, m->ws, 0, 1, N, out, in, x, in, WQ(m, widx), in, acc, y, out);
}
/* dW += dy^T @ x ; dx (= or +=) dy @ W (STE: W is the dequantized weight). */
static void linear_backward(bn_train_model *m, const float *dy, const float *x, int widx, float *dx, int N, int acc_dx) {
    int out = (int)m->tp[widx].shape[0], in = (int)m->tp[widx].shape[1];
    if (m->grads) bn_sgemm_mt(m->k, m->pool, m->ws, 1, 0, out, in, N, dy, out, x, in, 1, G(m, widx), in);
    if (dx && is_fz(m, widx)) fz_gemm_dyw(m, widx, dy, dx, N, acc_dx);
    else if (dx) bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, in, out, dy, out, WQ(m, widx), in, acc_dx, dx, in);
}

/* ---------------------------------------------------------------- rope (rotate-half) */

typedef struct { float *x; const float *cs, *sn; int nh, hd, T, inv; } rope_ctx;
static void rope_range(void *c_, int a, int b) {
    rope_ctx *c = c_;
    int h2 = c->hd / 2, W = c->nh * c->hd;
    for (int r = a; r < b; r++) {
        int t = r % c->T;
        const float *cs = c->cs + (size_t)t * h2, *sn = c->sn + (size_t)t * h2;
        for (int h = 0; h < c->nh; h++) bn_rope_row(c->x + (size_t)r * W + h * c->hd, cs, sn, h2, c->inv);
    }
}
/* In place on x[BT, nh*hd]: forward rotates by +angle; backward (inv) is the transpose, -angle. */
static void rope(bn_train_model *m, float *x, int N, int nh, int inv) {
    rope_ctx c = {x, m->a->rope_cos, m->a->rope_sin, nh, m->cfg.head_dim, m->T, inv};
    par_for(m->pool, N, rope_range, &c);
}

/* ---------------------------------------------------------------- attention */

typedef struct { bn_train_model *m; const float *q, *k, *v, *dout; float *att, *out, *dq, *dk, *dv; int bwd; } att_ctx;
/* Causal attention runs in blocks of ATT_TB query rows: rows [r0, r1) see keys [0, r1), so the
 * GEMMs skip the key blocks above the diagonal (about 5/8 of the full T x T work at T = 256).
 * Within a block, entries above the diagonal (j > t, j < r1) are set to 0 in P and dS; entries
 * j >= r1 are never written or read. */
#define ATT_TB 64
/* Forward for one (batch, head): S = Q K^T (causal blocks), P = softmax(S * scale) with the
 * causal mask, O = P V. P is kept in att[b, h]. */
static void att_fwd_bh(att_ctx *c, int bh, float *ws) {
    const bn_config *cf = &c->m->cfg;
    int T = c->m->T, H = cf->n_heads, hd = cf->head_dim, grp = H / cf->n_kv_heads;
    int Q = H * hd, KV = cf->n_kv_heads * hd;
    int bi = bh / H, h = bh % H, kh = h / grp;
    float scale = 1.0f / sqrtf((float)hd);
    const float *q = c->q + (size_t)bi * T * Q + h * hd, *k = c->k + (size_t)bi * T * KV + kh * hd, *v = c->v + (size_t)bi * T * KV + kh * hd;
    float *P = c->att + (size_t)bh * T * T, *out = c->out + (size_t)bi * T * Q + h * hd;
    for (int r0 = 0; r0 < T; r0 += ATT_TB) {
        int r1 = r0 + ATT_TB < T ? r0 + ATT_TB : T;
        bn_sgemm(c->m->k, 0, 1, r1 - r0, r1, hd, q + (size_t)r0 * Q, Q, k, KV, 0, P + (size_t)r0 * T, T, ws);
        for (int t = r0; t < r1; t++) bn_softmax_causal_row(P + (size_t)t * T, t + 1, r1, scale);
        bn_sgemm(c->m->k, 0, 0, r1 - r0, hd, r1, P + (size_t)r0 * T, T, v, KV, 0, out + (size_t)r0 * Q, Q, ws);
    }
}
/* Backward for one (batch, kv head) — all heads of its group, so dk/dv slices are owned:
 * dP = dO V^T; dV += P^T dO; dS = P (dP - rowsum(P dP)) scale; dQ = dS K; dK += dS^T Q.
 * Row blocks run last to first: the last block spans all keys, so it initializes dK/dV rows. */
static void att_bwd_bk(att_ctx *c, int bk, float *ws, float *dP) {
    const bn_config *cf = &c->m->cfg;
    int T = c->m->T, H = cf->n_heads, KH = cf->n_kv_heads, hd = cf->head_dim, grp = H / KH;
    int Q = H * hd, KV = KH * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int bi = bk / KH, kh = bk % KH;
    const float *k = c->k + (size_t)bi * T * KV + kh * hd, *v = c->v + (size_t)bi * T * KV + kh * hd;
    float *dk = c->dk + (size_t)bi * T * KV + kh * hd, *dv = c->dv + (size_t)bi * T * KV + kh * hd;
    int nb = (T + ATT_TB - 1) / ATT_TB;
    for (int g = 0; g < grp; g++) {
        int h = kh * grp + g;
        const float *P = c->att + ((size_t)bi * H + h) * T * T;
        const float *dout = c->dout + (size_t)bi * T * Q + h * hd, *q = c->q + (size_t)bi * T * Q + h * hd;
        float *dq = c->dq + (size_t)bi * T * Q + h * hd;
        for (int ib = nb - 1; ib >= 0; ib--) {
            int r0 = ib * ATT_TB, r1 = r0 + ATT_TB < T ? r0 + ATT_TB : T, mb = r1 - r0;
            int acc = g > 0 || ib < nb - 1;
            const float *Pb = P + (size_t)r0 * T; float *dPb = dP + (size_t)r0 * T;
            bn_sgemm(c->m->k, 0, 1, mb, r1, hd, dout + (size_t)r0 * Q, Q, v, KV, 0, dPb, T, ws);
            bn_sgemm(c->m->k, 1, 0, r1, hd, mb, Pb, T, dout + (size_t)r0 * Q, Q, acc, dv, KV, ws);
            for (int t = r0; t < r1; t++) {
                const float *p = P + (size_t)t * T; float *d = dP + (size_t)t * T;
                dsoftmax_row(d, p, dot2(p, d, t + 1), scale, t + 1);
                if (r1 > t + 1) memset(d + t + 1, 0, (size_t)(r1 - t - 1) * sizeof(float));
            }
            bn_sgemm(c->m->k, 0, 0, mb, hd, r1, dPb, T, k, KV, 0, dq + (size_t)r0 * Q, Q, ws);
            bn_sgemm(c->m->k, 1, 0, r1, hd, mb, dPb, T, q + (size_t)r0 * Q, Q, acc, dk, KV, ws);
        }
    }
}
static void att_run(void *arg, int ith, int nth) {
    att_ctx *c = arg;
    const bn_config *cf = &c->m->cfg;
    int n = c->m->B * (c->bwd ? cf->n_kv_heads : cf->n_heads), a, b;
    bn_split(n, 1, ith, nth, &a, &b);
    for (int i = a; i < b; i++) {
        if (c->bwd) att_bwd_bk(c, i, c->m->ws[ith], c->m->a->dP + (size_t)ith * c->m->T * c->m->T);
        else att_fwd_bh(c, i, c->m->ws[ith]);
    }
}

static void attn_forward(bn_train_model *m, const float *q, const float *k, const float *v, float *att, float *out) {
    att_ctx ac = {m, q, k, v, NULL, att, out, NULL, NULL, NULL, 0};
    bn_pool_run(m->pool, att_run, &ac);
}
static void attn_backward(bn_train_model *m, const float *q, const float *k, const float *v, const float *att,
                          const float *dout, float *dq, float *dk, float *dv) {
    att_ctx ac = {m, q, k, v, dout, (float *)att, NULL, dq, dk, dv, 1};  /* att is only read in backward */
    bn_pool_run(m->pool, att_run, &ac);
}

/* ---------------------------------------------------------------- gated FFN activation */

typedef struct { const float *g, *u, *dh; float *h, *dg, *du; int silu; } act_ctx;
BN_CLONES static void relu2_bwd(const float *gt, const float *u, const float *dh, float *dg, float *du, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float r = gt[i] > 0 ? gt[i] : 0;
        du[i] = dh[i] * r * r;
        dg[i] = dh[i] * u[i] * 2.0f * r;
    }
}
static void act_fwd_range(void *c_, int a, int b) {
    act_ctx *c = c_;
    bn_glu_row(c->h + a, c->g + a, c->u + a, (size_t)(b - a), c->silu);
}
static void act_bwd_range(void *c_, int a, int b) {
    act_ctx *c = c_;
    if (!c->silu) { relu2_bwd(c->g + a, c->u + a, c->dh + a, c->dg + a, c->du + a, b - a); return; }
    for (int i = a; i < b; i++) {
        float g = c->g[i], dh = c->dh[i], u = c->u[i];
        float sg = 1.0f / (1.0f + expf(-g)), f = g * sg;
        c->du[i] = dh * f;
        c->dg[i] = dh * u * (sg * (1.0f + g * (1.0f - sg)));
    }
}

static void glu_forward(bn_train_model *m, const float *g, const float *u, float *h, int n) {
    act_ctx fc = {g, u, NULL, h, NULL, NULL, m->cfg.act == BN_ACT_SILU};
    par_for(m->pool, n, act_fwd_range, &fc);
}
static void glu_backward(bn_train_model *m, const float *g, const float *u, const float *dh, float *dg, float *du, int n) {
    act_ctx fc = {g, u, dh, NULL, dg, du, m->cfg.act == BN_ACT_SILU};
    par_for(m->pool, n, act_bwd_range, &fc);
}

/* ---------------------------------------------------------------- embedding, cross-entropy */

typedef struct { const float *E; const int32_t *ids; float *out; const float *dout; float *dE; int C, N; const bn_tfrozen *fz; } emb_ctx;
static void emb_fwd_range(void *c_, int a, int b) {
    emb_ctx *c = c_;
    for (int r = a; r < b; r++) {
        float *o = c->out + (size_t)r * c->C;
        if (!c->fz) { memcpy(o, c->E + (size_t)c->ids[r] * c->C, (size_t)c->C * sizeof(float)); continue; }
        for (int i = 0; i < c->C; i++) o[i] = bn_wget(c->fz->data, c->fz->wdt, (size_t)c->ids[r] * c->C + i);   /* as loaded */
    }
}
static void emb_bwd_cols(void *c_, int a, int b) {  /* columns a..b of every row: fixed order, no races */
    emb_ctx *c = c_;
    for (int r = 0; r < c->N; r++) {
        float *d = c->dE + (size_t)c->ids[r] * c->C; const float *g = c->dout + (size_t)r * c->C;
        for (int i = a; i < b; i++) d[i] += g[i];
    }
}

typedef struct { float *logits; const int32_t *tg; float *rowloss; int V; float dscale; int bwd; } ce_ctx;
static void ce_range(void *c_, int a, int b) {
    ce_ctx *c = c_;
    int V = c->V;
    for (int r = a; r < b; r++) {
        float *l = c->logits + (size_t)r * V;
        if (c->tg[r] < 0) {   /* an ignored target (a masked position): no loss, no gradient */
            if (c->bwd) memset(l, 0, (size_t)V * sizeof *l); else c->rowloss[r] = 0;
            continue;
        }
        float mx = -INFINITY;
        for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        double sum = 0;
        for (int i = 0; i < V; i++) sum += expf(l[i] - mx);
        if (!c->bwd) { c->rowloss[r] = (float)(log(sum) + mx - l[c->tg[r]]); continue; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < V; i++) l[i] = expf(l[i] - mx) * inv * c->dscale;
        l[c->tg[r]] -= c->dscale;
    }
}

static void embed_forward(bn_train_model *m, int widx, const int32_t *ids, int N, float *x) {
    emb_ctx ec = {P(m, widx), ids, x, NULL, NULL, m->cfg.hidden_size, N, is_fz(m, widx) ? &m->fz[widx] : NULL};
    par_for(m->pool, N, emb_fwd_range, &ec);
}
static void embed_backward(bn_train_model *m, int widx, const int32_t *ids, int N, const float *dx) {
    if (!m->grads) return;   /* frozen base (LoRA) */
    emb_ctx ec = {NULL, ids, NULL, dx, G(m, widx), m->cfg.hidden_size, N, NULL};
    par_for(m->pool, m->cfg.hidden_size, emb_bwd_cols, &ec);
}
static void ce_forward(bn_train_model *m, float *logits, const int32_t *tg, float *rowloss, int N) {
    ce_ctx cc = {logits, tg, rowloss, m->cfg.vocab_size, 0, 0};
    par_for(m->pool, N, ce_range, &cc);
}
static void ce_backward(bn_train_model *m, float *logits, const int32_t *tg, int N, float dscale) {
    ce_ctx cc = {logits, tg, NULL, m->cfg.vocab_size, dscale, 1};
    par_for(m->pool, N, ce_range, &cc);
}

/* logits[N][V] = x[N][C] @ H^T, H = parameter widx ([V][C]). */
static void head_forward(bn_train_model *m, int widx, const float *x, float *logits, int N) {
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    if (is_fz(m, widx)) { fz_gemm_xwt(m, widx, x, logits, N, 0); return; }
    bn_sgemm_mt(m->k, m->pool, m->ws, 0, 1, N, V, C, x, C, P(m, widx), C, 0, logits, V);
}
/* G[widx] += dlogits^T x; dx = dlogits @ H. */
static void head_backward(bn_train_model *m, int widx, const float *dlogits, const float *x, float *dx, int N) {
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    if (m->grads) bn_sgemm_mt(m->k, m->pool, m->ws, 1, 0, V, C, N, dlogits, V, x, C, 1, G(m, widx), C);  /* NULL grads: frozen */
    if (is_fz(m, widx)) fz_gemm_dyw(m, widx, dlogits, dx, N, 0);
    else bn_sgemm_mt(m->k, m->pool, m->ws, 0, 0, N, C, V, dlogits, V, P(m, widx), C, 0, dx, C);
}

/* ---------------------------------------------------------------- memory (host) */
static float *alloc_cpu(bn_train_model *m, size_t n) { return bn_alloc(n * sizeof(float)); }
static void free_cpu(bn_train_model *m, float *p) { bn_free(p); }
static void copy_cpu(bn_train_model *m, float *dst, const float *src, size_t n) { memcpy(dst, src, n * sizeof(float)); }
static void zero_grad_cpu(bn_train_model *m);

static const bn_train_ops CPU_TRAIN = {
    .name = "cpu",
    .rmsnorm_fwd = rmsnorm_forward, .rmsnorm_bwd = rmsnorm_backward,
    .linear_fwd = linear_forward, .linear_bwd = linear_backward, .rope = rope,
    .attn_fwd = attn_forward, .attn_bwd = attn_backward, .glu_fwd = glu_forward, .glu_bwd = glu_backward,
    .embed_fwd = embed_forward, .embed_bwd = embed_backward, .ce_fwd = ce_forward, .ce_bwd = ce_backward,
    .head_fwd = head_forward, .head_bwd = head_backward,
    .alloc = alloc_cpu, .free = free_cpu, .copy = copy_cpu, .wquant = quantize_weights, .zero_grad = zero_grad_cpu,
};
const bn_train_ops *bn_train_ops_cpu(void) { return &CPU_TRAIN; }

/* ---------------------------------------------------------------- forward / backward */

/* BitLinear widx: y (=, or += when acc) BitLinear(xq) [BT, out], then the LoRA term (lora.h)
 * on xf, the float input (PEFT's lora_A input: the norm output before the activation
 * quantizer; xq is its int8 quantization, dequantized, or xf itself in no_quant mode). */
static void lin_fwd(bn_train_model *m, const float *xq, const float *xf, int widx, float *y, int BT, int acc) {
    m->ops->linear_fwd(m, xq, widx, y, BT, acc);
    if (m->lora) bn_lora_forward(m, widx, xf, y, BT);
}
/* Its backward: dx (=, or += when acc) dy W_deq (STE through the quantizer) + the LoRA branch's
 * exact d/dxf (the quantizer's STE makes d/dxq = d/dxf, so both add into one dx). */
static void lin_bwd(bn_train_model *m, const float *dy, const float *xq, const float *xf, int widx, float *dx, int BT, int acc) {
    m->ops->linear_bwd(m, dy, xq, widx, dx, BT, acc);
    if (m->lora) bn_lora_backward(m, widx, dy, xf, dx, BT);
}
/* The float input [BT, D] of the LoRA branches of BitLinears w0..w2 (-1: unused) for backward:
 * rmsnorm(x) * P(wnorm) recomputed into a->fx by the forward's own call (bit for bit the values
 * the forward's branch read); xq itself in no_quant mode; NULL when none of them has an adapter. */
static const float *lora_xf(bn_train_model *m, const float *x, int wnorm, const float *xq, int D, int w0, int w1, int w2) {
    const bn_lora *lo = m->lora;
    if (!lo || (lo->ad_of[w0] < 0 && (w1 < 0 || lo->ad_of[w1] < 0) && (w2 < 0 || lo->ad_of[w2] < 0))) return NULL;
    if (m->no_quant) return xq;
    m->ops->rmsnorm_fwd(m, x, P(m, wnorm), m->a->fx, m->a->fxr, NULL, m->B * m->T, D);
    return m->a->fx;
}

/* Layer l's forward: from a->l[l].resid to the next layer's input (a->out after the last),
 * keeping what its backward needs in a->l[l] (with checkpointing: in the one shared set). */
static void layer_forward(bn_train_model *m, int l) {
    const bn_config *c = &m->cfg;
    struct bn_tacts *a = m->a;
    const bn_train_ops *op = m->ops;
    int BT = m->B * m->T, C = c->hidden_size, Q = c->n_heads * c->head_dim, I = c->intermediate_size;
    bn_tlayer *W = &m->L[l]; bn_tlacts *L = &a->l[l];
    float *next = l + 1 < c->n_layers ? a->l[l + 1].resid : a->out;
    int nq = m->no_quant;
    const float *xf = nq ? NULL : a->tmp;   /* the float norm output, read by the LoRA branches */
    op->rmsnorm_fwd(m, L->resid, P(m, W->in_norm), nq ? L->x_in : a->tmp, L->rstd_in, nq ? NULL : L->x_in, BT, C);
    lin_fwd(m, L->x_in, nq ? L->x_in : xf, W->q, L->q, BT, 0);
    lin_fwd(m, L->x_in, nq ? L->x_in : xf, W->k, L->k, BT, 0);
    lin_fwd(m, L->x_in, nq ? L->x_in : xf, W->v, L->v, BT, 0);
    op->rope(m, L->q, BT, c->n_heads, 0);
    op->rope(m, L->k, BT, c->n_kv_heads, 0);
    op->attn_fwd(m, L->q, L->k, L->v, L->att, L->atto);
    op->rmsnorm_fwd(m, L->atto, P(m, W->attn_sub), nq ? L->x_as : a->tmp, L->rstd_as, nq ? NULL : L->x_as, BT, Q);
    op->copy(m, L->mid, L->resid, (size_t)BT * C);
    lin_fwd(m, L->x_as, nq ? L->x_as : xf, W->o, L->mid, BT, 1);
    op->rmsnorm_fwd(m, L->mid, P(m, W->post_norm), nq ? L->x_post : a->tmp, L->rstd_post, nq ? NULL : L->x_post, BT, C);
    lin_fwd(m, L->x_post, nq ? L->x_post : xf, W->gate, L->gate, BT, 0);
    lin_fwd(m, L->x_post, nq ? L->x_post : xf, W->up, L->up, BT, 0);
    op->glu_fwd(m, L->gate, L->up, L->hmul, BT * I);
    op->rmsnorm_fwd(m, L->hmul, P(m, W->ffn_sub), nq ? L->x_fs : a->tmp, L->rstd_fs, nq ? NULL : L->x_fs, BT, I);
    op->copy(m, next, L->mid, (size_t)BT * C);
    lin_fwd(m, L->x_fs, nq ? L->x_fs : xf, W->down, next, BT, 1);
}

bitnet_status bn_train_forward(bn_train_model *m, const int32_t *inputs, const int32_t *targets, int B, int T, float *loss) {
    const bn_config *c = &m->cfg;
    if (B < 1 || T < 1) return bn_err(BITNET_ERR_ARG, "batch %d x seq %d: both must be >= 1", B, T);
    if ((int64_t)B * T > INT32_MAX) return bn_err(BITNET_ERR_ARG, "batch %d x seq %d = %lld tokens is more than %d per forward", B, T, (long long)B * T, INT32_MAX);
    int BT = B * T;
    for (int i = 0; i < BT; i++) {
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size) return bn_err(BITNET_ERR_ARG, "input id %d at position %d is outside the vocabulary (%d)", inputs[i], i, c->vocab_size);
        if (targets && targets[i] >= c->vocab_size) return bn_err(BITNET_ERR_ARG, "target id %d at position %d is outside the vocabulary (%d)", targets[i], i, c->vocab_size);
    }
    bitnet_status s = ensure_acts(m, B, T);
    if (!s && m->lora) s = bn_lora_reserve(m->lora, BT);
    if (!s) s = fz_reserve(m, BT);
    if (s) return s;
    struct bn_tacts *a = m->a;
    int C = c->hidden_size;
    const bn_train_ops *op = m->ops;
    op->wquant(m);
    m->have_targets = targets != NULL;
    if (targets) memcpy(m->targets, targets, (size_t)BT * sizeof *targets);
    memcpy(a->inputs, inputs, (size_t)BT * sizeof *inputs);
    op->embed_fwd(m, m->embed, inputs, BT, a->l[0].resid);
    for (int l = 0; l < c->n_layers; l++) layer_forward(m, l);
    op->rmsnorm_fwd(m, a->out, P(m, m->final_norm), a->xf, a->rstd_f, NULL, BT, C);
    int hi = m->head >= 0 ? m->head : m->embed;
    op->head_fwd(m, hi, a->xf, a->logits, BT);
    if (targets) {
        op->ce_fwd(m, a->logits, targets, a->rowbuf, BT);
        if (op->status && (s = op->status(m))) return s;
        double sum = 0;
        int nv = 0;
        for (int i = 0; i < BT; i++) { sum += a->rowbuf[i]; nv += targets[i] >= 0; }
        m->n_targets = nv;
        m->loss = nv ? (float)(sum / nv) : 0.0f;
        if (loss) *loss = m->loss;
        if (!isfinite(m->loss)) return bn_err(BITNET_ERR_NUMERIC, "loss is %g (not finite)", m->loss);
    }
    return op->status ? op->status(m) : BITNET_OK;
}

const float *bn_train_logits(const bn_train_model *m) { return m->a ? m->a->logits : NULL; }

/* Layer l's backward: a->d_res holds d(next layer's input) on entry and d(a->l[l].resid) on exit. */
static void layer_backward(bn_train_model *m, int l) {
    const bn_config *c = &m->cfg;
    struct bn_tacts *a = m->a;
    const bn_train_ops *op = m->ops;
    int BT = m->B * m->T, C = c->hidden_size, Q = c->n_heads * c->head_dim, I = c->intermediate_size;
    bn_tlayer *W = &m->L[l]; bn_tlacts *L = &a->l[l];
    /* FFN: next = mid + down(x_fs) */
    const float *xf = lora_xf(m, L->hmul, W->ffn_sub, L->x_fs, I, W->down, -1, -1);
    lin_bwd(m, a->d_res, L->x_fs, xf, W->down, a->d_a, BT, 0);           /* d_a = d x_fs [BT, I] */
    op->rmsnorm_bwd(m, a->d_a, L->hmul, P(m, W->ffn_sub), L->rstd_fs, a->d_b, G(m, W->ffn_sub), BT, I, 0); /* d_b = d hmul */
    op->glu_bwd(m, L->gate, L->up, a->d_b, a->d_a, a->tmp, BT * I);  /* d_a = d gate, tmp = d up */
    xf = lora_xf(m, L->mid, W->post_norm, L->x_post, C, W->gate, W->up, -1);
    lin_bwd(m, a->d_a, L->x_post, xf, W->gate, a->d_b, BT, 0);          /* d_b = d x_post [BT, C] */
    lin_bwd(m, a->tmp, L->x_post, xf, W->up, a->d_b, BT, 1);
    op->rmsnorm_bwd(m, a->d_b, L->mid, P(m, W->post_norm), L->rstd_post, a->d_res, G(m, W->post_norm), BT, C, 1);
    /* attention: mid = resid + o(x_as) */
    xf = lora_xf(m, L->atto, W->attn_sub, L->x_as, Q, W->o, -1, -1);
    lin_bwd(m, a->d_res, L->x_as, xf, W->o, a->d_a, BT, 0);             /* d_a = d x_as [BT, Q] */
    op->rmsnorm_bwd(m, a->d_a, L->atto, P(m, W->attn_sub), L->rstd_as, a->d_b, G(m, W->attn_sub), BT, Q, 0); /* d_b = d atto */
    op->attn_bwd(m, L->q, L->k, L->v, L->att, a->d_b, a->d_q, a->d_k, a->d_v);
    op->rope(m, a->d_q, BT, c->n_heads, 1);
    op->rope(m, a->d_k, BT, c->n_kv_heads, 1);
    xf = lora_xf(m, L->resid, W->in_norm, L->x_in, C, W->q, W->k, W->v);
    lin_bwd(m, a->d_q, L->x_in, xf, W->q, a->d_a, BT, 0);               /* d_a = d x_in [BT, C] */
    lin_bwd(m, a->d_k, L->x_in, xf, W->k, a->d_a, BT, 1);
    lin_bwd(m, a->d_v, L->x_in, xf, W->v, a->d_a, BT, 1);
    op->rmsnorm_bwd(m, a->d_a, L->resid, P(m, W->in_norm), L->rstd_in, a->d_res, G(m, W->in_norm), BT, C, 1);
}

bitnet_status bn_train_backward(bn_train_model *m, float grad_scale) {
    if (!m->a || !m->have_targets) return bn_err(BITNET_ERR_ARG, "backward needs a forward with targets first");
    const bn_config *c = &m->cfg;
    struct bn_tacts *a = m->a;
    int B = m->B, T = m->T, BT = B * T;
    int C = c->hidden_size;
    m->have_targets = 0;   /* logits are overwritten below */
    /* cross-entropy: dlogits = (softmax - onehot) * grad_scale / n_targets, in place (0 rows
     * at ignored targets) */
    const bn_train_ops *op = m->ops;
    op->ce_bwd(m, a->logits, m->targets, BT, m->n_targets ? grad_scale / (float)m->n_targets : 0.0f);
    /* head: logits = xf @ H^T */
    int hi = m->head >= 0 ? m->head : m->embed;
    op->head_bwd(m, hi, a->logits, a->xf, a->d_a, BT);
    op->rmsnorm_bwd(m, a->d_a, a->out, P(m, m->final_norm), a->rstd_f, a->d_res, G(m, m->final_norm), BT, C, 0);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        if (m->grad_ckpt && l < c->n_layers - 1) layer_forward(m, l);   /* recompute (the last layer's set is still there) */
        layer_backward(m, l);
    }
    op->embed_bwd(m, m->embed, a->inputs, BT, a->d_res);
    return op->status ? op->status(m) : BITNET_OK;
}

typedef struct { float *p; size_t n; } zero_ctx;
static void zero_range(void *c_, int a, int b) {
    zero_ctx *c = c_;
    size_t lo = c->n * (size_t)a / 64, hi = c->n * (size_t)b / 64;
    memset(c->p + lo, 0, (hi - lo) * sizeof(float));
}
static void zero_grad_cpu(bn_train_model *m) {
    zero_ctx c = {m->grads, m->n_params};
    par_for(m->pool, 64, zero_range, &c);   /* 64 slices split over the threads */
}
void bn_train_zero_grad(bn_train_model *m) {
    if (m->lora) bn_lora_zero_grad(m->lora);
    if (!m->grads) return;
    m->ops->zero_grad(m);
}

static bitnet_status save_tensors(const bn_train_model *m, const float *buf, const char *path) {
    if (m->fz || !buf) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: a frozen base has no float master weights or gradients to save (save the adapters)", path);
    bn_st_writer *w;
    bitnet_status s = bn_st_writer_new(&w);
    if (s) return s;
    for (int i = 0; i < m->n_tp && !s; i++)
        s = bn_st_writer_add(w, m->tp[i].name, BN_F32, m->tp[i].ndim, m->tp[i].shape, buf + m->tp[i].off);
    if (!s) s = bn_st_writer_save(w, path);
    bn_st_writer_free(w);
    return s;
}

bitnet_status bn_train_save_weights(const bn_train_model *m, const char *dir) {
    char *cp = bn_path_join(dir, "config.json"), *mp = bn_path_join(dir, "model.safetensors");
    bitnet_status s = (!cp || !mp) ? bn_err(BITNET_ERR_NOMEM, "out of memory") : BITNET_OK;
    if (!s) s = save_tensors(m, m->params, mp);
    bn_config c = m->cfg;
    c.full_precision = m->no_quant;   /* label --no-quant weights as what they are */
    if (!s) s = bn_config_save(&c, cp, 0);
    free(cp); free(mp);
    return s;
}

bitnet_status bn_train_save_grads(const bn_train_model *m, const char *path) { return save_tensors(m, m->grads, path); }

double bn_train_flops_per_token(const bn_train_model *m) {
    double n = 0;
    for (int i = 0; i < m->n_tp; i++)
        if (m->tp[i].kind == BN_PK_LINEAR || m->tp[i].kind == BN_PK_HEAD) n += (double)m->tp[i].numel;
    if (m->head < 0) n += (double)m->tp[m->embed].numel;   /* tied head is a matmul too */
    return 6.0 * n;
}
