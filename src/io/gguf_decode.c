/* gguf_decode.c — the tensor types of gguf.h: sizes, and decoders that give exactly what ggml's
 * dequantize_row_* (and bitnet.cpp's I2_S kernels) compute, written from the block layouts:
 *   F32, F16, BF16, I8        one value per element
 *   Q8_0  (34 B / 32)         fp16 d, int8 q[32]                    x = q * d
 *   Q4_0  (18 B / 32)         fp16 d, u8 qs[16]: low nibbles are values 0..15, high 16..31, x = (nib - 8) * d
 *   Q6_K  (210 B / 256)       u8 ql[128], u8 qh[64], int8 sc[16], fp16 d; 6-bit q - 32, x = d * sc * q
 *   TQ2_0 (66 B / 256)        u8 qs[64], fp16 d; value 32*l + m of each 128-half j in bits 2l of qs[32j + m], x = (code - 1) * d
 *   TQ1_0 (54 B / 256)        u8 qs[48], u8 qh[4], fp16 d; base-3 digits read as ((byte * 3^n mod 256) * 3) >> 8
 *   I2_S  (numel/4 + 32 B)    2-bit codes in 128- (x86) or 64-value (ARM) blocks, then an f32 scale
 * Not: quantizers (files are written by the converter / the test generator), or SIMD. */
#include "io/gguf.h"
#include "io/ternary.h"
#include <math.h>
#include <stdio.h>

typedef struct { int blck; size_t bytes; const char *name; } tinfo;

static tinfo info(uint32_t t) {
    switch (t) {
    case BN_GT_F32: return (tinfo){1, 4, "f32"};
    case BN_GT_F16: return (tinfo){1, 2, "f16"};
    case BN_GT_BF16: return (tinfo){1, 2, "bf16"};
    case BN_GT_I8: return (tinfo){1, 1, "i8"};
    case BN_GT_Q8_0: return (tinfo){32, 34, "q8_0"};
    case BN_GT_Q4_0: return (tinfo){32, 18, "q4_0"};
    case BN_GT_Q6_K: return (tinfo){256, 210, "q6_k"};
    case BN_GT_TQ2_0: return (tinfo){256, 66, "tq2_0"};
    case BN_GT_TQ1_0: return (tinfo){256, 54, "tq1_0"};
    case BN_GT_I2_S: return (tinfo){1, 0, "i2_s"};
    default: return (tinfo){0, 0, "unknown"};
    }
}
const char *bn_gguf_type_name(uint32_t t) { return info(t).name; }
int bn_gguf_type_known(uint32_t t) { return info(t).blck != 0; }
int bn_gguf_type_block(uint32_t t) { return info(t).blck; }

bitnet_status bn_gguf_type_nbytes(uint32_t type, int64_t numel, int64_t ne0, const char *name, size_t *out) {
    tinfo ti = info(type);
    if (!ti.blck) return bn_err(BITNET_ERR_UNSUPPORTED, "tensor '%s' has unknown tensor type %u", name, type);
    if (numel < 1 || ne0 < 1) return bn_err(BITNET_ERR_FORMAT, "tensor '%s' is empty", name);
    if (type == BN_GT_I2_S) {
        if (numel % 4) return bn_err(BITNET_ERR_FORMAT, "tensor '%s' (i2_s) has %lld elements, not a multiple of 4", name, (long long)numel);
        if ((uint64_t)numel / 4 > SIZE_MAX - 32) return bn_err(BITNET_ERR_FORMAT, "tensor '%s' is too large", name);
        *out = (size_t)(numel / 4) + 32;
        return BITNET_OK;
    }
    if (ne0 % ti.blck)
        return bn_err(BITNET_ERR_FORMAT, "tensor '%s' (%s) has rows of %lld elements, not a multiple of the block size %d",
                      name, ti.name, (long long)ne0, ti.blck);
    uint64_t nb = (uint64_t)numel / (uint64_t)ti.blck;
    if (nb > SIZE_MAX / ti.bytes) return bn_err(BITNET_ERR_FORMAT, "tensor '%s' is too large (size overflows)", name);
    *out = (size_t)nb * ti.bytes;
    return BITNET_OK;
}

