/* layers.h — the row-level layer math shared by training (train.c) and CPU inference (model.c,
 * once switched): RMSNorm of one row, the RoPE cos/sin tables, the causal softmax of one
 * attention row. Each is one definition, so both paths compute bit-identical values.
 * Not: threading or batching (callers split rows), not backward passes (train.c). */
#ifndef BITNET_LAYERS_H
#define BITNET_LAYERS_H

/* sum x[i]^2 over n (vectorized reduction: a fixed order for a given build and CPU). */
float bn_sumsq(const float *x, int n);
/* y[i] = w[i] * (x[i] * rs). y may equal x. */
void bn_scale_mul(float *y, const float *x, const float *w, float rs, int n);
/* RMSNorm of one row: y = w * (x * rs), rs = 1 / sqrt(sum x^2 / n + eps). Returns rs.
 * y may equal x. */
float bn_rmsnorm_row(float *y, const float *x, const float *w, int n, float eps);
/* RoPE (rotate-half) tables as transformers computes them: inv_freq[i] = 1 / theta^(2i/hd) in
 * float32, angle = pos * inv_freq[i]; cs[pos*hd/2 + i] = cos(angle), sn[...] = sin(angle) for
 * pos in [0, n_pos), i in [0, hd/2). */
void bn_rope_tables(float theta, int hd, int n_pos, float *cs, float *sn);
/* Softmax of p[0..n) after scaling by scale, in place: p = exp(p*scale - max) / sum.
 * (The causal mask is the caller's: n = the number of visible keys.) */
void bn_softmax_row(float *p, int n, float scale);
#endif
