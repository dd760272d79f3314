/* optim.c — AdamW, gradient norm/clipping and LR schedules (see optim.h). Never prints. */
#include "train/optim.h"
#include <math.h>

void bn_optim_cfg_default(bn_optim_cfg *c) {
    memset(c, 0, sizeof *c);
    c->lr = 1e-3f; c->beta1 = 0.9f; c->beta2 = 0.95f; c->eps = 1e-8f; c->wd = 0.1f; c->clip = 1.0f;
    c->sched = BN_LR_CONSTANT; c->warmup = 0; c->total_steps = 1;
    c->min_lr_frac = 0.1f; c->stage2_frac = 0.1f;
}

static double cosdecay(double hi, double lo, double p) {
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    return lo + (hi - lo) * 0.5 * (1.0 + cos(M_PI * p));
}

void bn_optim_schedule(const bn_optim_cfg *c, int64_t s, float *lr, float *wd) {
    double L = c->lr, r;
    int w = c->warmup > 0 ? c->warmup : 0;
    int64_t S = c->total_steps > 0 ? c->total_steps : 1;
    *wd = c->wd;
    if (c->sched == BN_LR_TWO_STAGE) {
        int64_t S1 = S / 2;
        if (s < S1 || S1 == 0) {
            r = s < w ? L * (double)(s + 1) / w : cosdecay(L, 0.5 * L, (double)(s - w) / (double)(S1 - w > 1 ? S1 - w : 1));
        } else {
            double L2 = L * c->stage2_frac;
            r = cosdecay(L2, L2 * c->min_lr_frac, (double)(s - S1) / (double)(S - S1 > 1 ? S - S1 : 1));
            *wd = 0.0f;
        }
    } else if (s < w) {
        r = L * (double)(s + 1) / w;
    } else if (c->sched == BN_LR_COSINE) {
        r = cosdecay(L, L * c->min_lr_frac, (double)(s - w) / (double)(S - w > 1 ? S - w : 1));
    } else r = L;
    *lr = (float)r;
}

typedef struct { bn_adam_fn fn; float *p; const float *g; float *m, *v; size_t n; float lr, b1, b2, eps, wd; double bc1, bc2s; } adam_job;

static void adam_run(void *arg, int ith, int nth) {
    adam_job *j = arg;
    size_t a = j->n * ith / nth, b = j->n * (ith + 1) / nth;
    const float decay = j->wd != 0.0f ? 1.0f - j->lr * j->wd : 1.0f;
    const float step_size = (float)(j->lr / j->bc1);
    j->fn(j->p + a, j->g + a, j->m + a, j->v + a, b - a, decay, step_size, (float)j->bc2s,
          1.0f - j->b1, j->b2, 1.0f - j->b2, j->eps);
}

void bn_adamw_update(const bn_kernels *k, bn_pool *pool, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int64_t t) {
    adam_job j = {k->adam, p, g, m, v, n, lr, beta1, beta2, eps, wd,
                  1.0 - pow((double)beta1, (double)t), sqrt(1.0 - pow((double)beta2, (double)t))};
    if (n < 65536 || bn_pool_size(pool) == 1) adam_run(&j, 0, 1);
    else bn_pool_run(pool, adam_run, &j);
}

#define NORM_CHUNK 65536   /* fixed chunks: the sum order does not depend on the thread count */

BN_CLONES static double sumsq_d(const float *g, size_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}
BN_CLONES static void scale_f(float *g, size_t n, float s) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

typedef struct { float *g; size_t n; double *part; float s; } norm_job;
static void norm_run(void *arg, int ith, int nth) {
    norm_job *j = arg;
    size_t nc = (j->n + NORM_CHUNK - 1) / NORM_CHUNK;
    for (size_t c = nc * ith / nth; c < nc * (ith + 1) / nth; c++) {
        size_t a = c * NORM_CHUNK, b = a + NORM_CHUNK < j->n ? a + NORM_CHUNK : j->n;
        if (j->part) j->part[c] = sumsq_d(j->g + a, b - a);
        else scale_f(j->g + a, b - a, j->s);
    }
}

double bn_grad_norm(bn_pool *pool, const float *g, size_t n) {
    size_t nc = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double stack[256], *part = nc <= 256 ? stack : malloc(nc * sizeof *part);
    if (!part) { double s = 0; for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i]; return sqrt(s); }
    norm_job j = {(float *)g, n, part, 0};
    if (pool && bn_pool_size(pool) > 1 && nc > 1) bn_pool_run(pool, norm_run, &j);
    else norm_run(&j, 0, 1);
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    if (part != stack) free(part);
    return sqrt(s);
}

void bn_grad_scale(bn_pool *pool, float *g, size_t n, float s) {
    norm_job j = {g, n, NULL, s};
    if (pool && bn_pool_size(pool) > 1 && n > NORM_CHUNK) bn_pool_run(pool, norm_run, &j);
    else norm_run(&j, 0, 1);
}

int bn_lr_sched_parse(const char *name, bn_lr_sched *out) {
    if (!strcmp(name, "constant")) *out = BN_LR_CONSTANT;
    else if (!strcmp(name, "cosine")) *out = BN_LR_COSINE;
    else if (!strcmp(name, "two-stage")) *out = BN_LR_TWO_STAGE;
    else return 0;
    return 1;
}

const char *bn_lr_sched_name(bn_lr_sched s) {
    return s == BN_LR_COSINE ? "cosine" : s == BN_LR_TWO_STAGE ? "two-stage" : "constant";
}
