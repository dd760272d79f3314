/* tests/cuda/bench_cuda.c — bandwidth of the CUDA ternary GEMV (batch 1) and LM-head kernels on
 * the BitNet b1.58 2B-4T shapes, against a device-to-device copy probe measured in the same run.
 * Each shape is timed three ways, over enough distinct weight copies (>= 8x the L2) that no
 * pass is served from cache: (a) one launch over all copies stacked as one tall matrix (the
 * kernel's streaming rate), (b) one launch per copy captured in a CUDA graph (what a decode
 * step pays per matrix), (c) the same launches issued one by one on a stream. GB/s counts the
 * packed weight bytes (the activations are a few KB and stay in cache). Medians of 20 runs.
 * Then the decode attention (us per layer, cluster path on and off). Prints a table; no checks
 * (tests/cuda/test_cuda.c checks the results). Not: a model bench. */
#include "backend/cuda/bn_cuda.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/util.h"
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define REPS 20
#define DIE(...) do { fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } while (0)
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) DIE("%s: %s", #x, cudaGetErrorString(e_)); } while (0)
#define BK(x) do { if ((x) != BITNET_OK) DIE("%s: %s", #x, bitnet_last_error()); } while (0)

static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

typedef void (*work_fn)(void *arg, cudaStream_t s);
/* median milliseconds of fn over REPS runs after 3 warm-ups */
static double time_ms(work_fn fn, void *arg, cudaStream_t s) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    double t[REPS];
    for (int i = -3; i < REPS; i++) {
        CK(cudaEventRecord(a, s));
        fn(arg, s);
        CK(cudaEventRecord(b, s));
        CK(cudaEventSynchronize(b));
        float ms; CK(cudaEventElapsedTime(&ms, a, b));
        if (i >= 0) t[i] = ms;
    }
    qsort(t, REPS, sizeof t[0], cmpd);
    cudaEventDestroy(a); cudaEventDestroy(b);
    return t[REPS / 2];
}

typedef struct {
    uint8_t *w; int rows, cols, copies; size_t mbytes;
    int8_t *xq; float *xs; int32_t *xsum; float *y;
    cudaGraphExec_t g;
    /* head */
    const void *hw; int hkind; float *hx;
} job;

static void run_stacked(void *p, cudaStream_t s) {
    job *j = p;
    bn_cu_tmm m = {j->w, j->rows * j->copies, 1.f, j->y, NULL, NULL};
    BK(bn_cu_tgemm(&m, 1, j->cols, j->xq, j->xs, j->xsum, 1, s));
}
static void run_each(void *p, cudaStream_t s) {
    job *j = p;
    for (int c = 0; c < j->copies; c++) {
        bn_cu_tmm m = {j->w + (size_t)c * j->mbytes, j->rows, 1.f, j->y, NULL, NULL};
        BK(bn_cu_tgemm(&m, 1, j->cols, j->xq, j->xs, j->xsum, 1, s));
    }
}
static void run_graph(void *p, cudaStream_t s) { job *j = p; CK(cudaGraphLaunch(j->g, s)); }
static void run_head(void *p, cudaStream_t s) {
    job *j = p;
    for (int c = 0; c < j->copies; c++) BK(bn_cu_head((const char *)j->hw + (size_t)c * j->mbytes, j->hkind, j->rows, j->cols, j->hx, 1, j->y, s));
}

/* Decode attention of the 2B-4T (20 heads, 5 kv heads, hd 128, RoPE and the KV store inside, a
 * 4096-position grid as in a decode graph): 30 launches on 30 distinct caches in one CUDA graph,
 * us per launch (median of REPS graph runs), with the cluster path off and its variants 1..4 (sm_90+). */