static inline float h2f(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return bn_f16_to_f32(h); }

/* One block of 256 codes in {0,1,2,(3)} in element order, for the TQ types. */
static void tq2_codes(const uint8_t *b, uint8_t *c) {
    for (int j = 0; j < 2; j++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) *c++ = (uint8_t)((b[32 * j + m] >> (2 * l)) & 3);
}
static inline uint8_t trit(uint8_t byte, uint8_t pow3) { uint8_t q = (uint8_t)(byte * pow3); return (uint8_t)(((uint16_t)q * 3) >> 8); }
static void tq1_codes(const uint8_t *b, uint8_t *c) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    for (int n = 0; n < 5; n++) for (int m = 0; m < 32; m++) *c++ = trit(b[m], pow3[n]);
    for (int n = 0; n < 5; n++) for (int m = 0; m < 16; m++) *c++ = trit(b[32 + m], pow3[n]);
    for (int n = 0; n < 4; n++) for (int j = 0; j < 4; j++) *c++ = trit(b[48 + j], pow3[n]);
}

bitnet_status bn_gguf_decode_f32(const bn_gguf_tensor *t, int64_t start, int64_t n, float *dst) {
    tinfo ti = info(t->type);
    if (t->type == BN_GT_I2_S) return bn_err(BITNET_ERR_UNSUPPORTED, "tensor '%s' is i2_s: decode it as ternary", t->name);
    if (start < 0 || n < 0 || start > t->numel || n > t->numel - start || start % ti.blck || n % ti.blck)
        return bn_err(BITNET_ERR_ARG, "tensor '%s': elements [%lld, +%lld) are not whole %s blocks inside the tensor", t->name, (long long)start, (long long)n, ti.name);
    const uint8_t *p = t->data + (size_t)(start / ti.blck) * ti.bytes;
    switch (t->type) {
    case BN_GT_F32: memcpy(dst, p, (size_t)n * 4); break;
    case BN_GT_F16: for (int64_t i = 0; i < n; i++) dst[i] = h2f(p + 2 * i); break;
    case BN_GT_BF16: for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = bn_bf16_to_f32(h); } break;
    case BN_GT_I8: for (int64_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i]; break;
    case BN_GT_Q8_0:
        for (int64_t b = 0; b < n / 32; b++, p += 34) {
            float d = h2f(p);
            for (int j = 0; j < 32; j++) dst[32 * b + j] = (float)(int8_t)p[2 + j] * d;
        }
        break;
    case BN_GT_Q4_0:
        for (int64_t b = 0; b < n / 32; b++, p += 18) {
            float d = h2f(p);
            for (int j = 0; j < 16; j++) {
                dst[32 * b + j] = (float)((p[2 + j] & 15) - 8) * d;
                dst[32 * b + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case BN_GT_Q6_K:
        for (int64_t b = 0; b < n / 256; b++, p += 210) {
            const uint8_t *ql = p, *qh = p + 128; const int8_t *sc = (const int8_t *)(p + 192);
            float d = h2f(p + 208), *y = dst + 256 * b;
            for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8)
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * (float)sc[is] * (float)q1;
                    y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    y[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
        }
        break;
    case BN_GT_TQ2_0: case BN_GT_TQ1_0: {
        uint8_t c[256];
        for (int64_t b = 0; b < n / 256; b++, p += ti.bytes) {
            if (t->type == BN_GT_TQ2_0) tq2_codes(p, c); else tq1_codes(p, c);
            float d = h2f(p + ti.bytes - 2);
            for (int j = 0; j < 256; j++) dst[256 * b + j] = (float)((int)c[j] - 1) * d;
        }
        break;
    }
    default: return bn_err(BITNET_ERR_UNSUPPORTED, "tensor '%s' has type %s, which has no float decoder", t->name, ti.name);
    }
    return BITNET_OK;
}

bitnet_status bn_gguf_decode_ternary(const bn_gguf *g, const bn_gguf_tensor *t, bn_i2s_layout layout, int8_t *q, float *scale) {
    const char *f = g ? bn_gguf_file(g) : "gguf";
    if (t->type == BN_GT_I2_S) {
        int B = layout == BN_I2S_ARM ? 64 : 128, G = B / 4;
        if (t->numel % B)
            return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' (i2_s) has %lld elements, not a multiple of the %d-value block", f, t->name, (long long)t->numel, B);
        float s; memcpy(&s, t->data + t->numel / 4, 4);
        if (!isfinite(s) || s < 0) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' (i2_s) has scale %g (not a finite number >= 0)", f, t->name, s);
        const uint8_t *p = t->data;
        for (int64_t b = 0; b < t->numel / B; b++, p += G, q += B)
            for (int k = 0; k < G; k++) {   /* byte k holds values k, G+k, 2G+k, 3G+k (bits 6, 4, 2, 0) */
                uint8_t x = p[k];
                if (x & (x >> 1) & 0x55) {  /* a pair of bits 11: the invalid code 3 */
                    int i = 0;
                    while (((x >> (6 - 2 * i)) & 3) != 3) i++;
                    return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' (i2_s) has the invalid code 3 at element %lld", f, t->name, (long long)(b * B + i * G + k));
                }
                q[k] = (int8_t)((x >> 6) - 1); q[G + k] = (int8_t)(((x >> 4) & 3) - 1);
                q[2 * G + k] = (int8_t)(((x >> 2) & 3) - 1); q[3 * G + k] = (int8_t)((x & 3) - 1);
            }
        *scale = s;
        return BITNET_OK;
    }
    if (t->type != BN_GT_TQ2_0 && t->type != BN_GT_TQ1_0)
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, not a ternary type (i2_s, tq1_0, tq2_0)", f, t->name, bn_gguf_type_name(t->type));
    size_t bs = info(t->type).bytes;
    const uint8_t *p = t->data;
    uint8_t c[256];
    float D = 0; int64_t Db = -1;
    for (int64_t b = 0; b < t->numel / 256; b++, p += bs, q += 256) {
        float d = h2f(p + bs - 2);
        if (!isfinite(d)) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' (%s) block %lld has scale %g", f, t->name, bn_gguf_type_name(t->type), (long long)b, d);
        if (t->type == BN_GT_TQ2_0) tq2_codes(p, c); else tq1_codes(p, c);
        if (d == 0) { memset(q, 0, 256); continue; }
        if (Db < 0) { D = fabsf(d); Db = b; }
        else if (fabsf(d) != D)
            return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' (%s) has block scales that differ (%g at block %lld, %g at block %lld): a BitNet tensor has one scale; per-block ternary scales are not supported",
                          f, t->name, bn_gguf_type_name(t->type), D, (long long)Db, fabsf(d), (long long)b);
        int sg = d < 0 ? -1 : 1;
        for (int j = 0; j < 256; j++) {
            if (c[j] == 3) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' (tq2_0) has the invalid code 3 at element %lld", f, t->name, (long long)(b * 256 + j));
            q[j] = (int8_t)(sg * ((int)c[j] - 1));
        }
    }
    *scale = D;
    return BITNET_OK;
}

bitnet_status bn_gguf_get_tensor(const bn_gguf *g, const char *base, int64_t rows, int64_t cols, const bn_gguf_tensor **out) {
    char name[300];
    snprintf(name, sizeof name, "%s.weight", base);
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    if (!t) return bn_err(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", bn_gguf_file(g), name);
    int nd = rows ? 2 : 1;
    /* trailing dimensions of 1 are allowed (ggml pads shapes to 4 dims) */
    int tnd = t->ndim;
    while (tnd > nd && t->ne[tnd - 1] == 1) tnd--;
    if (tnd != nd || t->ne[0] != cols || (nd == 2 && t->ne[1] != rows)) {
        if (nd == 2)
            return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' has shape {%lld, %lld, %lld, %lld} (ggml order), expected {%lld, %lld} ([%lld, %lld] row-major)",
                          bn_gguf_file(g), name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                          (long long)cols, (long long)rows, (long long)rows, (long long)cols);
        return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' has shape {%lld, %lld, %lld, %lld} (ggml order), expected {%lld}",
                      bn_gguf_file(g), name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], (long long)cols);
    }
    *out = t;
    return BITNET_OK;
}

