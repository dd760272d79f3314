/* test_f16row.c — the f16 rows of the KV cache (src/backend/cpu/f16row.h): the scalar
 * conversion is IEEE round-to-nearest-even (checked against an oracle that picks the nearer of
 * the two neighbouring halves, ties to the even one, over a sweep of all float bit patterns), the
 * F16C conversions give the same bits as the scalar spec both ways (every half, the float sweep),
 * and dot/axpy of both sets match a double-precision reference over lengths with tails.
 * Not: a test of the attention that uses them (test_model.c, test_batch.c). */
#include "t.h"
#include "backend/cpu/f16row.h"
#include "core/util.h"
#include "core/rng.h"
#include <stdint.h>

static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t u_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static int h_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

/* 1 if h is the round-to-nearest-even f16 of finite f: no other half is nearer, ties go to an
 * even mantissa; overflow (|f| >= 65520) gives inf. */
static int rne_ok(float f, uint16_t h) {
    double x = f, a = fabs(x);
    if (a >= 65520.0) return (h & 0x7fff) == 0x7c00 && (h >> 15) == (u_of(f) >> 31);
    if ((h & 0x7c00) == 0x7c00) return 0;
    if ((h >> 15) != (u_of(f) >> 31) && bn_f16_to_f32(h) != 0.f) return 0;
    double v = fabs((double)bn_f16_to_f32(h)), d = fabs(a - v);
    uint16_t m = h & 0x7fff;
    double up = m < 0x7bff ? bn_f16_to_f32((uint16_t)(m + 1)) : 65536.0, dn = m > 0 ? bn_f16_to_f32((uint16_t)(m - 1)) : -1.0;
    double du = fabs(a - up), dd = m > 0 ? fabs(a - dn) : INFINITY;
    if (du < d || dd < d) return 0;
    if ((du == d || dd == d) && (m & 1)) return 0;  /* a tie: the even neighbour wins */
    return 1;
}

static void sweep(const bn_f16row *x) {
    /* every half to float: exact (checked by the way back) and equal to the scalar spec */
    int bad = 0, badx = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i, h2; float f, fx;
        bn_f16row_c()->to_f32(&f, &h, 1);
        bn_f16row_c()->to_f16(&h2, &f, 1);
        if (h_nan(h) ? !(f != f) : (h2 != h || u_of(f) != u_of(bn_f16_to_f32(h)))) bad++;
        if (x) { x->to_f32(&fx, &h, 1); if (h_nan(h) ? !(fx != fx) : u_of(fx) != u_of(f)) badx++; }
    }
    CHECK("scalar f16 -> f32 -> f16 is exact for every half", bad == 0, "%d halves differ", bad);
    if (x) CHECK("F16C f16 -> f32 equals the scalar spec for every half", badx == 0, "%d halves differ", badx);
    /* float sweep: stride 251 over all bit patterns plus the 16 patterns around each rounding
     * boundary (low 13 bits near 0x1000) of a spread of exponents, in blocks of 64 (F16C's
     * vector path and its tail) */
    enum { B = 67 };
    float fs[B]; uint16_t hc[B], hx[B];
    long n = 0, brne = 0, bx = 0;
    uint64_t u = 0;
    while (u < 0x100000000ull) {
        int k = 0;
        for (; k < B && u < 0x100000000ull; k++) {
            uint32_t v = (uint32_t)u;
            if (k % 4 == 3) v = (v & ~0x1fffu) | (0x1000u + (uint32_t)(k % 8) - 4u);  /* ties and their neighbours */
            fs[k] = f_of(v);
            u += 251;
        }
        bn_f16row_c()->to_f16(hc, fs, k);
        if (x) x->to_f16(hx, fs, k);
        for (int i = 0; i < k; i++) {
            n++;
            int isnan = fs[i] != fs[i];
            if (isnan ? !h_nan(hc[i]) : !rne_ok(fs[i], hc[i])) { if (brne++ < 3) printf("# %08x -> %04x\n", u_of(fs[i]), hc[i]); }
            if (x && (isnan ? !h_nan(hx[i]) : hx[i] != hc[i])) { if (bx++ < 3) printf("# F16C %08x -> %04x, scalar %04x\n", u_of(fs[i]), hx[i], hc[i]); }
        }
    }
    CHECK("scalar f32 -> f16 rounds to nearest even (float sweep)", brne == 0, "%ld of %ld wrong", brne, n);
    if (x) CHECK("F16C f32 -> f16 equals the scalar spec (float sweep)", bx == 0, "%ld of %ld differ", bx, n);
    /* hand cases */
    uint16_t h;
    h = bn_f32_to_f16(1.0f + 0x1p-11f); CHECK("tie 1 + 2^-11 rounds to even 1.0", h == 0x3c00, "%04x", h);
    h = bn_f32_to_f16(1.0f + 3 * 0x1p-11f); CHECK("tie 1 + 3*2^-11 rounds to even 1 + 2^-9", h == 0x3c02, "%04x", h);
    h = bn_f32_to_f16(65520.f); CHECK("65520 rounds to inf", h == 0x7c00, "%04x", h);
    h = bn_f32_to_f16(65519.f); CHECK("65519 rounds to 65504", h == 0x7bff, "%04x", h);
    h = bn_f32_to_f16(0x1p-25f); CHECK("2^-25 (a tie with 0) rounds to 0", h == 0, "%04x", h);
    h = bn_f32_to_f16(0x1.8p-24f); CHECK("1.5 x 2^-24 (a subnormal tie) rounds to even 2^-23", h == 2, "%04x", h);
}

