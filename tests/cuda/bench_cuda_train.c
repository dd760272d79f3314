/* tests/cuda/bench_cuda_train.c [125m|1b ...] — speed of the CUDA trainer: tokens/s and MFU of
 * QAT steps (forward, backward, clip, AdamW) of fresh BitNet models on random tokens, against
 * the dense bf16 peak measured in the same run (cuBLAS bf16 GEMM 8192^3, fp32 accumulate).
 * MFU counts the model FLOPs of bn_train_flops_per_token ("6N": BitLinear matrices + head, no
 * attention). Shapes: 125m = hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000;
 * 1b = hidden 2048, 18 layers, 16 heads, ffn 5632, vocab 32000; T = 1024, relu2, tied.
 * BENCH_B=N overrides the batch, BENCH_STEPS=N the timed steps (5), BENCH_PREC=fast|parity the
 * precision (bitnet_train.h BITNET_TRAIN_PREC_*; default: default), BENCH_KNOBS the trainer's
 * measuring knobs (train_cuda.h, e.g. i8=0), BENCH_PROFILE=1 adds a per-op time table of one
 * more (serialized) step. Weights are filled from a
 * fast LCG (not Box-Muller: the speed does not depend on the values). Not: a correctness test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bitnet_train.h"
#include "train/train.h"
#include "train/train_loop.h"
#include "train/data.h"
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "backend/cuda/train_cuda.h"
#include "core/util.h"
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* Dense bf16 tensor-core peak: median-free mean of 10 8192^3 GEMMs after 3 warm-ups (TFLOP/s). */
static double peak_bf16(void) {
    int n = 8192;
    void *a, *b, *c;
    cudaMalloc(&a, (size_t)n * n * 2); cudaMalloc(&b, (size_t)n * n * 2); cudaMalloc(&c, (size_t)n * n * 4);
    cudaMemset(a, 0x3c, (size_t)n * n * 2); cudaMemset(b, 0x3c, (size_t)n * n * 2);
    cublasHandle_t h; cublasCreate(&h);
    float al = 1, be = 0;
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    for (int i = 0; i < 3; i++) cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &al, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &be, c, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cudaEventRecord(e0, 0);
    for (int i = 0; i < 10; i++) cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &al, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &be, c, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cudaEventRecord(e1, 0); cudaEventSynchronize(e1);
    float ms; cudaEventElapsedTime(&ms, e0, e1);
    cublasDestroy(h); cudaFree(a); cudaFree(b); cudaFree(c);
    return 2.0 * n * n * (double)n * 10 / (ms * 1e-3) / 1e12;
}

/* ---- BENCH_PROFILE=1: one more step with every op wrapped in device syncs (serialized, so the
 * per-op times add up to a bit more than a plain step); times summed by op (and by weight name
 * for the BitLinear ops, by width for the norms). */
