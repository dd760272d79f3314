/* optim.c — AdamW, gradient norm/clipping and LR schedules (see optim.h). Never prints. */
#include "optim.h"
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

typedef struct { float *p; const float *g; float *m, *v; size_t n; float lr, b1, b2, eps, wd; double bc1, bc2s; } adam_job;

static void adam_run(void *arg, int ith, int nth) {
    adam_job *j = arg;
    size_t a = j->n * ith / nth, b = j->n * (ith + 1) / nth;
    const float decay = 1.0f - j->lr * j->wd;
    const float step_size = (float)(j->lr / j->bc1);
    const float bc2s = (float)j->bc2s;
    const float omb1 = 1.0f - j->b1, omb2 = 1.0f - j->b2;
    for (size_t i = a; i < b; i++) {
        float g = j->g[i];
        float p = j->p[i];
        if (j->wd != 0.0f) p *= decay;
        float m = j->m[i] + (g - j->m[i]) * omb1;
        float v = j->v[i] * j->b2 + omb2 * g * g;
        float denom = sqrtf(v) / bc2s + j->eps;
        p += (-step_size * m) / denom;  /* torch addcdiv: p + value * m / denom */
        j->p[i] = p; j->m[i] = m; j->v[i] = v;
    }
}

void bn_adamw_update(bn_pool *pool, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int64_t t) {
    adam_job j = {p, g, m, v, n, lr, beta1, beta2, eps, wd,
                  1.0 - pow((double)beta1, (double)t), sqrt(1.0 - pow((double)beta2, (double)t))};
    if (n < 65536 || bn_pool_size(pool) == 1) adam_run(&j, 0, 1);
    else bn_pool_run(pool, adam_run, &j);
}

double bn_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

void bn_grad_scale(float *g, size_t n, float s) { for (size_t i = 0; i < n; i++) g[i] *= s; }

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
