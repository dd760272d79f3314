/* gguf_encode.c — encoders of the float and quantized GGUF tensor types a model's embedding /
 * output head is written in (bitnet convert --head): F32, F16 and BF16 (round to nearest even),
 * and Q8_0, Q4_0 and Q6_K. Q8_0 and Q4_0 give the bytes ggml's reference quantizers (and
 * llama.cpp's gguf-py) give, rounding included (Q8_0: half away from zero, as roundf; Q4_0:
 * truncation of x/d + 8.5); Q6_K is a plain encoder (per 16-value group an int8 scale of the
 * block's fp16 d = max group scale / 127, values rint(x / (d * scale)) in [-32, 31]), the same
 * as tests/tools/make_gguf.py's, not ggml's iterative scale search: any Q6_K reader decodes it.
 * The decoders are gguf_decode.c. Not: the ternary types (gguf_write.c encodes those). */
#include "io/gguf.h"
#include <math.h>

/* Q8_0 block: fp16 d, 32 x int8; x ~ q * d with d = max|x| / 127. */
static void enc_q8_0(const float *x, uint8_t *o) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t h = bn_f32_to_f16(d);
    memcpy(o, &h, 2);
    for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* Q4_0 block: fp16 d, 16 bytes (value j in the low nibble of byte j, value j+16 in its high
 * nibble) of q + 8; d = (the value of largest magnitude, first one on ties) / -8. */
static void enc_q4_0(const float *x, uint8_t *o) {
    float amax = 0, mx = 0;
    for (int j = 0; j < 32; j++) if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); mx = x[j]; }
    float d = mx / -8, id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t h = bn_f32_to_f16(d);
    memcpy(o, &h, 2);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        float v = x[j] * id;
        v = v + 8.5f;
        int k = (int)v;
        q[j] = (uint8_t)(k < 0 ? 0 : k > 15 ? 15 : k);
    }
    for (int j = 0; j < 16; j++) o[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

/* Q6_K block of 256: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], fp16 d. */
static void enc_q6_k(const float *x, uint8_t *o) {
    float gs[16], gmax = 0;
    for (int i = 0; i < 16; i++) {
        float a = 0;
        for (int j = 0; j < 16; j++) a = fmaxf(a, fabsf(x[16 * i + j]));
        gs[i] = a / 31.0f;
        gmax = fmaxf(gmax, gs[i]);
    }
    uint16_t h = bn_f32_to_f16(gmax > 0 ? gmax / 127.0f : 0.0f);
    float d = bn_f16_to_f32(h);
    int8_t sc[16];
    uint8_t u[256];
    for (int i = 0; i < 16; i++) {
        float r = d != 0 ? rintf(gs[i] / d) : 0;
        sc[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
        float s = d * (float)sc[i];
        for (int j = 0; j < 16; j++) {
            float v = s != 0 ? rintf(x[16 * i + j] / s) : 0;
            u[16 * i + j] = (uint8_t)((v < -32 ? -32 : v > 31 ? 31 : (int)v) + 32);
        }
    }
    uint8_t *ql = o, *qh = o + 128;
    for (int n = 0; n < 2; n++) {
        const uint8_t *v = u + 128 * n;
        for (int l = 0; l < 32; l++) {
            ql[64 * n + l] = (uint8_t)((v[l] & 15) | (v[l + 64] & 15) << 4);
            ql[64 * n + l + 32] = (uint8_t)((v[l + 32] & 15) | (v[l + 96] & 15) << 4);
            qh[32 * n + l] = (uint8_t)(v[l] >> 4 | (v[l + 32] >> 4) << 2 | (v[l + 64] >> 4) << 4 | (v[l + 96] >> 4) << 6);
        }
    }
    memcpy(o + 192, sc, 16);
    memcpy(o + 208, &h, 2);
}

bitnet_status bn_gguf_encode_f32(uint32_t type, const float *x, int64_t n, int64_t ne0, const char *name, uint8_t *out) {
    size_t nb;
    bitnet_status s = bn_gguf_type_nbytes(type, n, ne0, name, &nb);
    if (s) return s;
    switch (type) {
    case BN_GT_F32: memcpy(out, x, (size_t)n * 4); return BITNET_OK;
    case BN_GT_F16: case BN_GT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = type == BN_GT_F16 ? bn_f32_to_f16(x[i]) : bn_f32_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        return BITNET_OK;
    case BN_GT_Q8_0: for (int64_t b = 0; b < n / 32; b++) enc_q8_0(x + 32 * b, out + 34 * b); return BITNET_OK;
    case BN_GT_Q4_0: for (int64_t b = 0; b < n / 32; b++) enc_q4_0(x + 32 * b, out + 18 * b); return BITNET_OK;
    case BN_GT_Q6_K: for (int64_t b = 0; b < n / 256; b++) enc_q6_k(x + 256 * b, out + 210 * b); return BITNET_OK;
    default: return bn_err(BITNET_ERR_UNSUPPORTED, "tensor '%s': no encoder for type %s", name, bn_gguf_type_name(type));
    }
}
