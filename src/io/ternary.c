/* ternary.c — the ternary codec (see ternary.h): absmean ternarize, 2B-4T pack/unpack, weight
 * scale conventions. Scalar reference code; kernels have their own packed layouts. */
#include "io/ternary.h"

float bn_ternarize(const float *w, int64_t n, int8_t *q) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += fabsf(w[i]);
    float mean = (float)(sum / (double)(n ? n : 1));
    if (mean < BN_TERNARY_MIN_MEAN) mean = BN_TERNARY_MIN_MEAN;
    float g = 1.0f / mean;
    if (q) for (int64_t i = 0; i < n; i++) q[i] = (int8_t)bn_ternary_q(w[i], g);
    return mean;
}

int bn_unpack_2b4t(const uint8_t *p, int rows, int cols, int8_t *q) {
    int r4 = rows / 4;
    for (int r = 0; r < r4; r++)
        for (int c = 0; c < cols; c++) {
            uint8_t b = p[(size_t)r * cols + c];
            for (int k = 0; k < 4; k++) {
                int code = (b >> (2 * k)) & 3;
                if (code == 3) return -1;
                q[(size_t)(r + k * r4) * cols + c] = (int8_t)(code - 1);
            }
        }
    return 0;
}

void bn_pack_2b4t(const int8_t *q, int rows, int cols, uint8_t *p) {
    int r4 = rows / 4;
    for (int r = 0; r < r4; r++)
        for (int c = 0; c < cols; c++) {
            uint8_t b = 0;
            for (int k = 0; k < 4; k++) b |= (uint8_t)((q[(size_t)(r + k * r4) * cols + c] + 1) << (2 * k));
            p[(size_t)r * cols + c] = b;
        }
}

bitnet_status bn_scale_check(float mult, const char *what) {
    if (!isfinite(mult) || mult <= 0 || mult > BN_SCALE_MAX)
        return bn_err(BITNET_ERR_FORMAT, "%s: weight scale multiplier %g is not a positive finite scale <= 2^64 (layer outputs would overflow)", what, mult);
    return BITNET_OK;
}

bitnet_status bn_scale_multiplier(float ws, bn_linear_class lc, const char *what, float *mult) {
    if (!isfinite(ws) || ws <= 0) return bn_err(BITNET_ERR_FORMAT, "%s = %g is not a positive finite scale", what, ws);
    float m = lc == BN_LC_BITLINEAR ? 1.0f / ws : ws;
    if (!isfinite(m) || m > BN_SCALE_MAX)
        return bn_err(BITNET_ERR_FORMAT, "%s = %g overflows: under %s the layer multiplies by %g (> 2^64)", what, ws,
                      lc == BN_LC_BITLINEAR ? "bitlinear (1/scale)" : "autobitlinear", (double)m);
    *mult = m;
    return BITNET_OK;
}
