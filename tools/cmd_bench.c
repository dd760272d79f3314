/* cmd_bench.c — `bitnet bench`: kernel micro-benchmarks and model throughput, each next to the
 * machine's measured read bandwidth at the same thread count (a STREAM-like read probe run in
 * the same process, with as many threads).
 *
 *   bitnet bench --kernels [--isa NAME] [-t 1,2] [--json]
 *       GEMV from DRAM (cycling through enough copies of the weights to defeat the caches) in
 *       GB/s and % of read bandwidth, and GEMM with 128 activation rows in GOPS (2 ops per
 *       multiply-add), at the 2B-4T shapes; the LM head with fgemm bf16 (and the q8/q4 heads).
 *   bitnet bench -m MODEL | --synthetic 2b-4t|1bitllm-large|1bitllm-3b [-t 1,2] [-p 512]
 *       [-n 128] [-r REPS] [--isa NAME] [--head exact|q8|q4] [--json]
 *       pp<p> and tg<n> tokens/s (mean ± stddev over REPS after a warm-up), weight bytes read
 *       per generated token, achieved GB/s, measured read bandwidth and the ratio.
 *       -B 4,8: also tg<n> with that many sequences decoded together (one bitnet_ctx_decode
 *       batch of one token per sequence per step), tokens/s summed over the sequences.
 * The kernels are timed by the library (bitnet_bench.h); the read probe and the model timings
 * are here. Not: a correctness test (tests/test_kernels.c is). */
#include "cli.h"
#include "args.h"
#include "bitnet_bench.h"
#include <unistd.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- read-bandwidth probe ---- */
typedef struct { const uint8_t *buf; size_t len; uint64_t sink[64]; } probe_job;

static size_t probe_pf; /* software prefetch distance of the x86 probes (0: none) */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t pf = probe_pf;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        if (pf) { _mm_prefetch((const char *)p + i + pf, _MM_HINT_T0); _mm_prefetch((const char *)p + i + pf + 64, _MM_HINT_T0); }
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}
__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t pf = probe_pf;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        if (pf) for (int o = 0; o < 256; o += 64) _mm_prefetch((const char *)p + i + pf + o, _MM_HINT_T0);
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    uint64_t t[8]; memcpy(t, &a0, 64);
    return t[0] ^ t[7];
}
#endif
static uint64_t read_c(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) { a0 ^= q[i]; a1 ^= q[i + 1]; a2 ^= q[i + 2]; a3 ^= q[i + 3]; }
    return a0 ^ a1 ^ a2 ^ a3;
}

static void probe_part(probe_job *j, int ith, int nth) {
    size_t chunk = j->len / (size_t)nth / 4096 * 4096;
    const uint8_t *p = j->buf + chunk * (size_t)ith;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) { j->sink[ith % 64] += read_avx512(p, chunk); return; }
    if (__builtin_cpu_supports("avx2")) { j->sink[ith % 64] += read_avx2(p, chunk); return; }
#endif
    j->sink[ith % 64] += read_c(p, chunk);
}

typedef struct { probe_job *j; int ith, nth; } probe_arg;
static void *probe_thread(void *arg) { probe_arg *a = arg; probe_part(a->j, a->ith, a->nth); return NULL; }

/* One pass over the buffer split over nt threads (part 0 on the caller); 0 on success. */
static int probe_pass(probe_job *j, int nt) {
    pthread_t th[512];
    probe_arg pa[512];
    int started = 1;
    for (; started < nt; started++) {
        pa[started] = (probe_arg){j, started, nt};
        if (pthread_create(&th[started], NULL, probe_thread, &pa[started])) break;
    }
    probe_part(j, 0, nt);
    for (int i = 1; i < started; i++) pthread_join(th[i], NULL);
    return started == nt ? 0 : -1;
}

/* Best read bandwidth (GB/s) over a 1 GiB buffer with nt threads: 3 passes each with no
 * software prefetch and with prefetch 4, 8 and 16 KiB ahead (the kernels prefetch too, so the
 * probe must be at least as good at streaming as they are). 0 if it could not be measured. */
