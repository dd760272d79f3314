/* bench.c — bitnet_bench_kernel (include/bitnet_bench.h): times one CPU kernel of one kernel
 * set at one shape on random weights and activations, with its own thread pool.
 * Not: a correctness check, or a model benchmark (the CLI times bitnet_ctx_eval for those). */
#include "bitnet_bench.h"
#include "core/util.h"
#include "core/threads.h"
#include "core/rng.h"
#include "backend/cpu/kernels/kernels.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    const bn_kernels *k;
    bitnet_bench_op op;
    const uint8_t *w; int rows, cols, n;
    const int8_t *xq; const float *xf; int ldx;
    int32_t *yi; float *yf;
} kjob;

/* One part of the job's kernel call: rows split in blocks of 64 over the pool. */
static void kworker(void *arg, int ith, int nth) {
    kjob *j = arg;
    int a, b;
    bn_split(j->rows, 64, ith, nth, &a, &b);
    if (a >= b) return;
    switch (j->op) {
    case BITNET_BENCH_TERNARY: j->k->tgemm(j->w, j->rows, j->cols, a, b, j->xq, j->ldx, j->n, j->yi, j->rows); break;
    case BITNET_BENCH_HEAD_BF16: j->k->fgemm(j->w, BN_W_BF16, j->rows, j->cols, a, b, j->xf, j->ldx, j->n, j->yf, j->rows); break;
    case BITNET_BENCH_HEAD_Q8: j->k->hgemm_q8(j->w, j->rows, j->cols, a, b, j->xf, j->ldx, j->n, j->yf, j->rows); break;
    default: j->k->hgemm_q4(j->w, j->rows, j->cols, a, b, j->xf, j->ldx, j->n, j->yf, j->rows); break;
    }
}

/* Random weights for op in the kernel's layout into *w (bn_alloc'd, *wsz bytes). */
static bitnet_status make_weights(const bn_kernels *k, bitnet_bench_op op, int rows, int cols, uint64_t *rs,
                                  uint8_t **w, size_t *wsz) {
    size_t ne = (size_t)rows * cols;
    *w = NULL;
    if (op == BITNET_BENCH_TERNARY) {
        int8_t *wi = malloc(ne);
        if (!wi) return bn_err(BITNET_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < ne; i++) wi[i] = (int8_t)((int)(bn_splitmix64(rs) % 3) - 1);
        *wsz = k->packed_size(rows, cols);
        if ((*w = bn_alloc(*wsz))) k->pack(wi, rows, cols, *w);
        free(wi);
        return *w ? BITNET_OK : bn_err(BITNET_ERR_NOMEM, "out of memory");
    }
    uint16_t *h = bn_alloc(ne * 2);
    if (!h) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ne; i++) h[i] = bn_f32_to_bf16(((int)(bn_splitmix64(rs) % 2001) - 1000) * 1e-3f);
    if (op == BITNET_BENCH_HEAD_BF16) { *w = (uint8_t *)h; *wsz = ne * 2; return BITNET_OK; }
    *wsz = op == BITNET_BENCH_HEAD_Q8 ? k->hq8_size(rows, cols) : k->hq4_size(rows, cols);
    if ((*w = bn_alloc(*wsz))) {
        if (op == BITNET_BENCH_HEAD_Q8) k->hq8_quant(h, BN_W_BF16, rows, cols, *w);
        else k->hq4_quant(h, BN_W_BF16, rows, cols, *w);
    }
    bn_free(h);
    return *w ? BITNET_OK : bn_err(BITNET_ERR_NOMEM, "out of memory");
}

bitnet_status bitnet_bench_kernel(const char *kernels, bitnet_bench_op op, int rows, int cols, int n_threads,
                                  bitnet_bench_kernel_result *out) {
    enum { NG = 128 };
    memset(out, 0, sizeof *out);
    if (rows <= 0 || cols <= 0 || n_threads <= 0 || n_threads > 4096)
        return bn_err(BITNET_ERR_ARG, "bench: bad shape %dx%d or thread count %d", rows, cols, n_threads);
    if (op < BITNET_BENCH_TERNARY || op > BITNET_BENCH_HEAD_Q4) return bn_err(BITNET_ERR_ARG, "bench: unknown op %d", (int)op);
    const bn_kernels *k = kernels && *kernels ? bn_kernels_by_name(kernels) : bn_kernels_default();
    if (!k) return bn_err(BITNET_ERR_UNSUPPORTED, "kernel set '%s' is not available on this machine", kernels);
    bn_pool *pool;
    bitnet_status st = bn_pool_new(n_threads, &pool);
    if (st) return st;
    uint64_t rs = 88172645463325252ull;
    size_t wsz = 0;
    uint8_t *w1;
    if ((st = make_weights(k, op, rows, cols, &rs, &w1, &wsz))) { bn_pool_free(pool); return st; }
    /* copies to exceed the caches: at least 512 MiB of weights in rotation */
    int ncopy = (int)(((size_t)512 << 20) / wsz) + 1;
    if (ncopy > 1024) ncopy = 1024;
    uint8_t **cp = calloc((size_t)ncopy, sizeof *cp);
    int kp = bn_kpad(cols);
    int8_t *xq = bn_alloc((size_t)NG * kp);
    float *xf = bn_alloc((size_t)NG * kp * 4);
    int32_t *yi = bn_alloc((size_t)NG * rows * 4);
    float *yf = bn_alloc((size_t)NG * rows * 4);
    if (cp) {
        cp[0] = w1;
        for (int c = 1; c < ncopy; c++) {
            if (!(cp[c] = bn_alloc(wsz))) { ncopy = c; break; }
            memcpy(cp[c], w1, wsz);
        }
    }
    if (!cp || !xq || !xf || !yi || !yf) { st = bn_err(BITNET_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < (size_t)NG * kp; i++) {
        xq[i] = (int8_t)(i % kp < (size_t)cols ? (uint32_t)bn_splitmix64(&rs) : 0);
        xf[i] = (float)((int)(bn_splitmix64(&rs) % 2001) - 1000) * 1e-3f;
    }
    kjob j = {k, op, NULL, rows, cols, 1, xq, xf, kp, yi, yf};
    /* GEMV, cold */
    int iters = 0; double t0 = bn_time(), dt;
    do { j.w = cp[iters % ncopy]; bn_pool_run(pool, kworker, &j); iters++; dt = bn_time() - t0; }
    while (dt < 0.5 || iters < ncopy);
    out->weight_bytes = wsz;
    out->gemv_gb_per_s = (double)wsz * iters / dt / 1e9;
    /* GEMM, NG rows, hot weights */
    j.w = w1; j.n = NG;
    double tmin = op == BITNET_BENCH_TERNARY ? 0.5 : 0.0;
    iters = 0; t0 = bn_time();
    do { bn_pool_run(pool, kworker, &j); iters++; dt = bn_time() - t0; } while (dt < tmin);
    out->gemm_n = NG;
    out->gemm_gops = 2.0 * rows * cols * NG * iters / dt / 1e9;
done:
    if (cp) for (int c = 0; c < ncopy; c++) bn_free(cp[c]);
    else bn_free(w1);
    free(cp); bn_free(xq); bn_free(xf); bn_free(yi); bn_free(yf);
    bn_pool_free(pool);
    return st;
}
