/* avx2_ceiling.c — how close a kernel set's ternary GEMM is to what this x86 core can issue:
 * the throughput of the exact int8 building block (vpmaddubsw, alone and followed by the
 * dependent vpaddw that every exact AVX2 ternary GEMM needs per product vector), measured with
 * fixed asm loops, next to the set's tgemm on 2B-4T shapes with hot weights. All times are
 * thread CPU time (CLOCK_THREAD_CPUTIME_ID), minimum of repeated runs, so preemption by other
 * jobs on a shared machine drops out (their cache and SMT-sibling pressure does not).
 * Not built by make, not a test (tests/test_kernels.c checks correctness); x86-64 only.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/tools/avx2_ceiling.c build/libbitnet.a -lm -lpthread -o /tmp/avx2_ceiling
 *   /tmp/avx2_ceiling [SET=avx2] [N=256] [REPS=5]
 *
 * One vpmaddubsw multiplies 32 byte pairs (64 ops). "madd+dep add" is the MAD inner step
 * (acc += maddubs(w, x)); its rate times 64 is the GOPS ceiling of any GEMM built from it;
 * the unpack, broadcasts and widening of a real tile come on top. The co-issue line shows which
 * ops share the madd's pipes (total near the madd's own rate) and which issue beside it (~2x). */
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(__x86_64__)
#error "avx2_ceiling is x86-64 only"
#endif

static double cpu_now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

#define ITERS 5000000L
#define CLOB "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
             "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
/* body runs ITERS times; returns instructions of kind `per` per ns (best of 15) */
#define LOOP(body, per)                                                                  \
    do {                                                                                 \
        double best = 1e30;                                                              \
        for (int q = 0; q < 15; q++) {                                                   \
            double t0 = cpu_now();                                                       \
            __asm__ volatile("vpxor %%xmm14,%%xmm14,%%xmm14\n vpxor %%xmm15,%%xmm15,%%xmm15\n" \
                             "mov %0,%%rcx\n 1:\n" body "dec %%rcx\n jnz 1b\n" ::"r"(ITERS) : CLOB); \
            double dt = cpu_now() - t0;                                                  \
            if (dt < best) best = dt;                                                    \
        }                                                                                \
        r = (per) * ITERS / best / 1e9;                                                  \
    } while (0)
#define MA(t, acc) "vpmaddubsw %%ymm14,%%ymm15,%%ymm" #t "\n vpaddw %%ymm" #t ",%%ymm" #acc ",%%ymm" #acc "\n"
#define MI(t, acc) "vpmaddubsw %%ymm14,%%ymm15,%%ymm" #t "\n vpaddw %%ymm13,%%ymm" #acc ",%%ymm" #acc "\n"