static double read_bandwidth(int nt) {
    static double cache[64];
    if (nt < 1 || nt > 512) return 0;
    if (nt < 64 && cache[nt] > 0) return cache[nt];
    size_t len = (size_t)1 << 30;
    uint8_t *buf = aligned_alloc(64, len);
    if (!buf) return 0;
    memset(buf, 1, len);
    probe_job j = {buf, len, {0}};
    double best = 0;
    static const size_t PF[4] = {0, 4096, 8192, 16384};
    for (int r = 0; r < 12; r++) {
        probe_pf = PF[r % 4];
        double t0 = cli_time();
        if (probe_pass(&j, nt)) { best = 0; break; }
        double dt = cli_time() - t0;
        double gbs = (double)(len / (size_t)nt / 4096 * 4096 * (size_t)nt) / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    free(buf);
    if (nt < 64) cache[nt] = best;
    return best;
}

/* ---- kernel micro-benchmarks ---- */
static uint64_t brng = 88172645463325252ull;
static uint32_t brnd(void) { brng ^= brng << 13; brng ^= brng >> 7; brng ^= brng << 17; return (uint32_t)brng; }

static int bench_kernels(const char *isa, const int *ths, int nth, int json, const char *only) {
    const char *const *av = bitnet_kernel_sets();
    static const struct { const char *name; int rows, cols; bitnet_bench_op op; } SH[] = {
        {"attn q/o 2560x2560", 2560, 2560, BITNET_BENCH_TERNARY}, {"attn k/v 640x2560", 640, 2560, BITNET_BENCH_TERNARY},
        {"ffn gate/up 6912x2560", 6912, 2560, BITNET_BENCH_TERNARY}, {"ffn down 2560x6912", 2560, 6912, BITNET_BENCH_TERNARY},
        {"lm head bf16 128256x2560", 128256, 2560, BITNET_BENCH_HEAD_BF16}, {"lm head q8 128256x2560", 128256, 2560, BITNET_BENCH_HEAD_Q8},
        {"lm head q4 128256x2560", 128256, 2560, BITNET_BENCH_HEAD_Q4},
    };
    const int NS = (int)(sizeof SH / sizeof SH[0]);
    if (!json) printf("%-8s %2s  %-26s %10s %8s %7s %10s\n", "isa", "t", "shape", "GEMV GB/s", "mem GB/s", "% mem", "GEMM GOPS");
    for (int ti = 0; ti < nth; ti++) {
        fflush(stdout);
        if (isatty(2)) fprintf(stderr, "\rbench: t=%d measuring read bandwidth (1 GiB)...   ", ths[ti]);
        double bw = read_bandwidth(ths[ti]);
        if (bw <= 0) { fprintf(stderr, "bitnet bench: cannot measure the read bandwidth (1 GiB buffer, %d threads)\n", ths[ti]); return 1; }
        for (int ai = 0; av[ai]; ai++) {
            if (isa ? strcmp(isa, av[ai]) != 0 : !strcmp(av[ai], "ref")) continue;
            for (int s = 0; s < NS; s++) {
                if (only && !strstr(SH[s].name, only)) continue;
                if (isatty(2)) fprintf(stderr, "\r%-60s\rbench: t=%d %s %s...", "", ths[ti], av[ai], SH[s].name);
                bitnet_bench_kernel_result br;
                if (bitnet_bench_kernel(av[ai], SH[s].op, SH[s].rows, SH[s].cols, ths[ti], &br)) return cli_fail("kernel benchmark");
                double gbs = br.gemv_gb_per_s, gops = br.gemm_gops;
                if (json)
                    printf("{\"test\":\"kernel\",\"isa\":\"%s\",\"threads\":%d,\"shape\":\"%s\",\"rows\":%d,\"cols\":%d,"
                           "\"weight_bytes\":%zu,\"gemv_gb_per_s\":%.3f,\"mem_gb_per_s\":%.3f,\"ratio\":%.4f,\"gemm_n\":%d,\"gemm_gops\":%.2f}\n",
                           av[ai], ths[ti], SH[s].name, SH[s].rows, SH[s].cols, br.weight_bytes, gbs, bw, gbs / bw, br.gemm_n, gops);
                else {
                    if (isatty(2)) fprintf(stderr, "\r%-60s\r", "");
                    printf("%-8s %2d  %-26s %10.2f %8.2f %6.1f%% %10.1f\n", av[ai], ths[ti], SH[s].name, gbs, bw, 100 * gbs / bw, gops);
                }
                fflush(stdout);
            }
        }
    }
    return 0;
}

/* ---- model benchmark ---- */
static int g_kv = BITNET_KV_F16;   /* --kv: the KV cache of every benchmark context */

/* Resident memory of this process now, in MiB (/proc/self/statm; 0 where there is none). Not the
 * peak: the read probe's 1 GiB buffer (freed before the runs) would dominate that. */
static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}
static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* Mean tokens/s (and stddev) of tg steps decoding nb sequences in one batch per step. */
static int bench_batched(bitnet_model *m, int threads, int nb, int tg, int reps, const int32_t *ids, int vocab, double *mean, double *sd) {
    bitnet_ctx_params cp = {.n_ctx = tg, .n_threads = threads, .n_seq_max = nb, .kv_type = g_kv};
    bitnet_ctx *c;
    if (bitnet_ctx_new(m, &cp, &c)) return cli_fail("cannot create the context");
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)nb), *seq = malloc(sizeof(int32_t) * (size_t)nb);
    float *lg = malloc(sizeof(float) * (size_t)nb * vocab);
    double *v = calloc((size_t)reps + 1, sizeof(double));
    if (!tok || !seq || !lg || !v) { free(tok); free(seq); free(lg); free(v); bitnet_ctx_free(c); fprintf(stderr, "bitnet bench: out of memory\n"); return 1; }
    for (int r = 0; r <= reps; r++) { /* r == 0: warm-up */
        bitnet_ctx_reset(c);
        double t0 = cli_time();
        for (int i = 0; i < tg; i++) {
            for (int s = 0; s < nb; s++) { tok[s] = ids[(i + s) % tg]; seq[s] = s; }
            bitnet_batch b = {nb, tok, NULL, seq, NULL};
            if (bitnet_ctx_decode(c, &b, lg)) return cli_fail("decode");
        }
        v[r] = (double)nb * tg / (cli_time() - t0);
    }
    stats(reps > 0 ? v + 1 : v, reps > 0 ? reps : 1, mean, sd);
    free(tok); free(seq); free(lg); free(v);
    bitnet_ctx_free(c);
    return 0;
}

