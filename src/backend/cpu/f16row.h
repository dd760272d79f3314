/* f16row.h — rows of IEEE binary16 values (the f16 KV cache of the CPU backend, cpu.c): convert
 * to and from float, dot product and axpy with a float vector. All arithmetic is float.
 * Two implementations: scalar C (the spec: bn_f16_to_f32 / bn_f32_to_f16 of core/util.h, round
 * to nearest even) and F16C + FMA (x86-64, 8 values per instruction), picked by kernel set name:
 * the avx2 and avx512* sets (which require F16C) get F16C, every other set the scalar one.
 * Conversions are bit-identical between the two; dot/axpy differ only in summation order.
 * Not: a general half-precision library (no f16 arithmetic). */
#ifndef BITNET_F16ROW_H
#define BITNET_F16ROW_H
#include <stdint.h>

typedef struct bn_f16row {
    const char *name;                                        /* "c" or "f16c" */
    void (*to_f32)(float *d, const uint16_t *s, int n);      /* d[i] = f32(s[i]), exact */
    void (*to_f16)(uint16_t *d, const float *s, int n);      /* d[i] = f16(s[i]), nearest even */
    float (*dot)(const float *a, const uint16_t *b, int n);  /* sum a[i] * f32(b[i]) */
    void (*axpy)(float *y, float a, const uint16_t *b, int n); /* y[i] += a * f32(b[i]) */
} bn_f16row;

/* The row functions for kernel set `kernels` (a bn_kernels name). */
bn_f16row bn_f16row_for(const char *kernels);
/* The scalar set, and the F16C set (NULL when not built for x86-64 or the CPU lacks F16C/FMA/AVX2). */
const bn_f16row *bn_f16row_c(void);
const bn_f16row *bn_f16row_f16c(void);
#endif
