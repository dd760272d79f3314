/* f16row.c — f16 row functions (f16row.h): scalar C and F16C + FMA. */
#include "backend/cpu/f16row.h"
#include "core/util.h"
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <cpuid.h>
#define BN_HAVE_F16C 1
#endif

/* h2f/f2h: n values between f16 and float, f2h rounding to nearest even (vcvtps2ph with imm 0
 * is IEEE round-to-nearest-even: the same bits as bn_f32_to_f16, tests/test_f16row.c checks);
 * dot_h = sum a[i] * b[i], axpy_h: y[i] += a * b[i]. _x: F16C, 8 (dot: 16) at a time. */
static void h2f_c(float *d, const uint16_t *s, int n) { for (int i = 0; i < n; i++) d[i] = bn_f16_to_f32(s[i]); }
static void f2h_c(uint16_t *d, const float *s, int n) { for (int i = 0; i < n; i++) d[i] = bn_f32_to_f16(s[i]); }
static float dot_h_c(const float *a, const uint16_t *b, int n) {
    float d = 0.f;
    for (int i = 0; i < n; i++) d += a[i] * bn_f16_to_f32(b[i]);
    return d;
}
static void axpy_h_c(float *y, float a, const uint16_t *b, int n) { for (int i = 0; i < n; i++) y[i] += a * bn_f16_to_f32(b[i]); }
#ifdef BN_HAVE_F16C
#define F16C_FN __attribute__((target("avx2,fma,f16c")))
F16C_FN static void h2f_x(float *d, const uint16_t *s, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = _cvtsh_ss(s[i]);
}
F16C_FN static void f2h_x(uint16_t *d, const float *s, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = _cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT);
}
F16C_FN static float dot_h_x(const float *a, const uint16_t *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8))), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float d = _mm_cvtss_f32(h);
    for (; i < n; i++) d += a[i] * _cvtsh_ss(b[i]);
    return d;
}
F16C_FN static void axpy_h_x(float *y, float a, const uint16_t *b, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * _cvtsh_ss(b[i]);
}
#endif

static const bn_f16row C_ROWS = {"c", h2f_c, f2h_c, dot_h_c, axpy_h_c};
const bn_f16row *bn_f16row_c(void) { return &C_ROWS; }
#ifdef BN_HAVE_F16C
static const bn_f16row X_ROWS = {"f16c", h2f_x, f2h_x, dot_h_x, axpy_h_x};
/* F16C from cpuid leaf 1 (ecx bit 29): clang's __builtin_cpu_supports has no "f16c". */
static int has_f16c(void) { unsigned a, b, c, d; return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u); }
const bn_f16row *bn_f16row_f16c(void) {
    __builtin_cpu_init();
    return has_f16c() && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2") ? &X_ROWS : NULL;
}
#else
const bn_f16row *bn_f16row_f16c(void) { return NULL; }
#endif

bn_f16row bn_f16row_for(const char *kernels) {
    const bn_f16row *x = bn_f16row_f16c();
    return x && kernels && !strncmp(kernels, "avx", 3) ? *x : C_ROWS;
}
