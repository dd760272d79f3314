/* ref.c — the scalar reference kernels: the spec every fast path is tested against, plus the
 * pieces every set shares (the i16 and b3 layouts' packs, the head formats, the C GEMM
 * micro-kernel, the AdamW rows), and "ref-b3", the scalar decode of the b3 layout. Plain loops, no intrinsics, no tricks. See kernels.h for the contracts. */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <float.h>
#include <math.h>

size_t bn_ref_packed_size(int rows, int cols) { return (size_t)rows * (size_t)(bn_kpad(cols) / 4); }

void bn_ref_pack(const int8_t *w, int rows, int cols, uint8_t *dst) {
    int kp = bn_kpad(cols), rb = kp / 4;
    for (int r = 0; r < rows; r++) {
        uint8_t *d = dst + (size_t)r * rb;
        memset(d, 0x55, (size_t)rb); /* every code 1 = zero */
        for (int k = 0; k < cols; k++) {
            int code = w[(size_t)r * cols + k] + 1;
            d[k / 4] = (uint8_t)((d[k / 4] & ~(3 << (2 * (k % 4)))) | (code << (2 * (k % 4))));
        }
    }
}

static void ref_tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                      const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    int rb = bn_kpad(cols) / 4;
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++) {
            const uint8_t *wr = w + (size_t)r * rb;
            const int8_t *xi = x + (size_t)i * ldx;
            int32_t acc = 0;
            for (int k = 0; k < cols; k++) acc += (((wr[k / 4] >> (2 * (k % 4))) & 3) - 1) * xi[k];
            y[(size_t)i * ldy + r] = acc;
        }
}

float bn_quant_scale(float m) { return 127.0f / (m < 1e-5f ? 1e-5f : m); }

void bn_quant_tail(const float *x, int k0, int cols, float s, int8_t *q, int kp) {
    for (int k = k0; k < cols; k++) {
        float v = rintf(x[k] * s); /* finite, |v| <= 128: the cast is in range */
        q[k] = (int8_t)(v > 127.f ? 127 : v < -128.f ? -128 : v);
    }
    if (kp > cols) memset(q + cols, 0, (size_t)(kp - cols));
}

static float ref_quant_act(const float *x, int cols, int8_t *q, int kp) {
    float m = 0.f;
    for (int k = 0; k < cols; k++) {
        float a = fabsf(x[k]);
        if (!(a <= FLT_MAX)) { memset(q, 0, (size_t)kp); return NAN; } /* NaN or +-inf (kernels.h) */
        if (a > m) m = a;
    }
    float s = bn_quant_scale(m);
    bn_quant_tail(x, 0, cols, s, q, kp);
    return s;
}


