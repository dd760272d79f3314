/* test_kernels.c — every kernel set usable on this machine against the scalar reference (ref.c):
 * ternary GEMM bit-identical on awkward shapes, sub-ranges and extreme values; quant_act
 * identical (values and scale, ties included); fgemm and the quantized heads within float
 * rounding, and exact (int64-checked) on integer data whose block scales are 1, with their
 * activation quantizer's cases; quant_act total on NaN/inf (all q 0, scale NaN, bit-identical to ref). The
 * AVX-512 path without VNNI is its own set ("avx512-novnni"), tested like any other, and so are
 * the 1.6-bit sets ("ref-b3", "avx2-b3", "avx512-b3": each packs with its own layout; the
 * shapes cover partial last groups of 20 k and cols past the linear form's 32768 limit). */
#include "t.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stdint.h>
#include <float.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 16); }
static float frnd(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; }

/* V_PLUS_LOW / V_MINUS_HIGH: the most negative / positive products (+1 * -128, -1 * 127), which
 * bound any narrow partial sums a kernel keeps (avx2 sums in int16 before widening) */
enum { V_RANDOM, V_PLUS, V_MINUS, V_SPARSE, V_PLUS_LOW, V_MINUS_HIGH, V_NPAT };

/* ternary GEMM: one shape/sub-range/value pattern; returns 1 if identical */
static int tg_case(const bn_kernels *K, int rows, int cols, int n, int r0, int r1, int pat, char *why) {
    const bn_kernels *R = bn_kernels_ref();
    int kp = bn_kpad(cols), ldx = kp + (n > 1 ? 64 : 0), ldy = rows + 3;
    int8_t *w = malloc((size_t)rows * cols);
    int8_t *x = calloc((size_t)n * ldx, 1);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = pat == V_PLUS || pat == V_PLUS_LOW ? 1 : pat == V_MINUS || pat == V_MINUS_HIGH ? -1 : pat == V_SPARSE ? (rnd() % 8 == 0 ? (int8_t)(rnd() % 2 ? 1 : -1) : 0) : (int8_t)(rnd() % 3) - 1;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cols; k++)
            x[(size_t)i * ldx + k] = pat == V_PLUS || pat == V_MINUS_HIGH ? 127 : pat == V_MINUS || pat == V_PLUS_LOW ? -128 : (int8_t)(rnd() & 0xff);
    uint8_t *pr = malloc(R->packed_size(rows, cols)), *pk = malloc(K->packed_size(rows, cols));
    R->pack(w, rows, cols, pr);
    K->pack(w, rows, cols, pk);
    int32_t *yr = malloc((size_t)n * ldy * 4), *yk = malloc((size_t)n * ldy * 4);
    for (size_t i = 0; i < (size_t)n * ldy; i++) yr[i] = yk[i] = 0x5a5a5a5a;
    R->tgemm(pr, rows, cols, r0, r1, x, ldx, n, yr, ldy);
    K->tgemm(pk, rows, cols, r0, r1, x, ldx, n, yk, ldy);
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        for (int r = 0; r < ldy; r++) {
            size_t o = (size_t)i * ldy + r;
            if (yr[o] != yk[o]) {
                snprintf(why, 200, "row %d col %d: ref %d, %s %d", i, r, yr[o], K->name, yk[o]);
                ok = 0; break;
            }
        }
    /* the reference itself against a plain int8 product */
    for (int i = 0; i < n && ok; i++)
        for (int r = r0; r < r1; r++) {
            int32_t a = 0;
            for (int k = 0; k < cols; k++) a += w[(size_t)r * cols + k] * x[(size_t)i * ldx + k];
            if (a != yr[(size_t)i * ldy + r]) { snprintf(why, 200, "ref row %d col %d wrong", i, r); ok = 0; break; }
        }
    free(w); free(x); free(pr); free(pk); free(yr); free(yk);
    return ok;
}

