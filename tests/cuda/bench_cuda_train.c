/* tests/cuda/bench_cuda_train.c [125m|1b ...] — speed of the CUDA trainer: tokens/s and MFU of
 * QAT steps (forward, backward, clip, AdamW) of fresh BitNet models on random tokens, against
 * the dense bf16 peak measured in the same run (cuBLAS bf16 GEMM 8192^3, fp32 accumulate).
 * MFU counts the model FLOPs of bn_train_flops_per_token ("6N": BitLinear matrices + head, no
 * attention). Shapes: 125m = hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000;
 * 1b = hidden 2048, 18 layers, 16 heads, ffn 5632, vocab 32000; T = 1024, relu2, tied.
 * BENCH_B=N overrides the batch, BENCH_STEPS=N the timed steps (5), BENCH_PREC=fast|parity the
 * precision (bitnet_train.h BITNET_TRAIN_PREC_*; default: default). Weights are filled from a
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
    s = bn_train_cuda_attach(m, 0, prec);
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
    double ph[4];
    ph[0] = now();
    bn_train_zero_grad(m);
    if (!s) s = bn_data_next(d, tr.in, tr.tg);
    if (!s) s = bn_train_forward(m, tr.in, tr.tg, B, T, &st.loss);
    cudaDeviceSynchronize(); ph[1] = now();
    if (!s) s = bn_train_backward(m, 1.0f);
    cudaDeviceSynchronize(); ph[2] = now();
    if (!s) { double gn = m->ops->grad_norm(m); m->ops->adamw(m, gn > 1 ? (float)(1 / gn) : 1.0f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, steps + 3); }
    cudaDeviceSynchronize(); ph[3] = now();
    size_t fr, tot; cudaMemGetInfo(&fr, &tot);
    double tps = (double)B * T * steps / dt, fpt = bn_train_flops_per_token(m);
    printf("bench %s: %.1fM params, B %d x T %d, %d steps: %.3f s/step, %.0f tokens/s, %.1f TFLOP/s model = %.1f%% MFU of %.0f; "
           "loss %.3f -> %.3f; GPU memory used %.1f GiB; attach %.1f s, 2 warm-up steps %.1f s\n",
           name, m->n_params / 1e6, B, T, steps, dt / steps, tps, fpt * tps / 1e12, 100 * fpt * tps / 1e12 / peak, peak,
           l0, st.loss, (tot - fr) / 1073741824.0, t_att, t_warm);
    printf("bench %s phases: forward %.1f ms, backward %.1f ms, norm + AdamW %.1f ms\n", name, 1e3 * (ph[1] - ph[0]), 1e3 * (ph[2] - ph[1]), 1e3 * (ph[3] - ph[2]));
    fflush(stdout);
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