static float ref_fdot(const void *w, int wdt, int cols, int r, const float *x) {
    float acc = 0.f;
    for (int k = 0; k < cols; k++) acc += bn_wget(w, wdt, (size_t)r * cols + k) * x[k];
    return acc;
}
static void ref_fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                      const float *x, int ldx, int n, float *y, int ldy) {
    bn_fgemm_rows(ref_fdot, w, wdt, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- the SIMD ("i16") ternary layout, shared by every ISA set (see kernels.h) ---- */
size_t bn_i16_packed_size(int rows, int cols) {
    size_t rp = (size_t)(rows + BN_IBLK - 1) / BN_IBLK * BN_IBLK;
    return rp * (size_t)(bn_kpad(cols) / 4);
}

void bn_pack_i16(const int8_t *w, int rows, int cols, uint8_t *dst) {
    int kp = bn_kpad(cols), ng = kp / 16;
    int nblk = (rows + BN_IBLK - 1) / BN_IBLK;
    for (int b = 0; b < nblk; b++)
        for (int j = 0; j < BN_IBLK; j++) {
            int r = b * BN_IBLK + j;
            const int8_t *wr = r < rows ? w + (size_t)r * cols : w;
            uint8_t *d = dst + (size_t)b * BN_IBLK * (kp / 4) + 4 * j;
            for (int g = 0; g < ng; g++)
                for (int t = 0; t < 4; t++) {
                    unsigned byte = 0;
                    for (int s = 0; s < 4; s++) {
                        int k = 16 * g + 4 * s + t;
                        unsigned code = r < rows && k < cols ? (unsigned)(wr[k] + 1) : 1u; /* padding: zero */
                        byte |= code << (2 * s);
                    }
                    d[(size_t)g * 64 + t] = (uint8_t)byte;
                }
        }
}

/* ---- the base-3 ("b3", 1.6-bit) ternary layout (see kernels.h) ---- */
size_t bn_b3_packed_size(int rows, int cols) {
    size_t rp = (size_t)(rows + BN_IBLK - 1) / BN_IBLK * BN_IBLK;
    return rp * 4 * (size_t)bn_b3_groups(cols);
}

void bn_pack_b3(const int8_t *w, int rows, int cols, uint8_t *dst) {
    int G = bn_b3_groups(cols), nblk = (rows + BN_IBLK - 1) / BN_IBLK;
    for (int b = 0; b < nblk; b++)
        for (int j = 0; j < BN_IBLK; j++) {
            int r = b * BN_IBLK + j;
            uint8_t *d = dst + (size_t)b * 64 * G + 4 * j;
            for (int g = 0; g < G; g++)
                for (int t = 0; t < 4; t++) {
                    unsigned v = 0;
                    for (int s = 0; s < 5; s++) {
                        int k = 20 * g + 4 * s + t;
                        v = 3 * v + (r < rows && k < cols ? (unsigned)(w[(size_t)r * cols + k] + 1) : 1u); /* padding: zero */
                    }
                    d[(size_t)g * 64 + t] = (uint8_t)((v * 256 + 242) / 243);
                }
        }
}

/* Code s (0..4) of a b3 byte q: the digit recurrence of kernels.h. */
static int b3_code(unsigned q, int s) {
    for (int i = 0; i < s; i++) q = (3 * q) & 255;
    return (int)((3 * q) >> 8);
}

static void ref_b3_tgemm(const uint8_t *w, int rows, int cols, int r0, int r1,
                         const int8_t *x, int ldx, int n, int32_t *y, int ldy) {
    int G = bn_b3_groups(cols);
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++) {
            const uint8_t *wr = w + (size_t)(r / BN_IBLK) * 64 * G + 4 * (r % BN_IBLK);
            const int8_t *xi = x + (size_t)i * ldx;
            int32_t acc = 0;
            for (int k = 0; k < cols; k++) {
                int g = k / 20, s = (k % 20) / 4, t = k % 4;
                acc += (b3_code(wr[(size_t)g * 64 + t], s) - 1) * xi[k];
            }
            y[(size_t)i * ldy + r] = acc;
        }
}

void bn_unpack_b3(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst) {
    int G = bn_b3_groups(cols);
    (void)rows;
    for (int r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)(r / BN_IBLK) * 64 * G + 4 * (r % BN_IBLK);
        for (int k = 0; k < cols; k++)
            dst[(size_t)(r - r0) * cols + k] = (int8_t)(b3_code(wr[(size_t)(k / 20) * 64 + k % 4], (k % 20) / 4) - 1);
    }
}

/* dx[i][k] = sum_r dy[i][r] * W[r][k], r in increasing order (as ref_tgemm_t), over the b3 layout. */
void bn_b3_tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                   const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    int G = bn_b3_groups(cols);
    for (int i = 0; i < n; i++)
        for (int k = c0; k < c1; k++) {
            int32_t acc = 0;
            for (int r = 0; r < rows; r++) {
                const uint8_t *wr = w + (size_t)(r / BN_IBLK) * 64 * G + 4 * (r % BN_IBLK);
                acc += (b3_code(wr[(size_t)(k / 20) * 64 + k % 4], (k % 20) / 4) - 1) * dy[(size_t)i * lddy + r];
            }
            dx[(size_t)i * lddx + k] = acc;
        }
}

/* ---- quantized LM head formats (see kernels.h) ---- */
size_t bn_hq8_size(int rows, int cols) { return bn_hq8_qoff(rows) + (size_t)rows * (size_t)bn_hq_cpad(cols); }

void bn_hq8_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst) {
    int cp = bn_hq_cpad(cols);
    float *sc = (float *)dst;
    int8_t *q = (int8_t *)(dst + bn_hq8_qoff(rows));
    memset(dst, 0, bn_hq8_size(rows, cols));
    for (int r = 0; r < rows; r++) {
        float m = 0.f;
        for (int k = 0; k < cols; k++) { float a = fabsf(bn_wget(w, wdt, (size_t)r * cols + k)); if (a > m) m = a; }
        sc[r] = m / 127.0f;
        if (m == 0.f) continue;
        float inv = 127.0f / m;
        for (int k = 0; k < cols; k++) {
            float v = rintf(bn_wget(w, wdt, (size_t)r * cols + k) * inv);
            q[(size_t)r * cp + k] = (int8_t)(v > 127.f ? 127 : v < -127.f ? -127 : v == v ? v : 0); /* NaN: 0 */
        }
    }
}