static void test_tgemm(const bn_kernels *K, const char *tag) {
    static const int shapes[][3] = {
        {1, 1, 1}, {1, 128, 1}, {16, 128, 1}, {17, 130, 2}, {33, 255, 3}, {15, 129, 4}, {31, 383, 5},
        {64, 1000, 7}, {40, 2560, 16}, {37, 300, 17}, {50, 640, 33}, {20, 2560, 64}, {100, 6912, 1},
        {24, 6912, 2}, {48, 13824, 1}, {17, 13824, 3}, {48, 2560, 300}, {5, 32760, 1}, {17, 32800, 2}, {3, 33000, 1}, {20, 6912, 9},
        {2, 70000, 1}, /* GEMV past 4096 k-groups: the avx512 tile folds its scaled sums (h32) */
    };
    char name[160], why[200];
    int nsh = (int)(sizeof shapes / sizeof shapes[0]);
    int bad = 0;
    for (int s = 0; s < nsh && !bad; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
        int sub[][2] = {{0, rows}, {rows > 8 ? 3 : 0, rows > 8 ? rows - 5 : rows}, {rows / 2, rows / 2 + 1},
                        {rows - 1, rows}, {rows / 3, rows / 3}, {16 < rows ? 16 : 0, rows}};
        for (int q = 0; q < 6 && !bad; q++)
            for (int pat = 0; pat < V_NPAT && !bad; pat++) {
                if (pat != V_RANDOM && q > 1) continue;
                if (!tg_case(K, rows, cols, n, sub[q][0], sub[q][1], pat, why)) {
                    snprintf(name, sizeof name, "%s tgemm %dx%d n=%d r=[%d,%d) pattern %d", tag, rows, cols, n, sub[q][0], sub[q][1], pat);
                    CHECK(name, 0, "%s", why);
                    bad = 1;
                }
            }
    }
    snprintf(name, sizeof name, "%s tgemm bit-identical to ref (%d shapes x sub-ranges x patterns)", tag, nsh);
    if (!bad) CHECK(name, 1, " ");
}

static int qa_case(const bn_kernels *K, const float *x, int cols, char *why) {
    int kp = bn_kpad(cols);
    int8_t *qr = malloc(kp), *qk = malloc(kp);
    memset(qr, 0x77, kp); memset(qk, 0x66, kp);
    float sr = bn_kernels_ref()->quant_act(x, cols, qr, kp);
    float sk = K->quant_act(x, cols, qk, kp);
    int ok = memcmp(&sr, &sk, 4) == 0;
    if (!ok) snprintf(why, 200, "scale ref %.9g vs %.9g", sr, sk);
    for (int k = 0; k < kp && ok; k++)
        if (qr[k] != qk[k]) { snprintf(why, 200, "q[%d]: ref %d vs %d (x %.9g)", k, qr[k], qk[k], k < cols ? x[k] : 0.f); ok = 0; }
    free(qr); free(qk);
    return ok;
}

static void test_quant(const bn_kernels *K, const char *tag) {
    char name[160], why[200];
    static const int sizes[] = {1, 2, 15, 16, 17, 31, 100, 128, 129, 2560, 6912, 6913, 13824};
    int ok = 1;
    float *x = malloc(14000 * sizeof(float));
    for (int si = 0; si < 13 && ok; si++)
        for (int rep = 0; rep < 4 && ok; rep++) {
            int c = sizes[si];
            float amp = rep == 0 ? 1.f : rep == 1 ? 1e-3f : rep == 2 ? 37.5f : 1e-7f;
            for (int k = 0; k < c; k++) x[k] = frnd() * amp;
            ok = qa_case(K, x, c, why);
            if (!ok) snprintf(name, sizeof name, "%s quant_act random cols=%d amp=%g", tag, c, amp);
        }
    if (ok) { /* ties: max 127 gives s = 1 exactly, so k + 0.5 are ties */
        int c = 300;
        for (int k = 0; k < c; k++) x[k] = (float)((k % 254) - 127) + ((k & 1) ? 0.5f : -0.5f);
        x[5] = 127.f; x[6] = -127.f;
        ok = qa_case(K, x, c, why);
        if (!ok) snprintf(name, sizeof name, "%s quant_act ties at .5 (s = 1)", tag);
    }
    if (ok) { /* max 254: s = 0.5; odd integers give ties */
        int c = 77;
        for (int k = 0; k < c; k++) x[k] = (float)(2 * (k % 127) - 127 + ((k % 3) ? 0 : 1));
        x[0] = -254.f;
        ok = qa_case(K, x, c, why);
        if (!ok) snprintf(name, sizeof name, "%s quant_act ties (s = 0.5)", tag);
    }
    if (ok) { /* all zero -> m clamped to 1e-5; and one negative extreme */
        int c = 45;
        for (int k = 0; k < c; k++) x[k] = 0.f;
        ok = qa_case(K, x, c, why);
        x[44] = -3.0f; x[3] = 1.5f;
        if (ok) ok = qa_case(K, x, c, why);
        if (!ok) snprintf(name, sizeof name, "%s quant_act zero / negative extreme", tag);
    }
    if (ok) snprintf(name, sizeof name, "%s quant_act identical to ref (values, scale, ties, padding)", tag);
    CHECK(name, ok, "%s", why);
    free(x);
}

