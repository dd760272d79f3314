/* decode_ab.c — decode timing for A/B comparisons on a shared, noisy machine: one synthetic
 * model, per-token times of single-token bitnet_ctx_eval (best and median of TOKENS tokens,
 * after a warm-up), next to a read-bandwidth probe taken in the same process just before (best
 * of 12 passes over 1 GiB split over the threads: the fraction best-token weight GB/s / probe
 * is the number to compare). Builds against any build's libbitnet.a, so an older build and a
 * newer one can be run alternately. Not built by make and not a test.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude tests/tools/decode_ab.c build/libbitnet.a -lcjson -lpcre2-8 -lm -lpthread -o /tmp/decode_ab
 *   /tmp/decode_ab ISA exact|q8|q4 THREADS TOKENS [PRESET]
 * Prints one line: isa head threads probe GB/s, best and median token tok/s, weight GB/s of the
 * best token and its fraction of the probe. */
#include "bitnet.h"
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

typedef struct { const uint64_t *p; size_t n; uint64_t s; } part;
static void *rd(void *a_) {
    part *a = a_;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 8 <= a->n; i += 8) { s0 += a->p[i] ^ a->p[i + 4]; s1 += a->p[i + 1] ^ a->p[i + 5]; s2 += a->p[i + 2] ^ a->p[i + 6]; s3 += a->p[i + 3] ^ a->p[i + 7]; }
    a->s = s0 + s1 + s2 + s3;
    return NULL;
}
static double probe(int nt) {
    size_t len = (size_t)1 << 30, n = len / 8;
    uint64_t *b = malloc(len);
    if (!b) return 0;
    memset(b, 1, len);
    double best = 1e30;
    for (int r = 0; r < 12; r++) {
        part pa[64]; pthread_t th[64];
        double t0 = now();
        for (int i = 0; i < nt; i++) { pa[i] = (part){b + n / nt * i, n / nt, 0}; if (i) pthread_create(&th[i], NULL, rd, &pa[i]); }
        rd(&pa[0]);
        for (int i = 1; i < nt; i++) pthread_join(th[i], NULL);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    free(b);
    return len / best / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: decode_ab ISA exact|q8|q4 THREADS TOKENS [PRESET]\n"); return 2; }
    const char *isa = argv[1], *head = argv[2], *preset = argc > 5 ? argv[5] : "2b-4t";
    int nt = atoi(argv[3]), T = atoi(argv[4]);
    if (nt < 1 || nt > 64 || T < 1) return 2;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = isa;
    bitnet_model *m;
    if (bitnet_model_synthetic(preset, 1234, &mp, &m)) { fprintf(stderr, "%s\n", bitnet_last_error()); return 1; }
    if (strcmp(head, "exact") && bitnet_model_set_head(m, !strcmp(head, "q8") ? BITNET_HEAD_Q8 : BITNET_HEAD_Q4)) return 1;
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    double bw = probe(nt);
    bitnet_ctx_params cp = {.n_ctx = T + 8, .n_threads = nt};
    bitnet_ctx *c;
    if (bitnet_ctx_new(m, &cp, &c)) return 1;
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    double *t = malloc(sizeof(double) * (size_t)T);
    int32_t id = 1;
    for (int i = 0; i < 4; i++) if (bitnet_ctx_eval(c, &id, 1, logits, 0)) return 1;   /* warm-up */
    bitnet_ctx_reset(c);
    for (int i = 0; i < T; i++) {
        id = (int32_t)((i * 7919u + 17) % (unsigned)info.vocab_size);
        double t0 = now();
        if (bitnet_ctx_eval(c, &id, 1, logits, 0)) return 1;
        t[i] = now() - t0;
    }
    qsort(t, (size_t)T, sizeof *t, cmpd);
    double wgb = info.weight_bytes_per_token / t[0] / 1e9;
    printf("%-10s %-5s t=%d probe %6.2f GB/s  best %6.2f tok/s  median %6.2f tok/s  best %6.2f GB/s of weights = %5.1f%% of probe\n",
           info.isa, head, nt, bw, 1 / t[0], 1 / t[T / 2], wgb, 100 * wgb / bw);
    free(t); free(logits); bitnet_ctx_free(c); bitnet_model_free(m);
    return 0;
}