typedef struct { float *q, *k, *v, *kc, *vc, *cs, *sn, *ws, *out; int32_t *seq, *pos; cudaGraphExec_t g; } attjob;
static void run_att(void *p, cudaStream_t s) { attjob *a = p; CK(cudaGraphLaunch(a->g, s)); }
static void bench_attention(cudaStream_t s) {
    enum { L = 30, NH = 20, NKV = 5, HD = 128, CTX = 4096 };
    size_t kvd = NKV * HD, csz = (size_t)CTX * kvd;
    attjob a;
    CK(cudaMalloc((void **)&a.kc, csz * L * 4)); CK(cudaMalloc((void **)&a.vc, csz * L * 4));
    CK(cudaMemset(a.kc, 0x3c, csz * L * 4)); CK(cudaMemset(a.vc, 0x3c, csz * L * 4));  /* ~0.01 everywhere */
    CK(cudaMalloc((void **)&a.q, NH * HD * 4)); CK(cudaMemset(a.q, 0x3c, NH * HD * 4));
    CK(cudaMalloc((void **)&a.k, kvd * 4)); CK(cudaMemset(a.k, 0x3c, kvd * 4));
    CK(cudaMalloc((void **)&a.v, kvd * 4)); CK(cudaMemset(a.v, 0x3c, kvd * 4));
    CK(cudaMalloc((void **)&a.cs, (size_t)CTX * HD / 2 * 4)); CK(cudaMemset(a.cs, 0x3c, (size_t)CTX * HD / 2 * 4));
    CK(cudaMalloc((void **)&a.sn, (size_t)CTX * HD / 2 * 4)); CK(cudaMemset(a.sn, 0, (size_t)CTX * HD / 2 * 4));
    CK(cudaMalloc((void **)&a.ws, bn_cu_attention_ws(1, NH, HD) * 4)); CK(cudaMemset(a.ws, 0, bn_cu_attention_ws(1, NH, HD) * 4));
    CK(cudaMalloc((void **)&a.out, NH * HD * 4));
    CK(cudaMalloc((void **)&a.seq, 4)); CK(cudaMemset(a.seq, 0, 4));
    CK(cudaMalloc((void **)&a.pos, 4));
    int had = bn_cu_get_cluster();
    static const int pv[] = {0, 600, 2000, 4000};
    for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++) {
        CK(cudaMemcpy(a.pos, &pv[i], 4, cudaMemcpyHostToDevice));
        double us[5] = {0, 0, 0, 0, 0};
        for (int cl = 0; cl <= (had ? 4 : 0); cl++) {
            bn_cu_set_cluster(cl);
            cudaGraph_t gr;
            CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
            for (int l = 0; l < L; l++)
                BK(bn_cu_attention_fused(a.q, a.k, a.v, a.kc + (size_t)l * csz, a.vc + (size_t)l * csz, csz, 1, NH, NKV, HD, a.seq, a.pos, CTX - 1,
                                         a.cs, a.sn, a.ws, a.out, s));
            CK(cudaStreamEndCapture(s, &gr));
            CK(cudaGraphInstantiate(&a.g, gr, 0));
            us[cl] = time_ms(run_att, &a, s) * 1e3 / L;
            cudaGraphExecDestroy(a.g); cudaGraphDestroy(gr);
        }
        printf("attention decode 20/5 x 128, pos %4d, 4096-position grid, us per layer: plain %6.2f | cluster variants 1..4: %6.2f %6.2f %6.2f %6.2f%s\n",
               pv[i], us[0], us[1], us[2], us[3], us[4], had ? "" : " (no cluster path on this device)");
    }
    bn_cu_set_cluster(had);
    cudaFree(a.kc); cudaFree(a.vc); cudaFree(a.q); cudaFree(a.k); cudaFree(a.v); cudaFree(a.cs); cudaFree(a.sn); cudaFree(a.ws);
    cudaFree(a.out); cudaFree(a.seq); cudaFree(a.pos);
}