/* F4: non-finite activations. The contract (kernels.h): any NaN or +-inf among x[0..cols) gives
 * q[0..kp) all 0 and the scale NaN; the set must match ref bit for bit, at every position (SIMD
 * body and scalar tail) and for every kind of non-finite value, finite huge values included. */
static void test_quant_nonfinite(const bn_kernels *K, const char *tag) {
    char name[160], why[200] = "";
    static const int sizes[] = {1, 7, 8, 16, 17, 33, 100, 129, 2560};
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    int ok = 1;
    float *x = malloc(2560 * sizeof(float));
    for (int si = 0; si < 9 && ok; si++) {
        int c = sizes[si];
        int pos[] = {0, c / 2, c - 1};
        for (int b = 0; b < 4 && ok; b++)
            for (int pi = 0; pi < 3 && ok; pi++) {
                for (int k = 0; k < c; k++) x[k] = frnd() * 3.f;
                x[pos[pi]] = bad[b];
                int kp = bn_kpad(c);
                int8_t *q = malloc(kp); memset(q, 0x5a, kp);
                float s = K->quant_act(x, c, q, kp);
                int zero = 1;
                for (int k = 0; k < kp; k++) zero &= q[k] == 0;
                if (!(s != s) || !zero) { ok = 0; snprintf(why, 200, "cols %d x[%d]=%g: scale %g, q %s", c, pos[pi], bad[b], s, zero ? "zero" : "not zero"); }
                free(q);
                if (ok) ok = qa_case(K, x, c, why);
                if (!ok) snprintf(name, sizeof name, "%s quant_act non-finite cols=%d x[%d]=%g", tag, c, pos[pi], bad[b]);
            }
    }
    if (ok) { /* finite extremes: FLT_MAX, -FLT_MAX, subnormals stay finite and identical */
        for (int k = 0; k < 100; k++) x[k] = (k & 1 ? -1.f : 1.f) * (k % 3 ? 1e-41f : FLT_MAX * 0.5f);
        x[50] = -FLT_MAX;
        ok = qa_case(K, x, 100, why);
        float s; int8_t q[128];
        if (ok) { s = K->quant_act(x, 100, q, 128); ok = s == s && s > 0; if (!ok) snprintf(why, 200, "scale %g not finite", s); }
        if (!ok) snprintf(name, sizeof name, "%s quant_act finite extremes", tag);
    }
    if (ok) snprintf(name, sizeof name, "%s quant_act non-finite input: all zero, scale NaN, identical to ref", tag);
    CHECK(name, ok, "%s", why);
    free(x);
}

