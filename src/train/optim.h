/* optim.h — AdamW (exactly torch.optim.AdamW's arithmetic), global-norm gradient clipping and
 * learning-rate / weight-decay schedules for training.
 *
 * AdamW step t (1-based), per element, in float32 as torch's single-tensor path does it:
 *     p -= lr * wd * p                       (decoupled weight decay, before the Adam update)
 *     m += (g - m) * (1 - beta1)             (torch's lerp)
 *     v  = v * beta2 + (1 - beta2) * g * g
 *     p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * Schedules (step s = 0-based optimizer step, S = total steps, w = warmup steps):
 *   constant:  lr_s = lr * min(1, (s+1)/w)
 *   cosine:    warmup as above, then lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2,
 *              p = (s - w) / max(1, S - w), lr_min = lr * min_lr_frac
 *   two-stage: (BitNet b1.58, arXiv 2402.17764 FAQ / 2504.12285) with S1 = S / 2:
 *              stage 1 (s < S1): warmup, then cosine from lr down to lr * 0.5 at S1; wd as given
 *              stage 2 (s >= S1): the LR drops to lr2 = lr * stage2_frac and cosine-decays from
 *              lr2 to lr2 * min_lr_frac at S; weight decay is 0.
 * Not: a general optimizer library (no momentum SGD, no per-parameter groups beyond decay on/off). */
#ifndef BITNET_OPTIM_H
#define BITNET_OPTIM_H
#include "core/threads.h"
#include "backend/cpu/kernels/kernels.h"

typedef enum { BN_LR_CONSTANT = 0, BN_LR_COSINE = 1, BN_LR_TWO_STAGE = 2 } bn_lr_sched;

typedef struct bn_optim_cfg {
    float lr, beta1, beta2, eps, wd, clip;   /* clip <= 0: no clipping */
    bn_lr_sched sched;
    int warmup;                              /* steps of linear warmup (0: none) */
    int total_steps;
    float min_lr_frac;                       /* cosine floor as a fraction of the peak (default 0.1) */
    float stage2_frac;                       /* two-stage: stage-2 LR as a fraction of lr (default 0.1) */
} bn_optim_cfg;

/* Defaults: lr 1e-3, betas 0.9/0.95, eps 1e-8, wd 0.1, clip 1, constant, no warmup. */
void bn_optim_cfg_default(bn_optim_cfg *c);
/* LR and weight decay for 0-based step s. */
void bn_optim_schedule(const bn_optim_cfg *c, int64_t s, float *lr, float *wd);
/* One AdamW update of n elements; t is the 1-based step count. wd is applied as given (pass 0 for
 * parameters without decay). Split over the pool; the row kernel is k->adam (every set gives
 * the same bits). */
void bn_adamw_update(const bn_kernels *k, bn_pool *pool, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float beta1, float beta2, float eps, float wd, int64_t t);
/* Global L2 norm of g[n]: double sums over fixed 64k-element chunks, added in order, so the
 * result does not depend on the thread count. Split over the pool (may be NULL). */
double bn_grad_norm(bn_pool *pool, const float *g, size_t n);
/* g *= s, split over the pool (may be NULL). */
void bn_grad_scale(bn_pool *pool, float *g, size_t n, float s);
/* "constant" / "cosine" / "two-stage" -> sched; returns 0 on an unknown name. */
int bn_lr_sched_parse(const char *name, bn_lr_sched *out);
const char *bn_lr_sched_name(bn_lr_sched s);
#endif