int main(int argc, char **argv) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda bench: %s\n", why ? why : "no GPU"); return 0; }
    char name[256]; size_t mem; int sms, cc;
    BK(bn_cu_device_open(0, name, sizeof name, &mem, &sms, &cc));
    struct cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
    size_t l2 = (size_t)prop.l2CacheSize;
    double probe = 0;
    BK(bn_cu_copy_probe((size_t)1 << 30, 10, &probe));
    printf("# %s, %d SMs, L2 %.0f MB; device-to-device copy probe (1 GiB, read+write): %.0f GB/s\n", name, sms, l2 / 1e6, probe);
    cudaStream_t s; CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    static const int shapes[][2] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}, {13824, 2560}};
    printf("%-12s %8s %7s | %-20s | %-20s | %-20s\n", "shape", "MB", "copies", "stacked GB/s (%)", "graph GB/s (%)", "stream GB/s (%)");
    int8_t *xq; float *xs; int32_t *xsum; float *y;
    CK(cudaMalloc((void **)&xq, 16384)); CK(cudaMemset(xq, 3, 16384));
    CK(cudaMalloc((void **)&xs, 4)); CK(cudaMalloc((void **)&xsum, 4)); CK(cudaMemset(xsum, 0, 4));
    float one = 1.f; CK(cudaMemcpy(xs, &one, 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc((void **)&y, (size_t)128256 * 4 * 16));
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        job j = {0};
        j.rows = shapes[i][0]; j.cols = shapes[i][1];
        j.mbytes = bn_cu_tern_bytes(j.rows, j.cols);
        j.copies = (int)((8 * l2 + j.mbytes - 1) / j.mbytes);
        if (j.copies < 8) j.copies = 8;
        j.xq = xq; j.xs = xs; j.xsum = xsum; j.y = y;
        size_t tot = j.mbytes * j.copies;
        CK(cudaMalloc((void **)&j.w, tot));
        /* random codes 0..2 in every 2-bit field */
        uint8_t *h = malloc(tot);
        uint64_t r = 88172645463325252ull;
        for (size_t b = 0; b < tot; b++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; unsigned v = 0; for (int f = 0; f < 4; f++) v |= (unsigned)((r >> (8 * f)) % 3) << (2 * f); h[b] = (uint8_t)v; }
        CK(cudaMemcpy(j.w, h, tot, cudaMemcpyHostToDevice));
        free(h);
        if ((size_t)j.rows * j.copies * 4 > (size_t)128256 * 4 * 16) DIE("y too small");
        double t_st = time_ms(run_stacked, &j, s);
        cudaGraph_t gr;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        run_each(&j, s);
        CK(cudaStreamEndCapture(s, &gr));
        CK(cudaGraphInstantiate(&j.g, gr, 0));
        double t_gr = time_ms(run_graph, &j, s);
        double t_ea = time_ms(run_each, &j, s);
        double gb = (double)tot / 1e9;
        char sh[32]; snprintf(sh, sizeof sh, "%dx%d", j.rows, j.cols);
        printf("%-12s %8.2f %7d | %8.0f (%5.1f%%)     | %8.0f (%5.1f%%)     | %8.0f (%5.1f%%)\n", sh, j.mbytes / 1e6, j.copies,
               gb / (t_st * 1e-3), 100 * gb / (t_st * 1e-3) / probe, gb / (t_gr * 1e-3), 100 * gb / (t_gr * 1e-3) / probe,
               gb / (t_ea * 1e-3), 100 * gb / (t_ea * 1e-3) / probe);
        cudaGraphExecDestroy(j.g); cudaGraphDestroy(gr);
        cudaFree(j.w);
    }
    /* LM head of the 2B-4T: 128256 x 2560, bf16, q8 and q4, batch 1 */
    float *hx; CK(cudaMalloc((void **)&hx, 2560 * 4));
    { float *xh = malloc(2560 * 4); for (int i = 0; i < 2560; i++) xh[i] = (float)((i * 37) % 101) / 50.f - 1.f; CK(cudaMemcpy(hx, xh, 2560 * 4, cudaMemcpyHostToDevice)); free(xh); }
    static const int kinds[3] = {BN_W_BF16, BN_CU_HEAD_Q8, BN_CU_HEAD_Q4};
    for (int k = 0; k < 3; k++) {
        job j = {0};
        j.rows = 128256; j.cols = 2560; j.hkind = kinds[k]; j.hx = hx; j.y = y;
        j.mbytes = k == 0 ? (size_t)j.rows * j.cols * 2 : k == 1 ? bn_hq8_size(j.rows, j.cols) : bn_hq4_size(j.rows, j.cols);
        j.copies = 2;
        void *w; CK(cudaMalloc(&w, j.mbytes * j.copies)); CK(cudaMemset(w, 0x11, j.mbytes * j.copies));
        j.hw = w;
        double t = time_ms(run_head, &j, s);
        double gb = (double)j.mbytes * j.copies / 1e9;
        printf("head %-7s %8.1f %7d | %8.0f (%5.1f%%)  (%.1f us per head pass)\n", k == 2 ? "q4" : k ? "q8" : "bf16", j.mbytes / 1e6, j.copies,
               gb / (t * 1e-3), 100 * gb / (t * 1e-3) / probe, t * 1e3 / j.copies);
        cudaFree(w);
    }
    bench_attention(s);
    (void)argc; (void)argv;
    return 0;
}
