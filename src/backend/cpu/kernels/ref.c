/* ref.c — the scalar reference kernels: the spec every fast path is tested against, plus the
 * pieces every set shares (the i16 and b3 layouts' packs, the head formats, the C GEMM
 * micro-kernel, the AdamW rows), and "ref-b3", the scalar decode of the b3 layout. Plain loops, no intrinsics, no tricks. See kernels.h for the contracts. */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>

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

/* ---- quantized LM head: the activations and the products (kernels.h "Quantized LM head") ---- */
void bn_hq_quant_x(const float *x, int cols, int k0, int nc, int8_t *q, float *dx) {
    for (int b = 0; b < nc / 32; b++) {
        int kb = k0 + 32 * b, bad = 0;
        float m = 0.f;
        for (int j = 0; j < 32 && kb + j < cols; j++) {
            float a = fabsf(x[kb + j]);
            if (!(a <= FLT_MAX)) bad = 1;       /* NaN or infinity */
            else if (a > m) m = a;
        }
        float d = m / 127.0f;
        dx[b] = bad ? NAN : d;
        for (int j = 0; j < 32; j++) {
            int8_t v = 0;
            if (!bad && d != 0.f && kb + j < cols) {   /* |x/d| <= 127 up to rounding; clamp anyway */
                float t = rintf(x[kb + j] / d);
                v = (int8_t)(t > 127.f ? 127 : t < -127.f ? -127 : t);
            }
            q[32 * b + j] = v;
        }
    }
}

/* The driver. GEMM (n > 1) or wide rows: up to BN_HQ_NX activation rows arranged at full width
 * in one heap buffer, then each block of BN_HQ_RB weight rows meets all of them (in groups of 4)
 * while it is in cache: one pass over the weights per BN_HQ_NX activation rows. GEMV with
 * cp <= BN_HQ_KCMAX (decode), or when malloc fails: a stack buffer, groups of up to 4 activation
 * rows, column chunks of kc (a multiple of 128) columns so the arranged rows fit BN_HQ_BUF. */
#define BN_HQ_BUF 24576
#define BN_HQ_KCMAX 8192
#define BN_HQ_NX 16
#define BN_HQ_RB 16
static int hq_drive_heap(const bn_hq_kernel *K, const uint8_t *wq, int rows, int cols, int r0, int r1,
                         const float *x, int ldx, int n, float *y, int ldy) {
    int cp = bn_hq_cpad(cols), nx = n < BN_HQ_NX ? n : BN_HQ_NX;
    size_t pst = ((size_t)(cp + 127) / 128 * 2 * (size_t)K->bp64 + 63) / 64 * 64;   /* preps may round up to 128 */
    uint8_t *buf = malloc((size_t)nx * pst + (size_t)cp + (size_t)cp / 8 + 64);
    if (!buf) return 0;
    uint8_t *p = (uint8_t *)(((uintptr_t)buf + 63) / 64 * 64);
    int8_t *qx = (int8_t *)(p + (size_t)nx * pst);
    float *dx = (float *)(void *)(qx + cp);
    for (int i0 = 0; i0 < n; i0 += nx) {
        int m = n - i0 < nx ? n - i0 : nx;
        for (int i = 0; i < m; i++) {
            bn_hq_quant_x(x + (size_t)(i0 + i) * ldx, cols, 0, cp, qx, dx);
            K->prep(qx, dx, cp, p + (size_t)i * pst);
        }
        for (int rb = r0; rb < r1; rb += BN_HQ_RB) {
            int re = r1 - rb < BN_HQ_RB ? r1 : rb + BN_HQ_RB;
            for (int g = 0; g < m; g += 4)
                K->run(wq, rows, cols, rb, re, 0, cp, p + (size_t)g * pst, pst, m - g < 4 ? m - g : 4,
                       y + (size_t)(i0 + g) * ldy, ldy, 1);
        }
    }
    free(buf);
    return 1;
}
void bn_hq_drive(const bn_hq_kernel *K, const uint8_t *wq, int rows, int cols, int r0, int r1,
                 const float *x, int ldx, int n, float *y, int ldy) {
    _Alignas(64) uint8_t buf[BN_HQ_BUF];
    _Alignas(64) int8_t qx[BN_HQ_KCMAX];
    float dx[BN_HQ_KCMAX / 32];
    int cp = bn_hq_cpad(cols);
    if (r0 >= r1) return;
    if ((n > 1 || cp > BN_HQ_KCMAX) && hq_drive_heap(K, wq, rows, cols, r0, r1, x, ldx, n, y, ldy)) return;
    for (int i0 = 0; i0 < n; i0 += 4) {
        int nb = n - i0 < 4 ? n - i0 : 4;
        int kc = (int)((size_t)BN_HQ_BUF * 64 / ((size_t)nb * (size_t)K->bp64)) / 128 * 128;
        if (kc > BN_HQ_KCMAX) kc = BN_HQ_KCMAX;
        size_t pst = (size_t)kc / 64 * (size_t)K->bp64;
        for (int c0 = 0; c0 < cp; c0 += kc) {
            int nc = cp - c0 < kc ? cp - c0 : kc;
            for (int i = 0; i < nb; i++) {
                bn_hq_quant_x(x + (size_t)(i0 + i) * ldx, cols, c0, nc, qx, dx);
                K->prep(qx, dx, nc, buf + (size_t)i * pst);
            }
            K->run(wq, rows, cols, r0, r1, c0, nc, buf, pst, nb, y + (size_t)i0 * ldy, ldy, c0 == 0);
        }
    }
}

