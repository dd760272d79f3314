/* pp_cputime.c — prompt-processing speed of a random 2B-4T-shaped model (bitnet_model_synthetic)
 * in wall time AND in process CPU time, for a shared machine where other jobs take most of the
 * cores: tokens per CPU-second at one thread is the speed a quiet core would show (less what the
 * other jobs' cache and SMT pressure costs), while `bitnet bench` reports wall time only.
 * Public API only; not built by make, not a test.
 *
 *   cc -O2 -Iinclude tests/tools/pp_cputime.c build/libbitnet.a $(pkg-config --libs libcjson libpcre2-8) -lm -lpthread -o /tmp/pp_cputime
 *   /tmp/pp_cputime ISA PP THREADS REPS        e.g. /tmp/pp_cputime avx2 512 1 2
 * Prints one line per measured eval (a warm-up eval comes first). */
#include "bitnet.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clk(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: pp_cputime ISA PP THREADS REPS\n"); return 2; }
    int pp = atoi(argv[2]), th = atoi(argv[3]), reps = atoi(argv[4]);
    if (pp < 1 || th < 1 || reps < 1) { fprintf(stderr, "pp_cputime: PP, THREADS and REPS must be >= 1\n"); return 2; }
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = argv[1];
    bitnet_model *m;
    if (bitnet_model_synthetic("2b-4t", 1234, &mp, &m)) { fprintf(stderr, "pp_cputime: cannot make the model (set %s?)\n", argv[1]); return 1; }
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    bitnet_ctx_params cp = {.n_ctx = pp, .n_threads = th, .kv_type = BITNET_KV_F16};
    bitnet_ctx *c;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)pp);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    if (!ids || !logits || bitnet_ctx_new(m, &cp, &c)) { fprintf(stderr, "pp_cputime: cannot create the context\n"); return 1; }
    for (int i = 0; i < pp; i++) ids[i] = (int32_t)((i * 7919) % info.vocab_size);
    for (int r = 0; r <= reps; r++) {
        bitnet_ctx_reset(c);
        double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
        if (bitnet_ctx_eval(c, ids, pp, logits, 0)) { fprintf(stderr, "pp_cputime: eval failed\n"); return 1; }
        double w = clk(CLOCK_MONOTONIC) - w0, cpu = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (r > 0)
            printf("%s t=%d pp%d: wall %.2f tok/s, %.2f tok per CPU-second (CPU/wall %.2f)\n", info.isa, th, pp, pp / w, pp / cpu, cpu / w);
    }
    bitnet_ctx_free(c);
    bitnet_model_free(m);
    free(ids); free(logits);
    return 0;
}