/* float kernels: |y - ref| <= 1e-5 * sum|w*x| + 1e-30 */
static void test_float(const bn_kernels *K, const char *tag) {
    const bn_kernels *R = bn_kernels_ref();
    static const int shapes[][3] = {{1, 1, 1}, {5, 15, 2}, {9, 17, 3}, {13, 33, 4}, {7, 100, 5}, {21, 2563, 1}, {64, 2560, 6}, {3, 47, 9}};
    char name[160], why[200] = "";
    for (int kind = 0; kind < 5; kind++) {
        int ok = 1;
        for (int s = 0; s < 8 && ok; s++) {
            int rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2], ldx = cols + 5, ldy = rows + 2;
            float *wf = malloc((size_t)rows * cols * 4);
            for (size_t i = 0; i < (size_t)rows * cols; i++) wf[i] = frnd() * (kind >= 3 ? 0.05f : 1.f);
            if (s == 0) wf[0] = -0.75f;
            void *w; size_t wsz = 0; int wdt = kind < 3 ? kind : BN_W_BF16;
            if (wdt == BN_W_F32) { w = wf; }
            else {
                uint16_t *h = malloc((size_t)rows * cols * 2 + 2); /* odd offset below: unaligned rows */
                for (size_t i = 0; i < (size_t)rows * cols; i++) h[i + 1] = wdt == BN_W_F16 ? bn_f32_to_f16(wf[i]) : bn_f32_to_bf16(wf[i]);
                w = h + 1; (void)wsz;
            }
            size_t nx = (size_t)(n - 1) * ldx + cols;
            float *x = malloc(nx * 4);
            for (size_t i = 0; i < nx; i++) x[i] = frnd();
            float *yr = malloc((size_t)n * ldy * 4), *yk = malloc((size_t)n * ldy * 4);
            for (size_t i = 0; i < (size_t)n * ldy; i++) yr[i] = yk[i] = 12345.f;
            int r0 = rows > 4 ? 1 : 0, r1 = rows;
            uint8_t *qr = NULL;
            if (kind < 3) {
                R->fgemm(w, wdt, rows, cols, r0, r1, x, ldx, n, yr, ldy);
                K->fgemm(w, wdt, rows, cols, r0, r1, x, ldx, n, yk, ldy);
            } else if (kind == 3) {
                qr = malloc(R->hq8_size(rows, cols)); uint8_t *qk = malloc(K->hq8_size(rows, cols));
                R->hq8_quant(w, wdt, rows, cols, qr); K->hq8_quant(w, wdt, rows, cols, qk);
                if (memcmp(qr, qk, R->hq8_size(rows, cols))) { ok = 0; snprintf(why, 200, "q8 quantization differs"); }
                R->hgemm_q8(qr, rows, cols, r0, r1, x, ldx, n, yr, ldy);
                K->hgemm_q8(qk, rows, cols, r0, r1, x, ldx, n, yk, ldy);
                free(qk);
            } else {
                qr = malloc(R->hq4_size(rows, cols)); uint8_t *qk = malloc(K->hq4_size(rows, cols));
                R->hq4_quant(w, wdt, rows, cols, qr); K->hq4_quant(w, wdt, rows, cols, qk);
                if (memcmp(qr, qk, R->hq4_size(rows, cols))) { ok = 0; snprintf(why, 200, "q4 quantization differs"); }
                R->hgemm_q4(qr, rows, cols, r0, r1, x, ldx, n, yr, ldy);
                K->hgemm_q4(qk, rows, cols, r0, r1, x, ldx, n, yk, ldy);
                free(qk);
            }
            for (int i = 0; i < n && ok; i++)
                for (int r = 0; r < ldy && ok; r++) {
                    size_t o = (size_t)i * ldy + r;
                    double mag = 0, exact = 0;
                    if (r >= r0 && r < r1) {
                        for (int k = 0; k < cols; k++) {
                            double p = (double)wf[(size_t)r * cols + k] * x[(size_t)i * ldx + k];
                            mag += fabs(p); exact += p;
                        }
                    }
                    double tol = 1e-5 * mag + 1e-30;
                    if (!(fabs((double)yr[o] - yk[o]) <= tol)) { ok = 0; snprintf(why, 200, "shape %dx%d n=%d y[%d][%d]: ref %.9g vs %.9g", rows, cols, n, i, r, yr[o], yk[o]); }
                    /* the quantized heads stay near the exact product: error <= half a step per weight */
                    if (ok && kind == 3 && r >= r0 && r < r1) {
                        float m = 0; for (int k = 0; k < cols; k++) { float a = fabsf(bn_bf16_to_f32(bn_f32_to_bf16(wf[(size_t)r * cols + k]))); if (a > m) m = a; }
                        double bound = 0; for (int k = 0; k < cols; k++) bound += fabs(x[(size_t)i * ldx + k]) * (m / 127.0 * 0.5 + fabs(wf[(size_t)r * cols + k]) * 0.0079);
                        if (fabs(yk[o] - exact) > bound + 1e-5 * mag) { ok = 0; snprintf(why, 200, "q8 error %g > bound %g", fabs(yk[o] - exact), bound); }
                    }
                }
            free(x); free(yr); free(yk); free(qr);
            if (wdt != BN_W_F32) free((uint16_t *)w - 1);
            free(wf);
        }
        static const char *kn[] = {"fgemm f32", "fgemm f16", "fgemm bf16", "hgemm_q8", "hgemm_q4"};
        snprintf(name, sizeof name, "%s %s matches ref within float rounding", tag, kn[kind]);
        CHECK(name, ok, "%s", why);
    }
}

/* The head's activation quantizer (bn_hq_quant_x, shared by every set): per 32-block scale
 * max|x|/127, rintf ties to even, zero past cols, a zero block, NaN/inf blocks (dx NaN, q 0). */
