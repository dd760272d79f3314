/* ref.c — the scalar reference kernels: the spec every fast path is tested against.
 * Plain loops, no intrinsics, no tricks. See kernels.h for the contracts and layout. */
#include "kernels.h"
#include "util.h"
#include <math.h>

static size_t ref_packed_size(int rows, int cols) { return (size_t)rows * (size_t)(bn_kpad(cols) / 4); }

static void ref_pack(const int8_t *w, int rows, int cols, uint8_t *dst) {
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

static float ref_quant_act(const float *x, int cols, int8_t *q, int kp) {
    float m = 0.f;
    for (int k = 0; k < cols; k++) { float a = fabsf(x[k]); if (a > m) m = a; }
    if (m < 1e-5f) m = 1e-5f;
    float s = 127.0f / m;
    for (int k = 0; k < cols; k++) {
        float v = rintf(x[k] * s);
        q[k] = (int8_t)(v > 127.f ? 127 : v < -128.f ? -128 : v);
    }
    for (int k = cols; k < kp; k++) q[k] = 0;
    return s;
}

static inline float wget(const void *w, int wdt, size_t i) {
    uint16_t h;
    switch (wdt) {
    case BN_W_F32: { float f; memcpy(&f, (const char *)w + i * 4, 4); return f; }
    case BN_W_F16: memcpy(&h, (const char *)w + i * 2, 2); return bn_f16_to_f32(h);
    default: memcpy(&h, (const char *)w + i * 2, 2); return bn_bf16_to_f32(h);
    }
}

static void ref_fgemm(const void *w, int wdt, int rows, int cols, int r0, int r1,
                      const float *x, int ldx, int n, float *y, int ldy) {
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++) {
            float acc = 0.f;
            for (int k = 0; k < cols; k++) acc += wget(w, wdt, (size_t)r * cols + k) * x[(size_t)i * ldx + k];
            y[(size_t)i * ldy + r] = acc;
        }
}

static const bn_kernels REF = {
    .name = "ref", .packed_size = ref_packed_size, .pack = ref_pack, .tgemm = ref_tgemm,
    .quant_act = ref_quant_act, .fgemm = ref_fgemm,
};
const bn_kernels *bn_kernels_ref(void) { return &REF; }