/* ref arrangement: q[nc] then dx[nc/32] (also the one of the avx2 q8 kernel) */
void bn_hq_prep_plain(const int8_t *qx, const float *dx, int nc, uint8_t *p) {
    memcpy(p, qx, (size_t)nc);
    memcpy(p + nc, dx, (size_t)nc / 8);
}
static void ref_q8run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                      const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    int cp = bn_hq_cpad(cols);
    const float *sc = (const float *)(const void *)wq;
    const int8_t *q = (const int8_t *)(wq + bn_hq8_qoff(rows));
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < nb; i++) {
            const int8_t *xq = (const int8_t *)(p + (size_t)i * pst), *wr = q + (size_t)r * cp + c0;
            const float *dx = (const float *)(const void *)(p + (size_t)i * pst + nc);
            float acc = 0.f;
            for (int b = 0; b < nc / 32; b++) {
                int32_t s = 0;
                for (int j = 0; j < 32; j++) s += wr[32 * b + j] * xq[32 * b + j];
                acc += dx[b] * (float)s;
            }
            float v = sc[r] * acc;
            y[(size_t)i * ldy + r] = first ? v : y[(size_t)i * ldy + r] + v;
        }
}
static void ref_q4run(const uint8_t *wq, int rows, int cols, int r0, int r1, int c0, int nc,
                      const uint8_t *p, size_t pst, int nb, float *y, int ldy, int first) {
    int cp = bn_hq_cpad(cols), nbk = cp / 32;
    const float *d = (const float *)(const void *)wq;
    const uint8_t *q = wq + bn_hq4_qoff(rows, cols);
    for (int r = r0; r < r1; r++)
        for (int i = 0; i < nb; i++) {
            const int8_t *xq = (const int8_t *)(p + (size_t)i * pst);
            const float *dx = (const float *)(const void *)(p + (size_t)i * pst + nc);
            float acc = 0.f;
            for (int b = 0; b < nc / 32; b++) {
                const uint8_t *qb = q + (size_t)r * (cp / 2) + (c0 / 32 + b) * 16;
                int32_t s = 0;
                for (int j = 0; j < 16; j++)
                    s += ((qb[j] & 15) - 8) * xq[32 * b + j] + ((qb[j] >> 4) - 8) * xq[32 * b + 16 + j];
                acc += (d[(size_t)r * nbk + c0 / 32 + b] * dx[b]) * (float)s;
            }
            y[(size_t)i * ldy + r] = first ? acc : y[(size_t)i * ldy + r] + acc;
        }
}
static const bn_hq_kernel REF_HQ8 = {72, bn_hq_prep_plain, ref_q8run};
static const bn_hq_kernel REF_HQ4 = {72, bn_hq_prep_plain, ref_q4run};
void bn_hq_ref_q8(const uint8_t *wq, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&REF_HQ8, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
}
void bn_hq_ref_q4(const uint8_t *wq, int rows, int cols, int r0, int r1,
                  const float *x, int ldx, int n, float *y, int ldy) {
    bn_hq_drive(&REF_HQ4, wq, rows, cols, r0, r1, x, ldx, n, y, ldy);
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
    .hgemm_q8 = bn_hq_ref_q8, .hgemm_q4 = bn_hq_ref_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
    .tgemm_t = ref_tgemm_t,
};
const bn_kernels *bn_kernels_part_ref(void);
const bn_kernels *bn_kernels_part_ref(void) { return &REF; }

/* "ref-b3": the scalar decode of the b3 layout (its spec); every other kernel as ref. */
static const bn_kernels REF_B3 = {
    .name = "ref-b3", .layout = BN_LAYOUT_B3, .tgemm = ref_b3_tgemm, .quant_act = ref_quant_act, .fgemm = ref_fgemm,
    .hgemm_q8 = bn_hq_ref_q8, .hgemm_q4 = bn_hq_ref_q4, .sgemm = &bn_sgemm_ukr_c, .adam = bn_adam_ref,
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
