/* test_quant.c — quantizers and packed-weight unpacking against hand-computed cases,
 * including rounding ties (half to even), clamping, and the 2B-4T bit order. */
#include "t.h"
#include "model/model.h"

int main(void) {
    const bn_kernels *k = bn_kernels_ref();
    /* activations: max |x| = 2 -> s = 63.5; x*s: 1/127*63.5 = 0.5 -> 0 (tie to even), 3/127 -> 1.5 -> 2,
       5/127 -> 2.5 -> 2, -2 -> -127, 2 -> 127 */
    {
        float x[6] = {1.f / 127, 3.f / 127, 5.f / 127, -2.f, 2.f, 0.f};
        int8_t q[BN_KBLOCK];
        float s = k->quant_act(x, 6, q, BN_KBLOCK);
        CHECK("act scale = 127/absmax", s == 127.0f / 2.0f, "s=%g", s);
        /* exact products in float: check against rintf of the same product to be sure ties are ties */
        int8_t want[6] = {(int8_t)rintf(x[0] * s), (int8_t)rintf(x[1] * s), (int8_t)rintf(x[2] * s), -127, 127, 0};
        CHECK("act ties round half to even (2.5 -> 2)", rintf(2.5f) == 2.f && want[2] == (int8_t)rintf(x[2] * s), "");
        int ok = 1; for (int i = 0; i < 6; i++) ok &= q[i] == want[i];
        CHECK("act values", ok, "%d %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4], q[5]);
        ok = 1; for (int i = 6; i < BN_KBLOCK; i++) ok &= q[i] == 0;
        CHECK("act padding is zero", ok, "");
    }
    {   /* exact ties: x = {0.5, 1.5, 2.5, -0.5, -1.5, 127} with max 127 -> s = 1 */
        float x[6] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 127.f};
        int8_t q[BN_KBLOCK];
        float s = k->quant_act(x, 6, q, BN_KBLOCK);
        CHECK("tie scale 1", s == 1.0f, "s=%g", s);
        CHECK("ties: 0.5->0 1.5->2 2.5->2 -0.5->0 -1.5->-2", q[0] == 0 && q[1] == 2 && q[2] == 2 && q[3] == 0 && q[4] == -2 && q[5] == 127,
              "%d %d %d %d %d", q[0], q[1], q[2], q[3], q[4]);
    }
    {   /* all-zero row: max clamped at 1e-5 */
        float x[3] = {0, 0, 0}; int8_t q[BN_KBLOCK];
        float s = k->quant_act(x, 3, q, BN_KBLOCK);
        CHECK("zero row scale 127/1e-5", s == 127.0f / 1e-5f && q[0] == 0, "s=%g", s);
    }
    {   /* -128 is reachable only through clamping: never for absmax (|x*s| <= 127) */
        float x[2] = {-1.0f, 1.0f}; int8_t q[BN_KBLOCK];
        k->quant_act(x, 2, q, BN_KBLOCK);
        CHECK("symmetric extremes", q[0] == -127 && q[1] == 127, "%d %d", q[0], q[1]);
    }
    {   /* weights: mean|w| = (0.2+0.4+0.6+0.0+1.0+0.2)/6 = 0.4; g = 2.5; w*g = .5 1 1.5 0 -2.5 -.5
           -> rint: 0 1 2->clamp 1, 0, -2->clamp -1, -0 */
        float w[6] = {0.2f, 0.4f, 0.6f, 0.0f, -1.0f, -0.2f};
        int8_t q[6];
        float sc = bn_ternarize(w, 6, q);
        CHECK("weight scale = mean|w|", fabsf(sc - 0.4f) < 1e-7f, "scale=%.9g", sc);
        CHECK("weight ternary values", q[0] == 0 && q[1] == 1 && q[2] == 1 && q[3] == 0 && q[4] == -1 && q[5] == 0,
              "%d %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4], q[5]);
        float z[4] = {0, 0, 0, 0}; int8_t qz[4];
        sc = bn_ternarize(z, 4, qz);
        CHECK("zero weights: mean clamped at 1e-5", sc == 1e-5f && qz[0] == 0, "scale=%g", sc);
    }
    {   /* 2B-4T packing: uint8[rows/4, cols]; byte [r,c] has row r + k*(rows/4) in bits 2k..2k+1, value+1 */
        /* rows = 8, cols = 2: byte[0][0] = rows 0,2,4,6 col 0 */
        int8_t w[16];
        for (int r = 0; r < 8; r++) for (int c = 0; c < 2; c++) w[r * 2 + c] = (int8_t)((r + c) % 3 - 1);
        uint8_t p[4];
        bn_pack_2b4t(w, 8, 2, p);
        /* byte[0][0]: rows 0,2,4,6 at col 0: values -1, 1, 0, -1 -> codes 0,2,1,0 -> 0b00011000 = 0x18 */
        CHECK("pack bit order (hand-computed byte)", p[0] == 0x18, "byte=0x%02x", p[0]);
        int8_t back[16];
        CHECK("unpack ok", bn_unpack_2b4t(p, 8, 2, back) == 0, "");
        CHECK("unpack(pack(w)) == w", !memcmp(back, w, 16), "");
        uint8_t bad[4] = {0xff, 0, 0, 0};
        CHECK("code 3 is rejected", bn_unpack_2b4t(bad, 8, 2, back) == -1, "");
        /* hand-decoded byte 0x61 = 01 10 00 01 -> codes (bits 0-1)=1,(2-3)=0,(4-5)=2,(6-7)=1 -> 0,-1,1,0 */
        uint8_t one[1] = {0x61}; int8_t v[4];
        bn_unpack_2b4t(one, 4, 1, v);
        CHECK("unpack hand-decoded 0x61", v[0] == 0 && v[1] == -1 && v[2] == 1 && v[3] == 0, "%d %d %d %d", v[0], v[1], v[2], v[3]);
    }
    {   /* ref tgemm on a hand case: W = [[1,-1,0],[0,1,1]], x = [3,4,-5] -> [-1, -1] */
        int8_t w[6] = {1, -1, 0, 0, 1, 1};
        uint8_t *p = bn_alloc(k->packed_size(2, 3));
        k->pack(w, 2, 3, p);
        int8_t x[BN_KBLOCK] = {3, 4, -5};
        int32_t y[2];
        k->tgemm(p, 2, 3, 0, 2, x, BN_KBLOCK, 1, y, 2);
        CHECK("ref tgemm hand case", y[0] == -1 && y[1] == -1, "%d %d", y[0], y[1]);
        bn_free(p);
    }
    {   /* f16 / bf16 conversions */
        CHECK("f16 1.0", bn_f16_to_f32(0x3c00) == 1.0f, "");
        CHECK("f16 subnormal", bn_f16_to_f32(0x0001) == 5.9604644775390625e-8f, "");
        CHECK("f16 roundtrip -2.5", bn_f16_to_f32(bn_f32_to_f16(-2.5f)) == -2.5f, "");
        CHECK("bf16 1.5", bn_bf16_to_f32(0x3fc0) == 1.5f, "");
        CHECK("bf16 round to even", bn_f32_to_bf16(1.00390625f) == 0x3f80, "0x%04x", bn_f32_to_bf16(1.00390625f));
    }
    T_DONE();
}
