/* kernel_ab.c — an interleaved A/B timing harness for the ternary GEMM of several kernel sets on
 * one thread: for each round, shape and set, the minimum over REPS calls of one tgemm over all
 * rows, with the weights either cold (cycling through >= 256 MiB of copies, the decode case) or
 * hot (one copy, in cache). Minimums of interleaved rounds are what a shared, noisy machine
 * can compare. Not built by make and not a test (tests/test_kernels.c checks correctness).
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/tools/kernel_ab.c build/libbitnet.a -lm -lpthread -o /tmp/kernel_ab
 *   /tmp/kernel_ab N REPS ROUNDS SET1,SET2,... [ROWSxCOLS ...]
 *       N = activation rows (1 = GEMV, cold weights; > 1 = GEMM, hot weights; -1 = GEMV, hot)
 * Prints per round and set: microseconds per call, GOPS (2*rows*cols*N / t) and, for GEMV,
 * the GB/s of the set's own packed bytes. */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: kernel_ab N REPS ROUNDS SET1,SET2 [RxC ...]\n"); return 2; }
    int n = atoi(argv[1]), reps = atoi(argv[2]), rounds = atoi(argv[3]), hot = n < 0;
    if (hot) n = -n;
    const bn_kernels *K[8]; int nk = 0;
    for (char *s = strtok(argv[4], ","); s && nk < 8; s = strtok(NULL, ",")) {
        if (!(K[nk] = bn_kernels_by_name(s))) { fprintf(stderr, "no set %s\n", s); return 2; }
        nk++;
    }
    static const char *defshapes[] = {"2560x2560", "640x2560", "6912x2560", "2560x6912"};
    int nsh = argc > 5 ? argc - 5 : 4;
    for (int si = 0; si < nsh; si++) {
        int rows, cols;
        if (sscanf(argc > 5 ? argv[5 + si] : defshapes[si], "%dx%d", &rows, &cols) != 2) return 2;
        int kp = bn_kpad(cols);
        int8_t *w = malloc((size_t)rows * cols), *x = malloc((size_t)n * kp);
        int32_t *y = malloc((size_t)n * rows * 4);
        uint64_t r = 12345;
        for (size_t i = 0; i < (size_t)rows * cols; i++) { r = r * 6364136223846793005ull + 1; w[i] = (int8_t)((r >> 33) % 3) - 1; }
        for (size_t i = 0; i < (size_t)n * kp; i++) { r = r * 6364136223846793005ull + 1; x[i] = i % kp < (size_t)cols ? (int8_t)(r >> 40) : 0; }
        uint8_t **cp[8]; int ncp[8]; size_t sz[8];
        for (int k = 0; k < nk; k++) {
            sz[k] = K[k]->packed_size(rows, cols);
            ncp[k] = n == 1 && !hot ? (int)(((size_t)256 << 20) / sz[k]) + 1 : 1;
            cp[k] = malloc(sizeof(uint8_t *) * ncp[k]);
            for (int c = 0; c < ncp[k]; c++) { cp[k][c] = bn_alloc(sz[k]); K[k]->pack(w, rows, cols, cp[k][c]); }
        }
        for (int rd = 0; rd < rounds; rd++)
            for (int k = 0; k < nk; k++) {
                double best = 1e30;
                for (int it = 0; it < reps; it++) {
                    const uint8_t *wk = cp[k][it % ncp[k]];
                    double t0 = now();
                    K[k]->tgemm(wk, rows, cols, 0, rows, x, kp, n, y, rows);
                    double dt = now() - t0;
                    if (dt < best) best = dt;
                }
                printf("round %d %-12s %5dx%-5d n=%-3d %9.1f us %7.1f GOPS", rd, K[k]->name, rows, cols, n, best * 1e6,
                       2.0 * rows * cols * n / best / 1e9);
                if (n == 1) printf(" %6.2f GB/s (%zu B)", sz[k] / best / 1e9, sz[k]);
                printf("\n");
            }
        for (int k = 0; k < nk; k++) { for (int c = 0; c < ncp[k]; c++) bn_free(cp[k][c]); free(cp[k]); }
        free(w); free(x); free(y);
    }
    return 0;
}