static int bench_model(const char *dir, const char *synth, const char *isa, const int *ths, int nth, int pp, int tg,
                       int reps, const char *head, int json, const arg_ints *bs, const char *device) {
    bitnet_model *m = NULL;
    bitnet_status st;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = isa;
    mp.device = device;
    int gpu = device && strcmp(device, "cpu") != 0;
    double gpu_bw = 0;  /* a GPU: its device-to-device copy rate, measured once here */
    if (synth) st = bitnet_model_synthetic(synth, 1234, &mp, &m);
    else st = bitnet_model_load_ex(dir, &mp, &m);
    if (st) return cli_fail("cannot load the model");
    if (gpu && bitnet_device_bandwidth(device, &gpu_bw)) { bitnet_model_free(m); return cli_fail("--device copy probe"); }
    if (strcmp(head, "exact") != 0) {
        if (bitnet_model_set_head(m, !strcmp(head, "q8") ? BITNET_HEAD_Q8 : BITNET_HEAD_Q4)) { bitnet_model_free(m); return cli_fail("--head"); }
    }
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    const char *mname = synth ? synth : dir;
    size_t wbt = info.weight_bytes_per_token;
    int vocab = info.vocab_size;
    /* pp and tg each start from an empty cache: the context needs max(pp, tg) positions. A value
     * left at its default (-1) is clamped to the model's context; one given that does not fit is an error. */
    if (pp > info.max_seq_len || tg > info.max_seq_len) {
        fprintf(stderr, "bitnet bench: %s %d exceeds the model's context of %d positions (use %s %d or less)\n",
                pp > info.max_seq_len ? "-p" : "-n", pp > info.max_seq_len ? pp : tg, info.max_seq_len,
                pp > info.max_seq_len ? "-p" : "-n", info.max_seq_len);
        bitnet_model_free(m); return 2;
    }
    if (pp < 0) pp = info.max_seq_len < 512 ? info.max_seq_len : 512;
    if (tg < 0) tg = info.max_seq_len < 128 ? info.max_seq_len : 128;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(pp + tg + 1));
    float *logits = malloc(sizeof(float) * (size_t)vocab);
    if (!ids || !logits) { free(ids); free(logits); bitnet_model_free(m); fprintf(stderr, "bitnet bench: out of memory\n"); return 1; }
    for (int i = 0; i < pp + tg + 1; i++) ids[i] = (int32_t)(brnd() % (uint32_t)vocab);
    if (!json) printf("model %s  %s %s  head %s  weight bytes/token %.1f MB  (ternary %.1f MB)\n", mname, gpu ? "device" : "isa",
                      gpu ? device : info.isa, head, wbt / 1e6, info.ternary_bytes / 1e6);
    if (!json && gpu) printf("  %s device-to-device copy probe: %.0f GB/s (the %% column is against it)\n", device, gpu_bw);
    fflush(stdout);
    int tty = isatty(2);
    for (int ti = 0; ti < nth; ti++) {
        if (tty) fprintf(stderr, "\rbench: t=%d measuring read bandwidth (1 GiB)...   ", ths[ti]);
        double bw = gpu ? gpu_bw : read_bandwidth(ths[ti]);
        bitnet_ctx_params cp = {.n_ctx = pp > tg ? pp : (tg > 0 ? tg : 1), .n_threads = ths[ti], .kv_type = g_kv};
        bitnet_ctx *c;
        if (bitnet_ctx_new(m, &cp, &c)) return cli_fail("cannot create the context");
        double *v = calloc((size_t)reps + 1, sizeof(double));
        for (int test = 0; test < 2; test++) {
            int cnt = test == 0 ? pp : tg;
            if (cnt <= 0) continue;
            for (int r = 0; r <= reps; r++) { /* r == 0: warm-up */
                if (tty) fprintf(stderr, "\rbench: t=%d %s%d %s %d/%d   ", ths[ti], test ? "tg" : "pp", cnt, r ? "run" : "warm-up", r, reps);
                bitnet_ctx_reset(c);
                double t0 = cli_time();
                if (test == 0) { if (bitnet_ctx_eval(c, ids, pp, logits, 0)) return cli_fail("eval"); }
                else for (int i = 0; i < tg; i++) if (bitnet_ctx_eval(c, ids + i, 1, logits, 0)) return cli_fail("eval");
                v[r] = cnt / (cli_time() - t0);
            }
            if (tty) fprintf(stderr, "\r%60s\r", "");
            double mean, sd;
            if (reps > 0) stats(v + 1, reps, &mean, &sd); else stats(v, 1, &mean, &sd);
            double gbs = test ? mean * (double)wbt / 1e9 : 0;
            char tname[32]; snprintf(tname, sizeof tname, "%s%d", test == 0 ? "pp" : "tg", cnt);
            double gops = 2.0 * (double)info.n_ternary * mean / 1e9; /* ternary GEMM ops/s */
            if (json)
                printf("{\"test\":\"%s\",\"model\":\"%s\",\"isa\":\"%s\",\"head\":\"%s\",\"threads\":%d,\"reps\":%d,"
                       "\"tokens_per_s\":%.3f,\"stddev\":%.3f,\"weight_bytes_per_token\":%zu,\"weight_gb_per_s\":%.3f,"
                       "\"mem_gb_per_s\":%.3f,\"ratio\":%.4f,\"ternary_gops\":%.2f,\"rss_mib\":%.1f}\n",
                       tname, mname, info.isa, head, ths[ti], reps, mean, sd, wbt, test ? gbs : 0.0, bw, test ? gbs / bw : 0.0, gops, rss_mib());
            else if (test)
                printf("  t=%d  %-6s %8.2f ± %5.2f tok/s   %6.2f GB/s of weights   mem %6.2f GB/s   %5.1f%%   rss %.0f MiB\n",
                       ths[ti], tname, mean, sd, gbs, bw, 100 * gbs / bw, rss_mib());
            else
                printf("  t=%d  %-6s %8.2f ± %5.2f tok/s   %7.1f GOPS in the ternary GEMMs\n", ths[ti], tname, mean, sd, gops);
            fflush(stdout);
        }
        free(v);
        bitnet_ctx_free(c);
        for (int bi = 0; bi < bs->n && tg > 0; bi++) {
            double mean, sd;
            if (bench_batched(m, ths[ti], bs->v[bi], tg, reps, ids, vocab, &mean, &sd)) return 1;
            if (json)
                printf("{\"test\":\"tg%d\",\"model\":\"%s\",\"isa\":\"%s\",\"head\":\"%s\",\"threads\":%d,\"reps\":%d,"
                       "\"sequences\":%d,\"tokens_per_s\":%.3f,\"stddev\":%.3f}\n", tg, mname, info.isa, head, ths[ti], reps, bs->v[bi], mean, sd);
            else printf("  t=%d  tg%d x %d sequences %8.2f ± %5.2f tok/s (all sequences)\n", ths[ti], tg, bs->v[bi], mean, sd);
            fflush(stdout);
        }
    }
    free(ids); free(logits);
    bitnet_model_free(m);
    return 0;
}