static const bn_train_ops *P0;
static struct { char name[64]; double t; int n; } PT[128];
static int NPT;
static double pt0;
static void p_begin(void) { cudaDeviceSynchronize(); pt0 = now(); }
static void p_end(const char *fmt, const char *a, int d) {
    cudaDeviceSynchronize();
    double dt = now() - pt0;
    char nm[64];
    snprintf(nm, sizeof nm, fmt, a, d);
    int i;
    for (i = 0; i < NPT && strcmp(PT[i].name, nm); i++) {}
    if (i == NPT) { if (NPT == 128) return; snprintf(PT[NPT].name, 64, "%s", nm); PT[NPT].t = 0; PT[NPT++].n = 0; }
    PT[i].t += dt; PT[i].n++;
}
static const char *wname(bn_train_model *m, int widx) {
    const char *n = m->tp[widx].name, *p = strstr(n, "layers.");
    if (p && (p = strchr(p + 7, '.'))) n = p + 1;
    return n;
}
static void w_rms_fwd(bn_train_model *m, const float *x, const float *w, float *y, float *rstd, float *yq, int N, int D) { p_begin(); P0->rmsnorm_fwd(m, x, w, y, rstd, yq, N, D); p_end("rmsnorm_fwd%s D=%d", yq ? "+quant" : "", D); }
static void w_rms_bwd(bn_train_model *m, const float *dy, const float *x, const float *w, const float *rstd, float *dx, float *dw, int N, int D, int acc) { p_begin(); P0->rmsnorm_bwd(m, dy, x, w, rstd, dx, dw, N, D, acc); p_end("rmsnorm_bwd%s D=%d", "", D); }
static void w_lin_fwd(bn_train_model *m, const float *x, int widx, float *y, int N, int acc) { p_begin(); P0->linear_fwd(m, x, widx, y, N, acc); p_end("linear_fwd %s%.0d", wname(m, widx), 0); }
static void w_lin_bwd(bn_train_model *m, const float *dy, const float *x, int widx, float *dx, int N, int acc) { p_begin(); P0->linear_bwd(m, dy, x, widx, dx, N, acc); p_end("linear_bwd %s%.0d", wname(m, widx), 0); }
static void w_rope(bn_train_model *m, float *x, int N, int nh, int inv) { p_begin(); P0->rope(m, x, N, nh, inv); p_end("rope%s%.0d", inv ? " bwd" : "", 0); }
static void w_attn_fwd(bn_train_model *m, const float *q, const float *k, const float *v, float *att, float *out) { p_begin(); P0->attn_fwd(m, q, k, v, att, out); p_end("attn_fwd%s%.0d", "", 0); }
static void w_attn_bwd(bn_train_model *m, const float *q, const float *k, const float *v, const float *att, const float *dout, float *dq, float *dk, float *dv) { p_begin(); P0->attn_bwd(m, q, k, v, att, dout, dq, dk, dv); p_end("attn_bwd%s%.0d", "", 0); }
static void w_glu_fwd(bn_train_model *m, const float *g, const float *u, float *h, int n) { p_begin(); P0->glu_fwd(m, g, u, h, n); p_end("glu_fwd%s%.0d", "", 0); }
static void w_glu_bwd(bn_train_model *m, const float *g, const float *u, const float *dh, float *dg, float *du, int n) { p_begin(); P0->glu_bwd(m, g, u, dh, dg, du, n); p_end("glu_bwd%s%.0d", "", 0); }
static void w_emb_fwd(bn_train_model *m, int widx, const int32_t *ids, int N, float *x) { p_begin(); P0->embed_fwd(m, widx, ids, N, x); p_end("embed_fwd%s%.0d", "", 0); }
static void w_emb_bwd(bn_train_model *m, int widx, const int32_t *ids, int N, const float *dx) { p_begin(); P0->embed_bwd(m, widx, ids, N, dx); p_end("embed_bwd%s%.0d", "", 0); }
static void w_ce_fwd(bn_train_model *m, float *l, const int32_t *tg, float *rl, int N) { p_begin(); P0->ce_fwd(m, l, tg, rl, N); p_end("ce_fwd%s%.0d", "", 0); }
static void w_ce_bwd(bn_train_model *m, float *l, const int32_t *tg, int N, float ds) { p_begin(); P0->ce_bwd(m, l, tg, N, ds); p_end("ce_bwd%s%.0d", "", 0); }
static void w_head_fwd(bn_train_model *m, int widx, const float *x, float *l, int N) { p_begin(); P0->head_fwd(m, widx, x, l, N); p_end("head_fwd%s%.0d", "", 0); }
static void w_head_bwd(bn_train_model *m, int widx, const float *dl, const float *x, float *dx, int N) { p_begin(); P0->head_bwd(m, widx, dl, x, dx, N); p_end("head_bwd%s%.0d", "", 0); }
static void w_copy(bn_train_model *m, float *d, const float *s, size_t n) { p_begin(); P0->copy(m, d, s, n); p_end("copy%s%.0d", "", 0); }
static void w_wquant(bn_train_model *m) { p_begin(); P0->wquant(m); p_end("wquant%s%.0d", "", 0); }
static void w_zero(bn_train_model *m) { p_begin(); P0->zero_grad(m); p_end("zero_grad%s%.0d", "", 0); }
static bn_train_ops PW;
static void profile_step(bn_train_model *m, bn_data *d, bn_trainer *tr, int B, int T) {
    P0 = m->ops; NPT = 0;
    PW = *m->ops;
    PW.rmsnorm_fwd = w_rms_fwd; PW.rmsnorm_bwd = w_rms_bwd; PW.linear_fwd = w_lin_fwd; PW.linear_bwd = w_lin_bwd; PW.rope = w_rope;
    PW.attn_fwd = w_attn_fwd; PW.attn_bwd = w_attn_bwd; PW.glu_fwd = w_glu_fwd; PW.glu_bwd = w_glu_bwd; PW.embed_fwd = w_emb_fwd;
    PW.embed_bwd = w_emb_bwd; PW.ce_fwd = w_ce_fwd; PW.ce_bwd = w_ce_bwd; PW.head_fwd = w_head_fwd; PW.head_bwd = w_head_bwd;
    PW.copy = w_copy; PW.wquant = w_wquant; PW.zero_grad = w_zero;
    m->ops = &PW;
    float loss;
    double t0 = now();
    bn_train_zero_grad(m);
    bitnet_status s = bn_data_next(d, tr->in, tr->tg);
    if (!s) s = bn_train_forward(m, tr->in, tr->tg, B, T, &loss);
    if (!s) s = bn_train_backward(m, 1.0f);
    cudaDeviceSynchronize();
    double tot = now() - t0;
    m->ops = P0;
    if (s) { printf("profile: %s\n", bitnet_last_error()); return; }
    double sum = 0;
    for (int i = 0; i < NPT; i++) sum += PT[i].t;
    for (int i = 0; i < NPT; i++)   /* sort by time, descending */
        for (int j = i + 1; j < NPT; j++) if (PT[j].t > PT[i].t) { char nm[64]; memcpy(nm, PT[i].name, 64); double t = PT[i].t; int n = PT[i].n;
            memcpy(PT[i].name, PT[j].name, 64); PT[i].t = PT[j].t; PT[i].n = PT[j].n; memcpy(PT[j].name, nm, 64); PT[j].t = t; PT[j].n = n; }
    printf("profile (serialized forward + backward %.1f ms, ops %.1f ms):\n", 1e3 * tot, 1e3 * sum);
    for (int i = 0; i < NPT; i++) printf("profile %8.2f ms %5.1f%% %4d x  %s\n", 1e3 * PT[i].t, 100 * PT[i].t / sum, PT[i].n, PT[i].name);
    fflush(stdout);
}