static void rows(const bn_f16row *r) {
    char name[96];
    uint64_t s = 7;
    double worst_d = 0, worst_a = 0;
    for (int n = 0; n <= 140; n += (n < 40 ? 1 : 25)) {
        float a[160] = {0}, y[160] = {0}, y0[160] = {0}; uint16_t b[160] = {0};
        for (int i = 0; i < n; i++) {
            a[i] = (float)((int)(bn_splitmix64(&s) % 2001) - 1000) * 1e-3f;
            b[i] = bn_f32_to_f16((float)((int)(bn_splitmix64(&s) % 2001) - 1000) * 1e-2f);
            y[i] = y0[i] = (float)((int)(bn_splitmix64(&s) % 201) - 100) * 1e-2f;
        }
        double ref = 0, mag = 0;
        for (int i = 0; i < n; i++) { ref += (double)a[i] * bn_f16_to_f32(b[i]); mag += fabs((double)a[i] * bn_f16_to_f32(b[i])); }
        double d = fabs(r->dot(a, b, n) - ref) / (mag + 1e-30);
        if (d > worst_d) worst_d = d;
        r->axpy(y, 0.37f, b, n);
        for (int i = 0; i < n; i++) {
            double want = y0[i] + 0.37 * (double)bn_f16_to_f32(b[i]), e = fabs(y[i] - want) / (fabs(want) + fabs(y0[i]) + 1e-30);
            if (e > worst_a) worst_a = e;
        }
    }
    /* float accumulation over <= 140 terms: relative error (to the sum of |terms|) <= ~140 ulp */
    snprintf(name, sizeof name, "%s dot matches the double reference (lengths 0..140)", r->name);
    CHECK(name, worst_d <= 140 * 0x1p-24, "worst relative error %.3g", worst_d);
    snprintf(name, sizeof name, "%s axpy matches the double reference", r->name);
    CHECK(name, worst_a <= 2 * 0x1p-24, "worst relative error %.3g", worst_a);
}

int main(void) {
    const bn_f16row *x = bn_f16row_f16c();
    if (!x) printf("skip F16C rows: not built for x86-64 or this CPU lacks F16C/FMA/AVX2\n");
    sweep(x);
    rows(bn_f16row_c());
    if (x) rows(x);
    CHECK("kernel set ref gets the scalar rows", !strcmp(bn_f16row_for("ref").name, "c"), "%s", bn_f16row_for("ref").name);
    if (x) CHECK("kernel set avx2 gets the F16C rows", !strcmp(bn_f16row_for("avx2").name, "f16c"), "%s", bn_f16row_for("avx2").name);
    T_DONE();
}