/* Logit error of the quantized heads against the exact head on one model: n random tokens,
 * all logits; max |diff|, RMS diff relative to the RMS of the exact logits, top-1 agreement. */
static int head_error(const char *dir, const char *isa, int n, int json) {
    bitnet_model *m = NULL;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = isa;
    if (bitnet_model_load_ex(dir, &mp, &m)) return cli_fail("cannot load the model");
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    int V = info.vocab_size;
    if (n > info.max_seq_len) n = info.max_seq_len;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    float *ref = malloc(sizeof(float) * (size_t)n * V), *got = malloc(sizeof(float) * (size_t)n * V);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(brnd() % (uint32_t)V);
    bitnet_ctx_params cp = {.n_ctx = n, .n_threads = 1};
    bitnet_ctx *c;
    if (bitnet_ctx_new(m, &cp, &c)) return cli_fail("cannot create the context");
    if (bitnet_ctx_eval(c, ids, n, ref, 1)) return cli_fail("eval");
    for (int h = 1; h <= 2; h++) {
        if (bitnet_model_set_head(m, (bitnet_head_type)h)) return cli_fail("--head");
        bitnet_ctx_reset(c);
        if (bitnet_ctx_eval(c, ids, n, got, 1)) return cli_fail("eval");
        double mx = 0, se = 0, sr = 0; int agree = 0;
        for (int t = 0; t < n; t++) {
            int ar = 0, ag = 0;
            for (int v = 0; v < V; v++) {
                size_t o = (size_t)t * V + v;
                double d = fabs((double)got[o] - ref[o]);
                if (d > mx) mx = d;
                se += d * d; sr += (double)ref[o] * ref[o];
                if (ref[o] > ref[(size_t)t * V + ar]) ar = v;
                if (got[o] > got[(size_t)t * V + ag]) ag = v;
            }
            agree += ar == ag;
        }
        const char *hn = h == 1 ? "q8" : "q4";
        if (json) printf("{\"test\":\"head_error\",\"model\":\"%s\",\"head\":\"%s\",\"tokens\":%d,\"max_abs\":%.6g,\"rel_rms\":%.6g,\"top1_agree\":%.4f}\n",
                         dir, hn, n, mx, sqrt(se / (sr > 0 ? sr : 1)), (double)agree / n);
        else printf("%s  head %s  %d tokens: max |logit diff| %.4g, relative RMS %.3g, top-1 agreement %d/%d\n",
                    dir, hn, n, mx, sqrt(se / (sr > 0 ? sr : 1)), agree, n);
    }
    bitnet_ctx_free(c);
    free(ids); free(ref); free(got);
    bitnet_model_free(m);
    return 0;
}