static int prec;
static void bench(const char *name, int C, int L, int H, int I, int V, int B, int T, int steps, double peak) {
    bn_config c; memset(&c, 0, sizeof c);
    c.vocab_size = V; c.hidden_size = C; c.intermediate_size = I; c.n_layers = L; c.n_heads = H; c.n_kv_heads = H;
    c.head_dim = C / H; c.max_pos = T; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f; c.act = BN_ACT_RELU2; c.tied = 1; c.bos_id = c.eos_id = -1;
    bn_train_model *m;
    bitnet_status s = bn_train_model_new(&c, 0, 4, &m);
    if (s) { printf("FAIL bench %s: %s\n", name, bitnet_last_error()); return; }
    uint64_t r = 12345;
    for (int i = 0; i < m->n_tp; i++) {
        if (m->tp[i].kind == BN_PK_NORM) continue;
        float *p = m->params + m->tp[i].off;
        for (size_t j = 0; j < m->tp[i].numel; j++) { r = r * 6364136223846793005ull + 1442695040888963407ull; p[j] = ((int)(r >> 41) - (1 << 22)) * (0.02f / (1 << 22)); }
    }
    double t0 = now();
    s = bn_train_cuda_attach_ex(m, 0, prec, getenv("BENCH_KNOBS"));
    double t_att = now() - t0;
    FILE *f = fopen("/tmp/bn_bench_tok.u32", "wb");
    for (int i = 0; i < 4 << 20; i++) { r = r * 6364136223846793005ull + 1442695040888963407ull; uint32_t x = (uint32_t)(r >> 33) % V; fwrite(&x, 4, 1, f); }
    fclose(f);
    bn_data *d = NULL; bn_trainer tr; bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    oc.total_steps = steps + 2;
    if (!s) s = bn_data_open("/tmp/bn_bench_tok.u32", V, B, T, &d);
    if (!s) s = bn_data_shuffle(d, 1);
    if (!s) s = bn_trainer_init(&tr, m, d, &oc, B, T, 1);
    bn_step_stats st;
    double tw = now();
    for (int i = 0; i < 2 && !s; i++) s = bn_trainer_step(&tr, &st);   /* warm-up: allocations, cuBLAS heuristics */
    double t_warm = now() - tw;
    float l0 = st.loss;
    cudaDeviceSynchronize();
    t0 = now();
    for (int i = 0; i < steps && !s; i++) s = bn_trainer_step(&tr, &st);
    cudaDeviceSynchronize();
    double dt = now() - t0;
    if (s) { printf("FAIL bench %s: %s\n", name, bitnet_last_error()); bn_train_model_free(m); bn_data_free(d); return; }
    /* one more step in phases, each ended by a device sync: forward, backward, optimizer */
    double ph[5];
    ph[0] = now();
    bn_train_zero_grad(m);
    if (!s) s = bn_data_next(d, tr.in, tr.tg);
    if (!s) s = bn_train_forward(m, tr.in, tr.tg, B, T, &st.loss);
    cudaDeviceSynchronize(); ph[1] = now();
    if (!s) s = bn_train_backward(m, 1.0f);
    cudaDeviceSynchronize(); ph[2] = now();
    double gn = s ? 0 : m->ops->grad_norm(m);   /* returns the norm: synced */
    ph[4] = now();
    if (!s) m->ops->adamw(m, gn > 1 ? (float)(1 / gn) : 1.0f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, steps + 3);
    cudaDeviceSynchronize(); ph[3] = now();
    size_t fr, tot; cudaMemGetInfo(&fr, &tot);
    double tps = (double)B * T * steps / dt, fpt = bn_train_flops_per_token(m);
    printf("bench %s: %.1fM params, B %d x T %d, %d steps: %.3f s/step, %.0f tokens/s, %.1f TFLOP/s model = %.1f%% MFU of %.0f; "
           "loss %.3f -> %.3f; GPU memory used %.1f GiB; attach %.1f s, 2 warm-up steps %.1f s\n",
           name, m->n_params / 1e6, B, T, steps, dt / steps, tps, fpt * tps / 1e12, 100 * fpt * tps / 1e12 / peak, peak,
           l0, st.loss, (tot - fr) / 1073741824.0, t_att, t_warm);
    printf("bench %s phases: forward %.1f ms, backward %.1f ms, norm + AdamW %.1f ms (norm %.2f, AdamW %.2f)\n", name, 1e3 * (ph[1] - ph[0]),
           1e3 * (ph[2] - ph[1]), 1e3 * (ph[3] - ph[2]), 1e3 * (ph[4] - ph[2]), 1e3 * (ph[3] - ph[4]));
    fflush(stdout);
    if (getenv("BENCH_PROFILE")) profile_step(m, d, &tr, B, T);
    bn_trainer_free(&tr); bn_data_free(d); bn_train_model_free(m);
}

