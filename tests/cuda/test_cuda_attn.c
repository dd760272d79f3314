/* tests/cuda/test_cuda_attn.c — the CUDA trainer's flash attention (src/backend/cuda/
 * train_attn.cu, through train_cuda.cu's attn_fwd / attn_bwd ops) against the materialized fp32
 * path of the same ops (BITNET_TRAIN_PREC_PARITY: cuBLAS fp32 GEMMs over the [B,H,T,T]
 * probabilities, itself checked against the CPU trainer by test_cuda_train.c):
 *   - outputs and dq, dk, dv within relative L2 bounds on shapes with head dims 32, 64, 128,
 *     GQA groups 1, 2, 4, and T not a multiple of the 64-row tiles (partial tiles, T = 1..2);
 *     bounds: 1e-4 with the split (two bf16 terms per operand) forward and backward, 2e-2 with
 *     one bf16 term (bf16's 2^-8 rounding, measured ~3e-3);
 *   - the same for the bf16-input kernels (knob fa=2, the fast mode's attention): bound 2e-2;
 *   - the same inputs give the same bits twice (fixed-order sums, no atomics);
 *   - the RoPE folded into the bf16 kernels (knob rf=1) gives the separate rope ops' bits;
 *   - the bf16 kernels' longest-first / cp.async / ldmatrix variant (knob fao=1, the default)
 *     gives the plain kernels' (fao=0) bits.
 * --bench: forward and backward times of the materialized and flash paths at the 125m and 1b
 * bench shapes (B x T = 16 x 1024, 12 heads of 64; 8 x 1024, 16 heads of 128).
 * Without a GPU it prints one skip line. Not: a test of the rest of the trainer. */
#include "t.h"
#include "bitnet_train.h"
#include "train/train.h"
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "backend/cuda/train_cuda.h"
#include <cuda_runtime.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    double r = sqrt(num / (den > 0 ? den : 1e-30));
    return r == r ? r : 1e30;
}

/* A 1-layer model with H heads of hd (KH kv heads) on the GPU in precision prec, attached with
 * knobs (train_cuda.h); NULL on failure (printed). */
static bn_train_model *mk(int H, int KH, int hd, int prec, const char *knobs) {
    bn_config c; memset(&c, 0, sizeof c);
    c.family = BN_FAM_BITNET; c.vocab_size = 16; c.hidden_size = H * hd; c.intermediate_size = 32; c.n_layers = 1;
    c.n_heads = H; c.n_kv_heads = KH; c.head_dim = hd; c.max_pos = 4096; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f;
    c.act = BN_ACT_RELU2; c.tied = 1; c.bos_id = c.eos_id = -1;
    bn_train_model *m;
    if (bn_train_model_new(&c, 0, 1, &m)) { printf("FAIL model: %s\n", bitnet_last_error()); return NULL; }
    bitnet_status s = bn_train_cuda_attach_ex(m, 0, prec, knobs);
    if (s) { printf("FAIL attach: %s\n", bitnet_last_error()); bn_train_model_free(m); return NULL; }
    return m;
}

typedef struct { float *q, *k, *v, *att, *out, *dout, *dq, *dk, *dv; size_t nq, nk, natt; } bufs;
static int bufs_new(bn_train_model *m, int B, int T, bufs *b) {
    const bn_config *c = &m->cfg;
    b->nq = (size_t)B * T * c->n_heads * c->head_dim; b->nk = (size_t)B * T * c->n_kv_heads * c->head_dim;
    b->natt = (size_t)B * c->n_heads * T * T;
    float **p[9] = {&b->q, &b->k, &b->v, &b->att, &b->out, &b->dout, &b->dq, &b->dk, &b->dv};
    size_t n[9] = {b->nq, b->nk, b->nk, b->natt, b->nq, b->nq, b->nq, b->nk, b->nk};
    int ok = 1;
    for (int i = 0; i < 9; i++) ok &= (*p[i] = m->ops->alloc(m, n[i])) != NULL;
    m->B = B; m->T = T;
    return ok;
}
static void bufs_free(bn_train_model *m, bufs *b) {
    float *p[9] = {b->q, b->k, b->v, b->att, b->out, b->dout, b->dq, b->dk, b->dv};
    for (int i = 0; i < 9; i++) m->ops->free(m, p[i]);
}
static void fill(float *h, size_t n, uint64_t *r, float amp) {
    for (size_t i = 0; i < n; i++) { *r = *r * 6364136223846793005ull + 1442695040888963407ull; h[i] = amp * (((int)(*r >> 40) - (1 << 23)) / (float)(1 << 23)); }
}