static int kernel_set_known(const char *name) {
    for (const char *const *k = bitnet_kernel_sets(); *k; k++) if (!strcmp(*k, name)) return 1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    int kernels = 0, herr = 0, json = 0, pp = -1, tg = -1, reps = 3;
    const char *isa = NULL, *dir = NULL, *synth = NULL, *head = "exact", *only = NULL, *kv = "f16", *device = NULL;
    arg_ints ths = {2, {1, 2}}, bs = {0, {0}};
    const arg_opt opts[] = {
        OPT_FLAG(0, "kernels", &kernels, "kernel micro-benchmarks (GEMV GB/s, GEMM GOPS) at the 2B-4T shapes"),
        OPT_STR('m', "model", &dir, "DIR", "benchmark this model folder"),
        OPT_CHOICE(0, "synthetic", &synth, "2b-4t|1bitllm-large|1bitllm-3b", "benchmark a random model of this shape"),
        OPT_LIST('t', "threads", 1, 512, &ths, "1,2", "thread counts"),
        OPT_LIST('B', "batch", 1, 256, &bs, "4,8", "also tg with this many sequences decoded in one batch per step (default: none)"),
        OPT_INT('p', "n-prompt", 0, 1 << 20, &pp, "N", "prompt tokens for pp (default 512, at most the model's context)"),
        OPT_INT('n', "n-gen", 0, 1 << 20, &tg, "N", "generated tokens for tg (default 128, at most the model's context)"),
        OPT_INT('r', "repetitions", 0, 1000, &reps, "N", "measured runs after a warm-up"),
        OPT_STR(0, "isa", &isa, "NAME", "kernel set (default: the best this CPU has)"),
        OPT_CHOICE(0, "head", &head, "exact|q8|q4", "LM head"),
        OPT_CHOICE(0, "kv", &kv, "f16|f32", "KV cache storage"),
        OPT_FLAG(0, "head-error", &herr, "logit error of the q8/q4 heads against the exact head (-m; -n tokens)"),
        OPT_STR(0, "only", &only, "SUBSTRING", "--kernels: only shapes whose name contains SUBSTRING"),
        OPT_FLAG(0, "json", &json, "one JSON object per row"),
        OPT_STR(0, "device", &device, "cpu|cuda|cuda:N", "run the model there (default cpu); on a GPU the % column is against its copy probe"),
        OPT_END,
    };
    args_spec spec = {"bench",
        "usage: bitnet bench --kernels [--isa NAME] [-t 1,2] [--only SHAPE-SUBSTRING] [--json]\n"
        "       bitnet bench -m MODEL | --synthetic 2b-4t|1bitllm-large|1bitllm-3b [-t 1,2] [-p 512] [-n 128]\n"
        "                    [-r REPS] [--isa NAME] [--head exact|q8|q4] [--kv f16|f32] [-B 4,8] [--device D] [--json]\n"
        "  each row is printed as soon as it is measured\n",
        {opts}, {"options"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (isa && !kernel_set_known(isa)) return args_error(&spec, "kernel set '%s' is not available here", isa), 2;
    g_kv = !strcmp(kv, "f32") ? BITNET_KV_F32 : BITNET_KV_F16;
    if (kernels) return bench_kernels(isa, ths.v, ths.n, json, only);
    if (!dir && !synth) { args_usage(&spec, stderr); return 2; }
    if (herr) { if (!dir) return args_error(&spec, "--head-error needs -m MODEL"), 2; return head_error(dir, isa, tg < 0 ? 128 : tg, json); }
    return bench_model(dir, synth, isa, ths.v, ths.n, pp, tg, reps, head, json, &bs, device);
}