static void test_hq_quant_x(void) {
    float x[100];
    int8_t q[128]; float dx[4];
    int ok = 1; char why[200] = "";
    for (int k = 0; k < 100; k++) x[k] = 0.f;
    x[0] = 127.f; x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = -0.5f; x[5] = 126.5f;   /* block 0: dx 1 */
    x[40] = -63.5f; x[41] = 1.f;                            /* block 1: dx 0.5: -127, 2 */
    x[64] = 1.f; x[65] = NAN;                               /* block 2: NaN */
    x[99] = 254.f; x[98] = 1.f;                             /* block 3 (k 96..127, cols 100): dx 2 */
    bn_hq_quant_x(x, 100, 0, 128, q, dx);
    static const int8_t want0[6] = {127, 2, 4, -2, 0, 126};
    for (int k = 0; k < 6; k++) if (q[k] != want0[k]) { ok = 0; snprintf(why, sizeof why, "q[%d] = %d, want %d", k, q[k], want0[k]); }
    if (dx[0] != 1.f || dx[1] != 0.5f || !(dx[2] != dx[2]) || dx[3] != 2.f) { ok = 0; snprintf(why, sizeof why, "dx %g %g %g %g", dx[0], dx[1], dx[2], dx[3]); }
    if (q[40] != -127 || q[41] != 2 || q[64] != 0 || q[65] != 0 || q[99] != 127 || q[98] != 0 || q[100] != 0 || q[127] != 0)
        { ok = 0; snprintf(why, sizeof why, "q40 %d q41 %d q64 %d q99 %d q98 %d q100 %d", q[40], q[41], q[64], q[99], q[98], q[100]); }
    for (int k = 0; k < 100; k++) x[k] = 0.f;
    x[70] = INFINITY;
    bn_hq_quant_x(x, 100, 32, 64, q, dx);                   /* blocks 1, 2 only */
    if (dx[0] != 0.f || !(dx[1] != dx[1]) || q[38] != 0) { ok = 0; snprintf(why, sizeof why, "zero/inf block: dx %g %g", dx[0], dx[1]); }
    CHECK("head activations quantized per 32-block (ties to even, zero, NaN, inf, past cols)", ok, "%s", why);
}

/* Integer heads on values whose block scales are exactly 1 (x integer with max |x| = 127 in every
 * block; q8 rows with max |w| = 127, q4 blocks led by -8): every set's y is then an exact
 * integer (partial sums < 2^24), checked equal to an int64 sum here, on extreme values too
 * (|q| = 127 times |x| = 127 in every pair: no int16 saturation; q4 -8 and 7). */