/* Host results of one forward + backward: out, dq, dk, dv (malloc'd, in that order). */
static float *run_once(bn_train_model *m, int B, int T, const float *hq, const float *hk, const float *hv, const float *hdo) {
    bufs b;
    float *r = NULL;
    if (bufs_new(m, B, T, &b)) {
        cudaMemcpy(b.q, hq, b.nq * 4, cudaMemcpyHostToDevice); cudaMemcpy(b.k, hk, b.nk * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(b.v, hv, b.nk * 4, cudaMemcpyHostToDevice); cudaMemcpy(b.dout, hdo, b.nq * 4, cudaMemcpyHostToDevice);
        m->ops->attn_fwd(m, b.q, b.k, b.v, b.att, b.out);
        m->ops->attn_bwd(m, b.q, b.k, b.v, b.att, b.dout, b.dq, b.dk, b.dv);
        bitnet_status s = m->ops->status(m);
        cudaDeviceSynchronize();
        if (s) printf("# op error: %s\n", bitnet_last_error());
        else if ((r = malloc((2 * b.nq + 2 * b.nk) * sizeof(float)))) {
            cudaMemcpy(r, b.out, b.nq * 4, cudaMemcpyDeviceToHost); cudaMemcpy(r + b.nq, b.dq, b.nq * 4, cudaMemcpyDeviceToHost);
            cudaMemcpy(r + 2 * b.nq, b.dk, b.nk * 4, cudaMemcpyDeviceToHost); cudaMemcpy(r + 2 * b.nq + b.nk, b.dv, b.nk * 4, cudaMemcpyDeviceToHost);
        }
    }
    bufs_free(m, &b);
    return r;
}

static void test_shape(int B, int T, int H, int KH, int hd) {
    bn_train_model *ref = mk(H, KH, hd, BITNET_TRAIN_PREC_PARITY, NULL);
    if (!ref) return;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KH * hd;
    float *hq = malloc(nq * 4), *hk = malloc(nk * 4), *hv = malloc(nk * 4), *hdo = malloc(nq * 4);
    uint64_t r = 1234567 + T * 31 + hd;
    fill(hq, nq, &r, 2.0f); fill(hk, nk, &r, 2.0f); fill(hv, nk, &r, 1.0f); fill(hdo, nq, &r, 1.0f);
    float *want = run_once(ref, B, T, hq, hk, hv, hdo);
    bn_train_model_free(ref);
    const char *knobs[4] = {"fa=1,fs=1,bs=1", "fa=1,fs=1,bs=0", "fa=1,fs=0,bs=0", "fa=2"};
    double bound[4][2] = {{1e-4, 1e-4}, {1e-4, 2e-2}, {2e-2, 2e-2}, {2e-2, 2e-2}};   /* {out, grads} */
    for (int kn = 0; kn < 4 && want; kn++) {
        bn_train_model *m = mk(H, KH, hd, BITNET_TRAIN_PREC_DEFAULT, knobs[kn]);
        if (!m) break;
        float *got = run_once(m, B, T, hq, hk, hv, hdo), *again = kn == 0 || kn == 3 ? run_once(m, B, T, hq, hk, hv, hdo) : NULL;
        char nm[160];
        snprintf(nm, sizeof nm, "flash attention B %d T %d H %d KH %d hd %d (%s)", B, T, H, KH, hd, knobs[kn]);
        if (!got) { CHECK(nm, 0, "the ops failed"); bn_train_model_free(m); continue; }
        double e[4] = {rel_l2(got, want, nq), rel_l2(got + nq, want + nq, nq), rel_l2(got + 2 * nq, want + 2 * nq, nk),
                       rel_l2(got + 2 * nq + nk, want + 2 * nq + nk, nk)};
        CHECK(nm, e[0] <= bound[kn][0] && e[1] <= bound[kn][1] && e[2] <= bound[kn][1] && e[3] <= bound[kn][1],
              "rel L2 out %.2e dq %.2e dk %.2e dv %.2e (bounds %.0e, %.0e)", e[0], e[1], e[2], e[3], bound[kn][0], bound[kn][1]);
        printf("# %s: rel L2 out %.2e dq %.2e dk %.2e dv %.2e\n", nm, e[0], e[1], e[2], e[3]);
        if (again) {
            snprintf(nm, sizeof nm, "flash attention B %d T %d hd %d (%s): same bits twice", B, T, hd, knobs[kn]);
            CHECK(nm, !memcmp(got, again, (2 * nq + 2 * nk) * sizeof(float)), "two runs differ");
        }
        free(got); free(again);
        bn_train_model_free(m);
    }
    free(want); free(hq); free(hk); free(hv); free(hdo);
}

/* RoPE folded into the bf16 flash attention (knob rf=1, train_cuda.h) against the separate rope
 * ops (rf=0), both fa=2: rope q, k; forward; backward; inverse rope dq, dk, as train.c calls
 * them. out, dq, dk, dv bit for bit, and with rf=1 the q buffer still holds the un-rotated
 * input (the rotation really moved into the attention), with rf=0 the rotated one. */
static void test_rope_fold(int B, int T, int H, int KH, int hd) {
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KH * hd, nr = 2 * nq + 2 * nk;
    float *hq = malloc(nq * 4), *hk = malloc(nk * 4), *hv = malloc(nk * 4), *hdo = malloc(nq * 4);
    float *res[2] = {malloc(nr * 4), malloc(nr * 4)}, *qafter[2] = {malloc(nq * 4), malloc(nq * 4)};
    uint64_t r = 7654321 + T * 31 + hd;
    fill(hq, nq, &r, 2.0f); fill(hk, nk, &r, 2.0f); fill(hv, nk, &r, 1.0f); fill(hdo, nq, &r, 1.0f);
    int ok = res[0] && res[1] && qafter[0] && qafter[1];
    for (int rf = 0; rf < 2 && ok; rf++) {
        bn_train_model *m = mk(H, KH, hd, BITNET_TRAIN_PREC_DEFAULT, rf ? "fa=2,rf=1" : "fa=2,rf=0");
        bufs b;
        ok = m && bufs_new(m, B, T, &b);
        if (ok) {
            int N = B * T;
            cudaMemcpy(b.q, hq, nq * 4, cudaMemcpyHostToDevice); cudaMemcpy(b.k, hk, nk * 4, cudaMemcpyHostToDevice);
            cudaMemcpy(b.v, hv, nk * 4, cudaMemcpyHostToDevice); cudaMemcpy(b.dout, hdo, nq * 4, cudaMemcpyHostToDevice);
            m->ops->rope(m, b.q, N, H, 0); m->ops->rope(m, b.k, N, KH, 0);
            m->ops->attn_fwd(m, b.q, b.k, b.v, b.att, b.out);
            m->ops->attn_bwd(m, b.q, b.k, b.v, b.att, b.dout, b.dq, b.dk, b.dv);
            m->ops->rope(m, b.dq, N, H, 1); m->ops->rope(m, b.dk, N, KH, 1);
            bitnet_status s = m->ops->status(m);
            cudaDeviceSynchronize();
            if (s) { printf("# op error: %s\n", bitnet_last_error()); ok = 0; }
            float *o = res[rf];
            cudaMemcpy(o, b.out, nq * 4, cudaMemcpyDeviceToHost); cudaMemcpy(o + nq, b.dq, nq * 4, cudaMemcpyDeviceToHost);
            cudaMemcpy(o + 2 * nq, b.dk, nk * 4, cudaMemcpyDeviceToHost); cudaMemcpy(o + 2 * nq + nk, b.dv, nk * 4, cudaMemcpyDeviceToHost);
            cudaMemcpy(qafter[rf], b.q, nq * 4, cudaMemcpyDeviceToHost);
        }
        if (m) { bufs_free(m, &b); bn_train_model_free(m); }
    }
    char nm[160];
    snprintf(nm, sizeof nm, "RoPE folded into flash attention (rf=1 vs rf=0) B %d T %d H %d KH %d hd %d: out, dq, dk, dv bit for bit", B, T, H, KH, hd);
    CHECK(nm, ok && !memcmp(res[0], res[1], nr * 4), "%s", ok ? "results differ" : "the ops failed");
    snprintf(nm, sizeof nm, "rf=1 leaves q un-rotated, rf=0 rotates it (B %d T %d hd %d)", B, T, hd);
    CHECK(nm, ok && !memcmp(qafter[1], hq, nq * 4) && memcmp(qafter[0], hq, nq * 4), "q after the ops: rf=1 %s, rf=0 %s",
          ok && !memcmp(qafter[1], hq, nq * 4) ? "un-rotated" : "changed", ok && memcmp(qafter[0], hq, nq * 4) ? "rotated" : "unchanged");
    free(hq); free(hk); free(hv); free(hdo); free(res[0]); free(res[1]); free(qafter[0]); free(qafter[1]);
}

/* The bf16 flash attention with knob fao=1 (longest blocks first, cp.async double-buffered
 * tiles, ldmatrix fragments) against fao=0 (the plain kernels), both fa=2: out, dq, dk, dv bit
 * for bit (the same mma sequence and sums); fails if a tile, stage or block mapping is off. */
static void test_opt_bits(int B, int T, int H, int KH, int hd) {
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KH * hd;
    float *hq = malloc(nq * 4), *hk = malloc(nk * 4), *hv = malloc(nk * 4), *hdo = malloc(nq * 4), *res[2] = {NULL, NULL};
    uint64_t r = 4242 + T * 31 + hd;
    if (hq && hk && hv && hdo) {
        fill(hq, nq, &r, 2.0f); fill(hk, nk, &r, 2.0f); fill(hv, nk, &r, 1.0f); fill(hdo, nq, &r, 1.0f);
        for (int o = 0; o < 2; o++) {
            bn_train_model *m = mk(H, KH, hd, BITNET_TRAIN_PREC_DEFAULT, o ? "fa=2,fao=1" : "fa=2,fao=0");
            if (m) res[o] = run_once(m, B, T, hq, hk, hv, hdo);
            bn_train_model_free(m);
        }
    }
    char nm[160];
    snprintf(nm, sizeof nm, "bf16 flash attention fao=1 vs fao=0 B %d T %d H %d KH %d hd %d: out, dq, dk, dv bit for bit", B, T, H, KH, hd);
    CHECK(nm, res[0] && res[1] && !memcmp(res[0], res[1], (2 * nq + 2 * nk) * 4), "%s", res[0] && res[1] ? "results differ" : "the ops failed");
    free(hq); free(hk); free(hv); free(hdo); free(res[0]); free(res[1]);
}

/* ms per forward and per backward (5 timed after 1 warm-up) of one path. */
static void bench_one(const char *shape, const char *what, int B, int T, int H, int hd, int prec, const char *knobs) {
    bn_train_model *m = mk(H, H, hd, prec, knobs);
    if (!m) return;
    bufs b;
    if (bufs_new(m, B, T, &b)) {
        float *h = malloc(b.nq * 4);   /* random inputs (zeros can time faster than real data) */
        uint64_t r = 777;
        float *dst[4] = {b.q, b.k, b.v, b.dout};
        size_t nn[4] = {b.nq, b.nk, b.nk, b.nq};
        for (int i = 0; i < 4 && h; i++) { fill(h, nn[i], &r, i == 3 ? 1.0f : 2.0f); cudaMemcpy(dst[i], h, nn[i] * 4, cudaMemcpyHostToDevice); }
        free(h);
        double tf = 0, tb = 0;
        for (int i = 0; i < 6; i++) {
            cudaDeviceSynchronize(); double t0 = now();
            m->ops->attn_fwd(m, b.q, b.k, b.v, b.att, b.out);
            cudaDeviceSynchronize(); double t1 = now();
            m->ops->attn_bwd(m, b.q, b.k, b.v, b.att, b.dout, b.dq, b.dk, b.dv);
            cudaDeviceSynchronize(); double t2 = now();
            if (i) { tf += t1 - t0; tb += t2 - t1; }
        }
        bitnet_status s = m->ops->status(m);
        double fl = 4.0 * B * H * (double)T * T * hd / 2;   /* causal forward: 2 products, half the square */
        if (s) printf("bench attention %s %s: error %s\n", shape, what, bitnet_last_error());
        else printf("bench attention %s %s: forward %.2f ms (%.0f TFLOP/s), backward %.2f ms (%.0f TFLOP/s at 2.5x)\n", shape, what,
                    1e3 * tf / 5, fl / (tf / 5) / 1e12, 1e3 * tb / 5, 2.5 * fl / (tb / 5) / 1e12);
    }
    bufs_free(m, &b);
    bn_train_model_free(m);
}
static void bench(void) {
    struct { const char *n; int B, H, hd; } sh[2] = {{"125m", 16, 12, 64}, {"1b", 8, 16, 128}};
    for (int i = 0; i < 2; i++) {
        bench_one(sh[i].n, "materialized (default)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_DEFAULT, "fa=0");
        bench_one(sh[i].n, "flash fs=1 bs=0", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_DEFAULT, "fa=1,fs=1,bs=0");
        bench_one(sh[i].n, "flash fs=1 bs=1", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_DEFAULT, "fa=1,fs=1,bs=1");
        bench_one(sh[i].n, "flash fs=0 bs=0", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_DEFAULT, "fa=1,fs=0,bs=0");
        bench_one(sh[i].n, "materialized TF32 (fast, fa=0)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_FAST, "fa=0");
        bench_one(sh[i].n, "flash bf16 inputs, plain kernels (fa=2,fao=0)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_FAST, "fao=0");
        bench_one(sh[i].n, "flash bf16 inputs (fa=2, the fast mode's)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_FAST, NULL);
        bench_one(sh[i].n, "flash bf16 inputs, plain kernels again (fa=2,fao=0)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_FAST, "fao=0");
        bench_one(sh[i].n, "flash bf16 inputs again (fa=2, the fast mode's)", sh[i].B, 1024, sh[i].H, sh[i].hd, BITNET_TRAIN_PREC_FAST, NULL);
    }
}

int main(int argc, char **argv) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda attention test: %s\n", why ? why : "no GPU"); return 0; }
    if (argc > 1 && !strcmp(argv[1], "--bench")) { bench(); return 0; }
    test_shape(2, 100, 4, 2, 32);    /* the golden master's head dim and GQA group */
    test_shape(1, 2, 4, 2, 32);
    test_shape(2, 64, 2, 2, 64);
    test_shape(1, 300, 8, 2, 64);
    test_shape(2, 130, 4, 1, 128);
    test_shape(1, 1024, 2, 2, 128);
    test_rope_fold(2, 100, 4, 2, 32);
    test_rope_fold(1, 300, 8, 2, 64);
    test_rope_fold(2, 130, 4, 1, 128);
    test_rope_fold(1, 1024, 2, 2, 128);
    test_opt_bits(2, 100, 4, 2, 32);
    test_opt_bits(1, 2, 4, 2, 32);
    test_opt_bits(1, 1, 2, 1, 64);
    test_opt_bits(2, 64, 2, 2, 64);
    test_opt_bits(1, 300, 8, 2, 64);
    test_opt_bits(2, 130, 4, 1, 128);
    test_opt_bits(2, 1024, 4, 2, 128);
    test_opt_bits(1, 1000, 4, 4, 128);
    T_DONE();
}