int main(int argc, char **argv) {
    const char *set = argc > 1 ? argv[1] : "avx2";
    int n = argc > 2 ? atoi(argv[2]) : 256, reps = argc > 3 ? atoi(argv[3]) : 5;
    const bn_kernels *K = bn_kernels_by_name(set);
    if (!K || n < 1 || reps < 1) { fprintf(stderr, "usage: avx2_ceiling [SET] [N] [REPS] (set %s not available here?)\n", set); return 2; }
    double r, madd, dep, indep;
    LOOP("vpmaddubsw %%ymm14,%%ymm15,%%ymm0\n vpmaddubsw %%ymm14,%%ymm15,%%ymm1\n vpmaddubsw %%ymm14,%%ymm15,%%ymm2\n"
         "vpmaddubsw %%ymm14,%%ymm15,%%ymm3\n vpmaddubsw %%ymm14,%%ymm15,%%ymm4\n vpmaddubsw %%ymm14,%%ymm15,%%ymm5\n"
         "vpmaddubsw %%ymm14,%%ymm15,%%ymm6\n vpmaddubsw %%ymm14,%%ymm15,%%ymm7\n", 8);
    madd = r;
    LOOP(MA(8, 0) MA(9, 1) MA(10, 2) MA(11, 3) MA(12, 4) MA(8, 5) MA(9, 6) MA(10, 7), 8);
    dep = r;
    LOOP(MI(8, 0) MI(9, 1) MI(10, 2) MI(11, 3) MI(12, 4) MI(8, 5) MI(9, 6) MI(10, 7), 8);
    indep = r;
    /* what issues beside the madd (ops of both kinds per ns; each alone is ~ the madd's rate) */
    double co[4];
#define CO(op) "vpmaddubsw %%ymm14,%%ymm15,%%ymm8\n " op " %%ymm14,%%ymm0,%%ymm0\n vpmaddubsw %%ymm14,%%ymm15,%%ymm9\n " op \
               " %%ymm14,%%ymm1,%%ymm1\n vpmaddubsw %%ymm14,%%ymm15,%%ymm10\n " op " %%ymm14,%%ymm2,%%ymm2\n"      \
               "vpmaddubsw %%ymm14,%%ymm15,%%ymm11\n " op " %%ymm14,%%ymm3,%%ymm3\n"
    LOOP(CO("vpand"), 8);
    co[0] = r;
    LOOP(CO("vpshufb"), 8);
    co[1] = r;
    LOOP(CO("vpsadbw"), 8);
    co[2] = r;
    LOOP(CO("vfmadd231ps"), 8);
    co[3] = r;
    printf("vpmaddubsw alone              %5.2f /ns  (%4.0f GOPS)\n", madd, madd * 64);
    printf("vpmaddubsw + dependent vpaddw %5.2f /ns  (%4.0f GOPS: the MAD ceiling)\n", dep, dep * 64);
    printf("vpmaddubsw + independent add  %5.2f /ns  (%4.0f GOPS)\n", indep, indep * 64);
    printf("vpmaddubsw + vpand / vpshufb / vpsadbw / vfmadd231ps, both kinds: %.2f / %.2f / %.2f / %.2f /ns\n",
           co[0], co[1], co[2], co[3]);
    static const int shapes[][2] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
    for (int si = 0; si < 3; si++) {
        int rows = shapes[si][0], cols = shapes[si][1], kp = bn_kpad(cols);
        int8_t *w = malloc((size_t)rows * cols), *x = malloc((size_t)n * kp);
        int32_t *y = malloc((size_t)n * rows * 4);
        uint8_t *p = bn_alloc(K->packed_size(rows, cols));
        if (!w || !x || !y || !p) { fprintf(stderr, "avx2_ceiling: out of memory\n"); return 1; }
        uint64_t s = 12345;
        for (size_t i = 0; i < (size_t)rows * cols; i++) { s = s * 6364136223846793005ull + 1; w[i] = (int8_t)((s >> 33) % 3) - 1; }
        for (size_t i = 0; i < (size_t)n * kp; i++) { s = s * 6364136223846793005ull + 1; x[i] = i % kp < (size_t)cols ? (int8_t)(s >> 40) : 0; }
        K->pack(w, rows, cols, p);
        double best = 1e30, sum = 0;
        for (int it = 0; it <= reps; it++) { /* it == 0: warm-up */
            double t0 = cpu_now();
            K->tgemm(p, rows, cols, 0, rows, x, kp, n, y, rows);
            double dt = cpu_now() - t0;
            if (it == 0) continue;
            sum += dt;
            if (dt < best) best = dt;
        }
        double g = 2.0 * rows * cols * n / best / 1e9;
        printf("%s tgemm %5dx%-5d n=%d  %6.1f GOPS (min)  %6.1f (mean)  %3.0f%% of the MAD ceiling\n", K->name, rows, cols, n,
               g, 2.0 * rows * cols * n * reps / sum / 1e9, 100 * g / (dep * 64));
        bn_free(p); free(w); free(x); free(y);
    }
    return 0;
}