bitnet_status bn_gguf_read_float(const bn_gguf *g, const char *base, int64_t rows, int64_t cols, float *dst) {
    const bn_gguf_tensor *t;
    bitnet_status st = bn_gguf_get_tensor(g, base, rows, cols, &t);
    if (st) return st;
    if (t->type == BN_GT_I2_S) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' is i2_s, expected a float tensor", bn_gguf_file(g), t->name);
    if ((st = bn_gguf_decode_f32(t, 0, t->numel, dst))) return bn_err_prefix(st, bn_gguf_file(g));
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i])) return bn_err(BITNET_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", bn_gguf_file(g), t->name, (long long)i);
    return BITNET_OK;
}

bitnet_status bn_gguf_read_linear(const bn_gguf *g, const char *base, int64_t rows, int64_t cols,
                                  bn_i2s_layout layout, int8_t *q, float *scale) {
    const bn_gguf_tensor *t;
    const char *f = bn_gguf_file(g);
    bitnet_status st = bn_gguf_get_tensor(g, base, rows, cols, &t);
    if (st) return st;
    int64_t n = t->numel;
    float s = 0;
    if (t->type == BN_GT_I2_S || t->type == BN_GT_TQ1_0 || t->type == BN_GT_TQ2_0) {
        if ((st = bn_gguf_decode_ternary(g, t, layout, q, &s))) return st;
    } else if (t->type == BN_GT_F32 || t->type == BN_GT_F16 || t->type == BN_GT_BF16) {
        float *w = malloc((size_t)n * sizeof *w);
        if (!w) return bn_err(BITNET_ERR_NOMEM, "out of memory (tensor '%s')", t->name);
        bn_gguf_decode_f32(t, 0, n, w);
        float a = 0; int ternary = 1;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(w[i])) { free(w); return bn_err(BITNET_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", f, t->name, (long long)i); }
            float v = fabsf(w[i]);
            if (v != 0) { if (a == 0) a = v; else if (v != a) ternary = 0; }
        }
        if (ternary && a > 0) {
            for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0);
            s = a;
        } else              /* latent weights: absmean per tensor, the loader's codec for masters */
            s = bn_ternarize(w, n, q);
        free(w);
    } else
        return bn_err(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; a BitLinear weight must be i2_s, tq1_0, tq2_0, f32, f16 or bf16",
                      f, t->name, bn_gguf_type_name(t->type));
    char sn[300];
    snprintf(sn, sizeof sn, "%s.scale", base);
    const bn_gguf_tensor *ts = bn_gguf_find_tensor(g, sn);
    if (ts) {
        float m;
        if (ts->numel != 1 || (ts->type != BN_GT_F32 && ts->type != BN_GT_F16 && ts->type != BN_GT_BF16))
            return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' must be one f32/f16/bf16 value (it is %s with %lld elements)", f, sn, bn_gguf_type_name(ts->type), (long long)ts->numel);
        bn_gguf_decode_f32(ts, 0, 1, &m);
        if (!isfinite(m) || m <= 0) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' = %g is not a finite scale > 0", f, sn, m);
        s *= m;
    }
    if (!isfinite(s)) return bn_err(BITNET_ERR_FORMAT, "%s: tensor '%s' has a scale that overflows float", f, t->name);
    *scale = s;
    return BITNET_OK;
}
