/* ternary.h — the one ternary codec of bitnet.c: how BitNet b1.58 weights and BitLinear inputs
 * are quantized, how the 2B-4T checkpoint packs ternary values, and how a stored weight scale
 * is applied. The loader, the trainer and the exporter all call these; the kernels (kernels/)
 * implement the same activation formula in their own vector code.
 * Not: the kernels' packed layouts (kernels.h), which are private to each kernel set. */
#ifndef BITNET_TERNARY_H
#define BITNET_TERNARY_H
#include "io/config.h"
#include <math.h>

/* ---- weights: absmean per tensor (BitNet b1.58) ----
 * g = 1 / max(mean|w|, 1e-5);  q = clamp(rint(w g), -1, 1);  W ~ q / g = q * scale. */
#define BN_TERNARY_MIN_MEAN 1e-5f
/* One weight's ternary value as a float in {-1, 0, 1}, for inverse scale g. */
static inline float bn_ternary_q(float w, float g) {
    float r = rintf(w * g);
    return r > 1.f ? 1.f : r < -1.f ? -1.f : r;
}
/* Ternarize w[n] (absmean per tensor): q[i] = bn_ternary_q(w[i], 1/scale) (skipped when q is
 * NULL). Returns scale = max(mean|w|, 1e-5), the dequantization scale (W ~ q * scale). */
float bn_ternarize(const float *w, int64_t n, int8_t *q);

/* ---- BitLinear input: absmax int8 per token ----
 * s = 127 / max(max|x|, 1e-5) (NaN max -> 1e-5);  xq = clamp(rint(x s), -128, 127). */
static inline float bn_act_scale(float absmax) {
    if (!(absmax >= 1e-5f)) absmax = 1e-5f;
    return 127.0f / absmax;
}
static inline float bn_act_q(float x, float s) {
    float q = rintf(x * s);
    return q > 127 ? 127 : q < -128 ? -128 : q;
}

/* ---- the 2B-4T packed layout ----
 * uint8[rows/4, cols]: byte [r, c] holds the values of rows r + k*(rows/4), k = 0..3, in bits
 * 2k..2k+1, each as value + 1 (code 3 is invalid). The tensor "<prefix>.weight" comes with a
 * one-element float "<prefix>.weight_scale". rows % 4 == 0. */
/* Unpack into int8[rows, cols] in {-1,0,1}; returns -1 if a code 3 appears, else 0. */
int bn_unpack_2b4t(const uint8_t *p, int rows, int cols, int8_t *q);
/* Pack int8[rows, cols] (values in {-1,0,1}) into uint8[rows/4, cols]. */
void bn_pack_2b4t(const int8_t *q, int rows, int cols, uint8_t *p);

/* ---- weight scale conventions ----
 * A layer computes y = (W_q . x_q) / s_act * mult. The stored weight_scale ws is applied as
 * mult = ws under autobitlinear (transformers' AutoBitLinear, what export writes) and
 * mult = 1 / ws under bitlinear. A multiplier above BN_SCALE_MAX (or not finite, or <= 0)
 * is rejected: with it a layer's outputs overflow float for ordinary activations. */
#define BN_SCALE_MAX 1.8446744e19f   /* 2^64 */
/* The multiplier for stored scale ws; BITNET_ERR_FORMAT (message: "<what> = <ws> ...") if it
 * is not a usable scale. what names the file and tensor. */
bitnet_status bn_scale_multiplier(float ws, bn_linear_class lc, const char *what, float *mult);
/* Check a multiplier derived from master weights (mean|W|); same rule. */
bitnet_status bn_scale_check(float mult, const char *what);
#endif