int main(int argc, char **argv) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda training bench: %s\n", why ? why : "no GPU"); return 0; }
    double peak = peak_bf16();
    printf("bench peak: cuBLAS bf16 GEMM 8192^3 (fp32 accumulate) %.0f TFLOP/s\n", peak);
    const char *pe = getenv("BENCH_PREC");
    prec = pe && !strcmp(pe, "fast") ? BITNET_TRAIN_PREC_FAST : pe && !strcmp(pe, "parity") ? BITNET_TRAIN_PREC_PARITY : BITNET_TRAIN_PREC_DEFAULT;
    printf("bench precision: %s\n", prec == BITNET_TRAIN_PREC_FAST ? "fast" : prec == BITNET_TRAIN_PREC_PARITY ? "parity" : "default");
    int steps = getenv("BENCH_STEPS") ? atoi(getenv("BENCH_STEPS")) : 5, Bo = getenv("BENCH_B") ? atoi(getenv("BENCH_B")) : 0;
    for (int i = 1; i < argc || i == 1; i++) {
        const char *w = i < argc ? argv[i] : "125m";
        if (!strcmp(w, "125m")) bench("125m", 768, 12, 12, 2048, 32000, Bo ? Bo : 16, 1024, steps, peak);
        else if (!strcmp(w, "1b")) bench("1b", 2048, 18, 16, 5632, 32000, Bo ? Bo : 8, 1024, steps, peak);
        else printf("bench: unknown shape %s (125m, 1b)\n", w);
    }
    return 0;
}
