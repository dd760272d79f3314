/* test_kernels_t.c — the transposed ternary product (kernels.h tgemm_t: dx = dy @ W, exact
 * int32) and the unpack slot of every kernel set usable here: ref against a plain int8 product,
 * every other set bit-identical to ref, on awkward shapes (rows past the 2048-row chunk of the
 * i16 driver, columns not a multiple of 16, more than 256 activation rows), column sub-ranges
 * and the extreme products (+1 * -128, -1 * 127). Not: the forward tgemm (test_kernels.c). */
#include "t.h"
#include "backend/cpu/kernels/kernels.h"
#include <stdint.h>

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 16); }

enum { V_RANDOM, V_PLUS_LOW, V_MINUS_HIGH, V_SPARSE, V_NPAT };

/* One case: W int8[rows][cols], dy int8[n][lddy] (zero past rows); returns 1 if all match. */
static int tt_case(const bn_kernels *K, int rows, int cols, int n, int c0, int c1, int pat, char *why) {
    const bn_kernels *R = bn_kernels_ref();
    int lddy = bn_kpad(rows) + (n > 1 ? 32 : 0), lddx = cols + 5;
    int8_t *w = malloc((size_t)rows * cols), *dy = calloc((size_t)n * lddy, 1), *un = malloc((size_t)rows * cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = pat == V_PLUS_LOW ? 1 : pat == V_MINUS_HIGH ? -1 : pat == V_SPARSE ? (rnd() % 8 ? 0 : (int8_t)(rnd() % 2 ? 1 : -1)) : (int8_t)(rnd() % 3) - 1;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++)
            dy[(size_t)i * lddy + r] = pat == V_PLUS_LOW ? -128 : pat == V_MINUS_HIGH ? 127 : (int8_t)(rnd() & 0xff);
    uint8_t *pr = malloc(R->packed_size(rows, cols)), *pk = malloc(K->packed_size(rows, cols));
    R->pack(w, rows, cols, pr);
    K->pack(w, rows, cols, pk);
    int32_t *xr = malloc((size_t)n * lddx * 4), *xk = malloc((size_t)n * lddx * 4);
    for (size_t i = 0; i < (size_t)n * lddx; i++) xr[i] = xk[i] = 0x5a5a5a5a;
    R->tgemm_t(pr, rows, cols, c0, c1, dy, lddy, n, xr, lddx);
    K->tgemm_t(pk, rows, cols, c0, c1, dy, lddy, n, xk, lddx);
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        for (int k = 0; k < lddx && ok; k++) {
            size_t o = (size_t)i * lddx + k;
            if (xr[o] != xk[o]) { snprintf(why, 200, "row %d col %d: ref %d, %s %d", i, k, xr[o], K->name, xk[o]); ok = 0; }
        }
    for (int i = 0; i < n && ok; i++)   /* ref against the plain product; untouched outside [c0, c1) */
        for (int k = 0; k < lddx && ok; k++) {
            int32_t a = 0x5a5a5a5a;
            if (k >= c0 && k < c1) { a = 0; for (int r = 0; r < rows; r++) a += w[(size_t)r * cols + k] * dy[(size_t)i * lddy + r]; }
            if (a != xr[(size_t)i * lddx + k]) { snprintf(why, 200, "ref row %d col %d: %d, expected %d", i, k, xr[(size_t)i * lddx + k], a); ok = 0; }
        }
    int r0 = rows > 3 ? rows / 3 : 0;   /* unpack of rows [r0, rows) gives the values back */
    if (ok) {
        K->unpack(pk, rows, cols, r0, rows, un);
        if (memcmp(un, w + (size_t)r0 * cols, (size_t)(rows - r0) * cols)) { snprintf(why, 200, "%s unpack rows [%d,%d) differ", K->name, r0, rows); ok = 0; }
    }
    free(w); free(dy); free(un); free(pr); free(pk); free(xr); free(xk);
    return ok;
}

static void test_set(const bn_kernels *K) {
    static const int shapes[][3] = {   /* rows (the reduction), cols, n */
        {1, 1, 1}, {1, 128, 2}, {16, 16, 1}, {17, 130, 3}, {33, 255, 5}, {130, 17, 4}, {300, 37, 17},
        {2048, 48, 2}, {2049, 33, 3}, {2600, 64, 5}, {4100, 20, 2}, {640, 2560 / 40, 300}, {6912, 18, 1},
    };
    char name[200], why[200];
    int bad = 0, ncase = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]) && !bad; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
        int sub[][2] = {{0, cols}, {cols > 8 ? 3 : 0, cols > 8 ? cols - 5 : cols}, {cols / 2, cols / 2 + 1}, {cols - 1, cols}, {cols / 3, cols / 3}};
        for (int q = 0; q < 5 && !bad; q++)
            for (int pat = 0; pat < V_NPAT && !bad; pat++) {
                if (pat != V_RANDOM && q > 0) continue;
                ncase++;
                if (!tt_case(K, rows, cols, n, sub[q][0], sub[q][1], pat, why)) {
                    snprintf(name, sizeof name, "%s tgemm_t %dx%d n=%d c=[%d,%d) pattern %d", K->name, rows, cols, n, sub[q][0], sub[q][1], pat);
                    CHECK(name, 0, "%s", why);
                    bad = 1;
                }
            }
    }
    snprintf(name, sizeof name, "%s: tgemm_t bit-identical to ref and unpack exact (%d cases)", K->name, ncase);
    CHECK(name, !bad, "see above");
}

int main(void) {
    const char *const *av = bn_kernels_available();
    for (int i = 0; av[i]; i++) {
        const bn_kernels *K = bn_kernels_by_name(av[i]);
        CHECK(av[i], K && K->tgemm_t && K->unpack, "set %s has no tgemm_t/unpack", av[i]);
        if (K && K->tgemm_t && K->unpack) test_set(K);
    }
    T_DONE();
}