size_t bn_hq4_size(int rows, int cols) { return bn_hq4_qoff(rows, cols) + (size_t)rows * (size_t)(bn_hq_cpad(cols) / 2); }

void bn_hq4_quant(const void *w, int wdt, int rows, int cols, uint8_t *dst) {
    int cp = bn_hq_cpad(cols), nb = cp / 32;
    float *d = (float *)dst;
    uint8_t *q = dst + bn_hq4_qoff(rows, cols);
    memset(dst, 0, bn_hq4_qoff(rows, cols));
    memset(q, 0x88, (size_t)rows * (size_t)(cp / 2));
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            float v = 0.f, a = 0.f;
            for (int j = 0; j < 32 && 32 * b + j < cols; j++) {
                float e = bn_wget(w, wdt, (size_t)r * cols + 32 * b + j);
                if (fabsf(e) > a) { a = fabsf(e); v = e; }
            }
            float dd = v / -8.0f;
            d[(size_t)r * nb + b] = dd;
            if (dd == 0.f) continue;
            float inv = 1.0f / dd;
            uint8_t *qb = q + (size_t)r * (cp / 2) + 16 * b;
            for (int j = 0; j < 32 && 32 * b + j < cols; j++) {
                float e = rintf(bn_wget(w, wdt, (size_t)r * cols + 32 * b + j) * inv);
                int qi = (int)(e > 7.f ? 7 : e < -8.f ? -8 : e == e ? e : 0) + 8; /* NaN: 0 */
                if (j < 16) qb[j] = (uint8_t)((qb[j] & 0xf0) | qi);
                else qb[j - 16] = (uint8_t)((qb[j - 16] & 0x0f) | (qi << 4));
            }
        }
}

/* ---- row drivers of the float kernels (kernels.h), shared by ref, avx2, neon and dotprod ---- */
void bn_fgemm_rows(bn_fdot_fn dot, const void *w, int wdt, int rows, int cols, int r0, int r1,
                   const float *x, int ldx, int n, float *y, int ldy) {
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < n; i++) y[(size_t)i * ldy + r] = dot(w, wdt, cols, r, x + (size_t)i * ldx);
}

void bn_hgemm_q8_rows(bn_q8dot_fn dot, const uint8_t *wq, int rows, int cols, int r0, int r1,
                      const float *x, int ldx, int n, float *y, int ldy) {
    int cp = bn_hq_cpad(cols);
    const float *sc = (const float *)(const void *)wq;
    const int8_t *q = (const int8_t *)(wq + bn_hq8_qoff(rows));
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < n; i++) y[(size_t)i * ldy + r] = sc[r] * dot(q + (size_t)r * cp, cols, x + (size_t)i * ldx);
}

void bn_hgemm_q4_rows(bn_q4dot_fn dot, const uint8_t *wq, int rows, int cols, int r0, int r1,
                      const float *x, int ldx, int n, float *y, int ldy) {
    int cp = bn_hq_cpad(cols), nb = cp / 32;
    const float *d = (const float *)(const void *)wq;
    const uint8_t *q = wq + bn_hq4_qoff(rows, cols);
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < n; i++)
            y[(size_t)i * ldy + r] = dot(q + (size_t)r * (cp / 2), d + (size_t)r * nb, cols, x + (size_t)i * ldx);
}

