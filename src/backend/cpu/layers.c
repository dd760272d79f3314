/* layers.c — row-level layer math shared by training and inference (see layers.h).
 * Loops carry `omp simd` (-fopenmp-simd, no OpenMP runtime); on x86-64 Linux the reductions
 * are also built for AVX2 and AVX-512 (target_clones, picked at load time), exactly as train.c's
 * and model.c's private copies were, so results are unchanged. */
#include "backend/cpu/layers.h"
#include "backend/cpu/kernels/kernels.h"   /* BN_CLONES */
#include <math.h>
#include <stddef.h>

BN_CLONES float bn_sumsq(const float *x, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

BN_CLONES void bn_scale_mul(float *y, const float *x, const float *w, float rs, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] = w[i] * (x[i] * rs);
}

float bn_rmsnorm_row(float *y, const float *x, const float *w, int n, float eps) {
    float rs = 1.0f / sqrtf(bn_sumsq(x, n) / (float)n + eps);
    bn_scale_mul(y, x, w, rs, n);
    return rs;
}

void bn_rope_tables(float theta, int hd, int n_pos, float *cs, float *sn) {
    int h2 = hd / 2;
    for (int i = 0; i < h2; i++) {
        float inv = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
        for (int t = 0; t < n_pos; t++) {
            float f = (float)t * inv;
            cs[(size_t)t * h2 + i] = cosf(f); sn[(size_t)t * h2 + i] = sinf(f);
        }
    }
}

/* p *= scale; returns max p */
BN_CLONES static float scale_max(float *p, float scale, int n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) { p[j] *= scale; mx = p[j] > mx ? p[j] : mx; }
    return mx;
}
BN_CLONES static void scale_row(float *p, float s, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) p[j] *= s;
}

void bn_softmax_row(float *p, int n, float scale) {
    float sum = 0, mx = scale_max(p, scale, n);
    for (int j = 0; j < n; j++) { p[j] = expf(p[j] - mx); sum += p[j]; }
    scale_row(p, 1.0f / sum, n);
}