static int hq_exact_case(const bn_kernels *K, int q4, int rows, int cols, int n, int big, char *why) {
    int ldx = cols + 3, ldy = rows + 1, r0 = rows > 3 ? 3 : 0, ok = 1;
    float *w = malloc((size_t)rows * cols * 4), *x = malloc((size_t)n * ldx * 4);
    float *y = malloc((size_t)n * ldy * 4);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) {
            int v = big ? (q4 ? (rnd() % 2 ? 7 : -8) : (rnd() % 2 ? 127 : -127)) : (int)(rnd() % 16) - 8;
            if (q4 && k % 32 == 0) v = -8;
            if (!q4 && k == 0) v = 127;
            w[(size_t)r * cols + k] = (float)v;
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cols; k++)
            x[(size_t)i * ldx + k] = k % 32 == 0 ? (rnd() % 2 ? 127.f : -127.f) : big ? (rnd() % 2 ? 127.f : -127.f) : (float)((int)(rnd() % 41) - 20);
    size_t sz = q4 ? K->hq4_size(rows, cols) : K->hq8_size(rows, cols);
    uint8_t *hq = malloc(sz);
    if (q4) { K->hq4_quant(w, BN_W_F32, rows, cols, hq); K->hgemm_q4(hq, rows, cols, r0, rows, x, ldx, n, y, ldy); }
    else { K->hq8_quant(w, BN_W_F32, rows, cols, hq); K->hgemm_q8(hq, rows, cols, r0, rows, x, ldx, n, y, ldy); }
    for (int i = 0; i < n && ok; i++)
        for (int r = r0; r < rows && ok; r++) {
            int64_t e = 0;
            for (int k = 0; k < cols; k++) e += (int64_t)w[(size_t)r * cols + k] * (int64_t)x[(size_t)i * ldx + k];
            if (y[(size_t)i * ldy + r] != (float)e) { ok = 0; snprintf(why, 200, "%s %dx%d n=%d big=%d y[%d][%d] = %.9g, want %lld", q4 ? "q4" : "q8", rows, cols, n, big, i, r, y[(size_t)i * ldy + r], (long long)e); }
        }
    free(w); free(x); free(y); free(hq);
    return ok;
}
static void test_hq_exact(const bn_kernels *K, const char *tag) {
    static const int shapes[][4] = {{37, 640, 1, 0}, {9, 600, 5, 0}, {5, 8300, 2, 0}, {6, 3000, 4, 0}, {7, 64, 3, 1}, {5, 96, 1, 1}, {19, 160, 6, 1}};
    char name[160], why[200] = "";
    for (int q4 = 0; q4 < 2; q4++) {
        int ok = 1;
        for (int s = 0; s < 7 && ok; s++) ok = hq_exact_case(K, q4, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], why);
        snprintf(name, sizeof name, "%s hgemm_%s exact on integer data (int block sums, no saturation)", tag, q4 ? "q4" : "q8");
        CHECK(name, ok, "%s", why);
    }
    /* a NaN or an infinity in an activation row: every logit of that row is NaN, the other row's finite */
    for (int q4 = 0; q4 < 2; q4++) {
        int rows = 9, cols = 300, ok = 1;
        float *w = malloc((size_t)rows * cols * 4), x[600], y[18];
        for (int i = 0; i < rows * cols; i++) w[i] = frnd();
        for (int i = 0; i < 600; i++) x[i] = frnd();
        x[301] = q4 ? INFINITY : NAN;
        uint8_t *hq = malloc(q4 ? K->hq4_size(rows, cols) : K->hq8_size(rows, cols));
        if (q4) { K->hq4_quant(w, BN_W_F32, rows, cols, hq); K->hgemm_q4(hq, rows, cols, 0, rows, x, cols, 2, y, rows); }
        else { K->hq8_quant(w, BN_W_F32, rows, cols, hq); K->hgemm_q8(hq, rows, cols, 0, rows, x, cols, 2, y, rows); }
        for (int r = 0; r < rows; r++) if (!(y[r] == y[r] && fabsf(y[r]) < 1e30f) || y[rows + r] == y[rows + r]) ok = 0;
        snprintf(name, sizeof name, "%s hgemm_%s: a non-finite activation makes its row's logits NaN", tag, q4 ? "q4" : "q8");
        CHECK(name, ok, "y[0] %g y[%d] %g", y[0], rows, y[rows]);
        free(w); free(hq);
    }
}

static void test_set(const bn_kernels *K, const char *tag) {
    char name[160];
    snprintf(name, sizeof name, "%s has every function", tag);
    CHECK(name, K->packed_size && K->pack && K->tgemm && K->quant_act && K->fgemm && K->hq8_size && K->hq8_quant &&
                K->hgemm_q8 && K->hq4_size && K->hq4_quant && K->hgemm_q4 && K->sgemm && K->sgemm->fn && K->adam &&
                K->sgemm->mr <= BN_SGEMM_MAXMR && K->sgemm->nr <= BN_SGEMM_MAXNR, "missing function pointer");
    test_tgemm(K, tag);
    test_quant(K, tag);
    test_quant_nonfinite(K, tag);
    test_float(K, tag);
    test_hq_exact(K, tag);
}

int main(void) {
    const char *const *av = bn_kernels_available();
    int nset = 0;
    for (int i = 0; av[i]; i++) {
        const bn_kernels *K = bn_kernels_by_name(av[i]);
        CHECK(av[i], K != NULL && !strcmp(K->name, av[i]), "available set %s not found by name", av[i]);
        if (!K) continue;
        nset++;
        if (!strcmp(av[i], "ref") && i > 0) { test_quant_nonfinite(K, "ref"); test_hq_exact(K, "ref"); continue; } /* ref vs itself: only the contract */
        test_set(K, av[i]);
    }
    test_hq_quant_x();
    printf("# kernel sets tested: %d (", nset);
    for (int i = 0; av[i]; i++) printf("%s%s", i ? " " : "", av[i]);
    printf(")\n");
#if defined(__x86_64__)
    CHECK("an x86 SIMD set is available on x86-64", bn_kernels_by_name("avx2") != NULL || bn_kernels_by_name("avx512") != NULL,
          "neither avx2 nor avx512 usable");
#elif defined(__aarch64__)
    CHECK("neon is available on aarch64", bn_kernels_by_name("neon") != NULL, "neon set missing");
#endif
    T_DONE();
}