static float ref_q8dot(const int8_t *q, int cols, const float *x) {
    float acc = 0.f;
    for (int k = 0; k < cols; k++) acc += (float)q[k] * x[k];
    return acc;
}
static void ref_hgemm_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                         const float *x, int ldx, int n, float *y, int ldy) {
    bn_hgemm_q8_rows(ref_q8dot, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

float bn_q4dot_from(const uint8_t *q, const float *d, int b0, int cols, const float *x) {
    float acc = 0.f;
    for (int b = b0; 32 * b < cols; b++) {
        const uint8_t *qb = q + 16 * b;
        float s = 0.f;
        for (int j = 0; j < 32 && 32 * b + j < cols; j++) {
            int v = (j < 16 ? (qb[j] & 15) : (qb[j - 16] >> 4)) - 8;
            s += (float)v * x[32 * b + j];
        }
        acc += d[b] * s;
    }
    return acc;
}
static float ref_q4dot(const uint8_t *q, const float *d, int cols, const float *x) { return bn_q4dot_from(q, d, 0, cols, x); }
static void ref_hgemm_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                         const float *x, int ldx, int n, float *y, int ldy) {
    bn_hgemm_q4_rows(ref_q4dot, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}

/* ---- float32 GEMM micro-kernel, plain C 4x16 (kernels.h bn_sgemm_ukr) ---- */
static void ukr_c(int kc, const float *A, const float *B, float *C, int ldc, int acc) {
    float c[4][16] = {{0}};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < 4; i++) {
            float a = A[k * 4 + i];
            for (int j = 0; j < 16; j++) c[i][j] += a * B[k * 16 + j];
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++) C[i * ldc + j] = (acc ? C[i * ldc + j] : 0.0f) + c[i][j];
}
const bn_sgemm_ukr bn_sgemm_ukr_c = {"c", 4, 16, ukr_c, NULL, NULL};

/* ---- AdamW rows (kernels.h bn_adam_fn): torch's single-tensor AdamW, per element ---- */
void bn_adam_ref(float *restrict pp, const float *restrict gg, float *restrict mm, float *restrict vv, size_t n,
                 float decay, float step_size, float bc2s, float omb1, float b2, float omb2, float eps) {
    for (size_t i = 0; i < n; i++) {
        float g = gg[i];
        float p = pp[i] * decay;
        float m = mm[i] + (g - mm[i]) * omb1;
        float v = vv[i] * b2 + omb2 * g * g;
        float denom = sqrtf(v) / bc2s + eps;
        p += (-step_size * m) / denom;  /* torch addcdiv: p + value * m / denom */
        pp[i] = p; mm[i] = m; vv[i] = v;
    }
}

static void ref_tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                        const int8_t *dy, int lddy, int n, int32_t *dx, int lddx);
static const bn_kernels REF = {
    .name = "ref", .layout = BN_LAYOUT_REF, .tgemm = ref_tgemm, .quant_act = ref_quant_act, .fgemm = ref_fgemm,
    .hgemm_q8 = ref_hgemm_q8, .hgemm_q4 = ref_hgemm_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
    .tgemm_t = ref_tgemm_t,
};
const bn_kernels *bn_kernels_part_ref(void);
const bn_kernels *bn_kernels_part_ref(void) { return &REF; }

/* "ref-b3": the scalar decode of the b3 layout (its spec); every other kernel as ref. */
static const bn_kernels REF_B3 = {
    .name = "ref-b3", .layout = BN_LAYOUT_B3, .tgemm = ref_b3_tgemm, .quant_act = ref_quant_act, .fgemm = ref_fgemm,
    .hgemm_q8 = ref_hgemm_q8, .hgemm_q4 = ref_hgemm_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
};
const bn_kernels *bn_kernels_part_ref_b3(void);
const bn_kernels *bn_kernels_part_ref_b3(void) { return &REF_B3; }

/* ---- the transposed ternary product and the unpack slot (see kernels.h) ---- */

/* The spec: dx[i][k] = sum_r dy[i][r] * W[r][k] over the reference layout, r in increasing order. */
static void ref_tgemm_t(const uint8_t *w, int rows, int cols, int c0, int c1,
                        const int8_t *dy, int lddy, int n, int32_t *dx, int lddx) {
    int rb = bn_kpad(cols) / 4;
    for (int i = 0; i < n; i++)
        for (int k = c0; k < c1; k++) {
            int32_t acc = 0;
            for (int r = 0; r < rows; r++)
                acc += (((w[(size_t)r * rb + k / 4] >> (2 * (k % 4))) & 3) - 1) * dy[(size_t)i * lddy + r];
            dx[(size_t)i * lddx + k] = acc;
        }
}

void bn_ref_unpack(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst) {
    int rb = bn_kpad(cols) / 4;
    (void)rows;
    for (int r = r0; r < r1; r++)
        for (int k = 0; k < cols; k++)
            dst[(size_t)(r - r0) * cols + k] = (int8_t)(((w[(size_t)r * rb + k / 4] >> (2 * (k % 4))) & 3) - 1);
}

void bn_unpack_i16(const uint8_t *w, int rows, int cols, int r0, int r1, int8_t *dst) {
    int kp = bn_kpad(cols);
    size_t bsz = (size_t)BN_IBLK * (kp / 4);
    (void)rows;
    for (int r = r0; r < r1; r++) {
        const uint8_t *d = w + (size_t)(r / BN_IBLK) * bsz + 4 * (r % BN_IBLK);
        int8_t *o = dst + (size_t)(r - r0) * cols;
        for (int k = 0; k < cols; k++) {   /* k = 16g + 4s + t: byte 64g + t, bits 2s */
            int g = k / 16, s = (k % 16) / 4, t = k % 4;
            o[k] = (int8_t)(((d[(size_t)g * 64 + t] >> (2 * s)) & 3) - 1);
        }
    }
}
