/* tests/cuda/test_cuda_train.c — the CUDA trainer (src/backend/cuda/train_cuda.cu) against the
 * goldens and the CPU trainer:
 *   - golden master model (tests/golden/bitnet-b158-master, made with transformers): step-0
 *     loss and logits, step-0 gradients of every parameter within 1e-2 relative L2 (the issue's
 *     bound; the CPU reaches 1e-6) in the default precision and in the parity mode
 *     (BITNET_TRAIN_PREC_PARITY); the 8 AdamW losses within the CPU test's rel 2e-3 in the parity
 *     mode; every other case (and the fast mode) printed, not bounded (note below);
 *   - the AdamW kernel from identical state equals the CPU's AdamW bit for bit; the int8 x int8
 *     BitLinear forward gives the bf16 path's logits bit for bit; the fast mode's bf16 LM head
 *     is within 1e-2 of the TF32 head (step-0 logits and gradients); the register-row rmsnorm
 *     kernels give the strided ones' logits bit for bit, and both match a double reference at
 *     the 1b widths (D 2048 / 5632: y, rstd, dx, gamma gradients); the RoPE folded into the
 *     flash attention (rf) and the gating backward writing the BitLinear dY operands (gf) give
 *     the unfused logits and gradients bit for bit (so do gw=1, the gating backward's unread
 *     fp32 dg / du written, and rpf=0, the rmsnorm forward without its prefetching rows loop,
 *     which also gives the same y / yq bits at D 2048 / 5632; so do rg / gn, the FFN sub-norm's
 *     backward / forward fused with the gating backward / forward, also at widths that are not
 *     a multiple of 4), and AdamW writing the next weight
 *     quantization's |W| sums gives the separate pass's losses and weights bit for bit (float4
 *     and scalar passes), and so does the lazy zero_grad over steps of two micro-batches;
 *   - GPU (parity mode) and CPU trainers (public API, same data and seed, clipping and weight
 *     decay on) agree step by step on a 20-step run within 1e-3 relative loss, or within twice
 *     the drift of two CPU kernel sets (ref vs default) on that run where that is larger (it
 *     is: 2.4e-3 for ref vs avx2, so the 1e-3 needs bit-exactness; note above);
 *   - a GPU checkpoint resumes on the CPU and a CPU one on the GPU (parity mode), each
 *     continuing the run within 1e-3; the GPU checkpoint exports to the packed layout;
 *   - a realistic 20-step run (test_real_20: a fresh 0.86M-parameter model, 4096 text tokens a
 *     step): CPU ref vs default kernels, and the GPU (default, parity) vs the CPU, each within
 *     the 1e-3 relative loss;
 *   - errors: a device that does not exist, LoRA on the GPU.
 * Without a GPU it prints one skip line. Not: a speed test (bench_cuda_train.c). */
#include "t.h"
#include "bitnet_train.h"
#include "train/train.h"
#include "train/optim.h"
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "backend/cuda/train_cuda.h"
#include "io/safetensors.h"
#include <cjson/cJSON.h>
#include <unistd.h>
#include <sys/stat.h>

static char *gpath(const char *file) {
    static char buf[4][512]; static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/bitnet-b158-master/%s", t_golden(), file);
    return b;
}
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    double r = sqrt(num / (den > 0 ? den : 1e-30));
    return r == r ? r : 1e30;
}

/* A check in the strict modes; otherwise only a report line: the error is measured, not bounded.
 * Trajectory note: step-0 logits and gradients are bounded in every mode but "fast"; loss
 * trajectories (8 AdamW steps, 20 trainer steps) only in the parity mode ("fp32"). QAT's
 * quantizers are discontinuous and Adam's first steps move every weight by about lr whatever
 * the gradient's size, so gradient noise of 1e-6..1e-3 relative flips a few ternary values
 * and int8 activations within a few steps and the losses then drift apart by ~1e-3 (measured:
 * default 3.4e-3 over the 8 golden steps with 4e-4 gradient error). */
static int strict;
#define GCHECK(name, cond, ...) do { if (strict) CHECK(name, cond, __VA_ARGS__); \
    else { printf("# info (not checked) %s: %s: ", name, (cond) ? "within" : "outside"); printf(__VA_ARGS__); printf("\n"); } } while (0)

/* "default", "fast", "fp32" (the parity mode) -> BITNET_TRAIN_PREC_* */
static int prec_of(const char *mode) {
    return !strcmp(mode, "fast") ? BITNET_TRAIN_PREC_FAST : !strcmp(mode, "fp32") ? BITNET_TRAIN_PREC_PARITY : BITNET_TRAIN_PREC_DEFAULT;
}

/* Step-0 logits, loss, gradients and 8 AdamW losses of the golden master on the GPU, in
 * precision mode "default", "fp32" (head and attention fp32) or "fast" (backend.h). */
static void test_golden(const char *mode) {
    char dir[512], nm[160]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    strict = strcmp(mode, "fast") != 0;
    bn_train_model *m;
    bitnet_status s = bn_train_model_from_dir(dir, 0, 1, &m);
    if (!s) s = bn_train_cuda_attach(m, 0, prec_of(mode));
    snprintf(nm, sizeof nm, "golden[%s]: load master and attach to the GPU", mode);
    CHECK(nm, s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    size_t ntok; uint32_t *tok = t_read_file(gpath("golden_train_tokens.u32"), &ntok);
    char *js = t_read_file(gpath("golden_train.json"), NULL);
    cJSON *j = cJSON_Parse(js);
    int B = cJSON_GetObjectItem(j, "B")->valueint, T = cJSON_GetObjectItem(j, "T")->valueint, V = m->cfg.vocab_size;
    int32_t *in = malloc(B * T * 4), *tg = malloc(B * T * 4);
    for (int i = 0; i < B * T; i++) { in[i] = (int32_t)tok[i]; tg[i] = (int32_t)tok[i + 1]; }
    float loss;
    s = bn_train_forward(m, in, tg, B, T, &loss);
    snprintf(nm, sizeof nm, "golden[%s]: forward", mode);
    GCHECK(nm, s == BITNET_OK, "%s", bitnet_last_error());
    float *lg = malloc((size_t)B * T * V * 4), *gl = t_read_file(gpath("golden_logits_step0.f32"), NULL);
    bn_cu_d2h(lg, bn_train_logits(m), (size_t)B * T * V * 4, NULL);
    double e = rel_l2(lg, gl, (size_t)B * T * V);
    double eb = strcmp(mode, "fp32") ? 2e-3 : 1e-4;   /* a TF32 head: 2^-11 operand rounding */
    snprintf(nm, sizeof nm, "golden[%s]: step-0 logits rel L2 < %g", mode, eb);
    GCHECK(nm, e < eb, "rel %g", e);
    cJSON *losses = cJSON_GetObjectItem(j, "losses");
    double l0 = cJSON_GetArrayItem(losses, 0)->valuedouble;
    snprintf(nm, sizeof nm, "golden[%s]: step-0 loss within rel 2e-3", mode);
    GCHECK(nm, fabs(loss - l0) / l0 < 2e-3, "%g vs %g", loss, l0);
    bn_train_zero_grad(m);
    s = bn_train_backward(m, 1.0f);
    if (!s) s = m->ops->sync(m, 1);
    snprintf(nm, sizeof nm, "golden[%s]: backward", mode);
    GCHECK(nm, s == BITNET_OK, "%s", bitnet_last_error());
    bn_st *gs;
    s = bn_st_open(gpath("golden_grads_step0.safetensors"), &gs);
    double worst = 0; const char *wn = ""; int nfound = 0;
    for (int i = 0; !s && i < m->n_tp; i++) {
        const bn_tensor *t = bn_st_find(gs, m->tp[i].name);
        if (!t || (size_t)t->numel != m->tp[i].numel) continue;
        nfound++;
        float *ref = malloc(t->numel * 4);
        bn_tensor_to_f32(t, ref, 0, t->numel);
        double r = rel_l2(m->grads + m->tp[i].off, ref, t->numel);
        if (r > worst) { worst = r; wn = m->tp[i].name; }
        free(ref);
    }
    snprintf(nm, sizeof nm, "golden[%s]: step-0 gradients of all %d parameters rel L2 < 1e-2", mode, m->n_tp);
    GCHECK(nm, !s && nfound == m->n_tp && worst < 1e-2, "worst %g (%s), %d found", worst, wn, nfound);
    printf("# golden[%s]: logits rel L2 %.3g, loss %.6f vs %.6f, worst gradient rel L2 %.3g (%s)\n", mode, e, loss, l0, worst, wn);
    if (!s) bn_st_free(gs);
    cJSON *o = cJSON_GetObjectItem(j, "optimizer");
    float lr = cJSON_GetObjectItem(o, "lr")->valuedouble, b1 = cJSON_GetObjectItem(o, "beta1")->valuedouble;
    float b2 = cJSON_GetObjectItem(o, "beta2")->valuedouble, eps = cJSON_GetObjectItem(o, "eps")->valuedouble;
    float wd = cJSON_GetObjectItem(o, "weight_decay")->valuedouble;
    double wl = 0;
    int steps = cJSON_GetArraySize(losses);
    for (int st = 0; st < steps && !s; st++) {
        if (st > 0) {
            s = bn_train_forward(m, in, tg, B, T, &loss);
            bn_train_zero_grad(m);
            if (!s) s = bn_train_backward(m, 1.0f);
        }
        double r = fabs(loss - cJSON_GetArrayItem(losses, st)->valuedouble) / cJSON_GetArrayItem(losses, st)->valuedouble;
        if (r > wl) wl = r;
        m->ops->adamw(m, 1.0f, lr, b1, b2, eps, wd, st + 1);
        if (!s) s = m->ops->status(m);
    }
    snprintf(nm, sizeof nm, "golden[%s]: 8 AdamW losses within rel 2e-3", mode);
    strict = !strcmp(mode, "fp32");   /* trajectories: bounded in the parity mode (see trajectory note) */
    GCHECK(nm, !s && wl < 2e-3, "worst rel %g (%s)", wl, s ? bitnet_last_error() : "");
    printf("# golden[%s]: worst AdamW loss rel err %.3g (last loss %.6f)\n", mode, wl, loss);
    cJSON_Delete(j); free(js); free(tok); free(in); free(tg); free(gl); free(lg);
    bn_train_model_free(m);
}

/* The int8 x int8 BitLinear forward (the default; knob i8=0 is the bf16 GEMM, train_cuda.h)
 * gives the bf16 path's logits bit for bit: both sum the same integers exactly. */
static void test_i8_same_bits(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    float *lg[2] = {NULL, NULL};
    size_t n = 0;
    bitnet_status s = BITNET_OK;
    for (int k = 0; k < 2 && !s; k++) {
        bn_train_model *m;
        s = bn_train_model_from_dir(dir, 0, 1, &m);
        if (!s) s = bn_train_cuda_attach_ex(m, 0, BITNET_TRAIN_PREC_DEFAULT, k ? "i8=1" : "i8=0");
        if (s) break;
        int B = 2, T = 32;
        int32_t in[64], tg[64];
        for (int i = 0; i < B * T; i++) { in[i] = (i * 37 + 11) % m->cfg.vocab_size; tg[i] = (i * 53 + 7) % m->cfg.vocab_size; }
        float loss;
        s = bn_train_forward(m, in, tg, B, T, &loss);
        n = (size_t)B * T * m->cfg.vocab_size;
        if (!s && (lg[k] = malloc(n * 4))) s = bn_cu_d2h(lg[k], bn_train_logits(m), n * 4, NULL);
        bn_train_model_free(m);
    }
    CHECK("int8 BitLinear forward: the bf16 path's logits bit for bit", !s && lg[0] && lg[1] && !memcmp(lg[0], lg[1], n * 4),
          "%s", s ? bitnet_last_error() : "logits differ");
    free(lg[0]); free(lg[1]);
}

/* Inputs of knob_step0 / test_ws_bits: 0 the golden training tokens; 1 ids that never repeat
 * within the batch (i * 37 + 11 mod vocab), so the embedding gradient's atomicAdd (one add per
 * element: train_cuda.cu) is deterministic and whole runs can be compared bit for bit. */
static int kn_distinct;
/* One step-0 forward + backward of the golden master on the GPU, default mode with the given
 * knobs (train_cuda.h), on its first 2 x 32 training tokens (kn_distinct: other inputs): *lg =
 * the logits (*n floats), *gr = all gradients (*np floats), both malloc'd (NULL when not reached). */
static bitnet_status knob_step0(const char *knobs, float **lg, size_t *n, float **gr, size_t *np) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    *lg = *gr = NULL;
    size_t ntok; uint32_t *tok = t_read_file(gpath("golden_train_tokens.u32"), &ntok);
    if (!tok) return bn_err(BITNET_ERR_IO, "golden_train_tokens.u32");
    bn_train_model *m;
    bitnet_status s = bn_train_model_from_dir(dir, 0, 1, &m);
    if (s) { free(tok); return s; }
    s = bn_train_cuda_attach_ex(m, 0, BITNET_TRAIN_PREC_DEFAULT, knobs);
    int B = 2, T = 32;
    int32_t in[64], tg[64];
    for (int i = 0; i < B * T; i++) { in[i] = kn_distinct ? (i * 37 + 11) % m->cfg.vocab_size : (int32_t)tok[i]; tg[i] = (int32_t)tok[i + 1]; }
    float loss;
    if (!s) s = bn_train_forward(m, in, tg, B, T, &loss);
    *n = (size_t)B * T * m->cfg.vocab_size; *np = m->n_params;
    if (!s && (*lg = malloc(*n * 4))) s = bn_cu_d2h(*lg, bn_train_logits(m), *n * 4, NULL);
    bn_train_zero_grad(m);
    if (!s) s = bn_train_backward(m, 1.0f);
    if (!s) s = m->ops->sync(m, 1);
    if (!s && (*gr = malloc(*np * 4))) memcpy(*gr, m->grads, *np * 4);
    bn_train_model_free(m);
    free(tok);
    return s;
}

/* The fast mode's bf16 LM head (knob hbf=1, train_cuda.h) against the TF32 head (hbf=0), the
 * rest of the default mode the same: step-0 logits and all gradients within 1e-2 relative L2
 * (bf16 operands: 2^-9 relative rounding), and not bit-identical (the bf16 path really ran). */
static void test_head_bf16(void) {
    float *lg[2] = {NULL, NULL}, *gr[2] = {NULL, NULL};
    size_t n = 0, np = 0;
    bitnet_status s = BITNET_OK;
    for (int k = 0; k < 2 && !s; k++) s = knob_step0(k ? "hbf=1" : "hbf=0", &lg[k], &n, &gr[k], &np);
    int ok = !s && lg[0] && lg[1] && gr[0] && gr[1];
    double el = ok ? rel_l2(lg[1], lg[0], n) : 1e30, eg = ok ? rel_l2(gr[1], gr[0], np) : 1e30;
    CHECK("bf16 LM head (hbf=1) vs TF32 head: step-0 logits and gradients within rel L2 1e-2, not the same bits",
          ok && el < 1e-2 && eg < 1e-2 && el > 0, "logits %g gradients %g %s", el, eg, s ? bitnet_last_error() : "");
    printf("# bf16 head vs TF32 head: logits rel L2 %.3g, gradients %.3g\n", el, eg);
    free(lg[0]); free(lg[1]); free(gr[0]); free(gr[1]);
}

/* The rmsnorm kernels that hold each row in registers (knob rms=1, the default) against the
 * strided ones (rms=0), the rest of the default mode the same: step-0 logits bit for bit (the
 * forward keeps each thread's elements, expressions and block sums), gradients within 1e-5
 * relative L2 (dx has the same bits; only the norm weights' gradients are summed over rows in
 * another order). */
static void test_rms_rows(void) {
    float *lg[2] = {NULL, NULL}, *gr[2] = {NULL, NULL};
    size_t n = 0, np = 0;
    bitnet_status s = BITNET_OK;
    for (int k = 0; k < 2 && !s; k++) s = knob_step0(k ? "rms=1" : "rms=0", &lg[k], &n, &gr[k], &np);
    int ok = !s && lg[0] && lg[1] && gr[0] && gr[1];
    double eg = ok ? rel_l2(gr[1], gr[0], np) : 1e30;
    CHECK("rmsnorm rows kernels (rms=1) vs strided (rms=0): logits bit for bit, gradients within rel L2 1e-5",
          ok && !memcmp(lg[0], lg[1], n * 4) && eg < 1e-5, "gradients %g %s", eg, s ? bitnet_last_error() : ok ? "(or logits differ)" : "");
    printf("# rmsnorm rows vs strided: gradients rel L2 %.3g\n", eg);
    free(lg[0]); free(lg[1]); free(gr[0]); free(gr[1]);
}

/* Knobs that move work between ops without changing the math (train_cuda.h), each against the
 * same run without it, bf16 flash attention (fa=2, the fast mode's) on: rf=1 (RoPE folded into
 * the attention's bf16 conversion of q, k and into its dq, dk stores) and gf=1 (the gating
 * backward writes the gate / up BitLinear backward's bf16 dY), and vec=0 (the one-element
 * BitLinear epilogue, dY conversion and gating forward instead of the 4-element ones), and cf=0
 * (the residual copy made, not taken over by the BitLinear epilogue that adds into it), gf=1 with
 * gw=1 (the fp32 dg / du written too: gw=0, the default, leaves them unwritten, so gf=1 alone
 * fails here if anything read them) and rpf=0 (the rmsnorm forward one row a block, not the
 * prefetching rows loop) and fao=0 (the plain bf16 attention kernels, not the longest-first /
 * cp.async / ldmatrix ones), lz=0 (zero_grad's memset, not the lazy zero whose first dW GEMM
 * of each tensor runs with beta 0 instead of beta 1 on zeros), rg=1 (the FFN sub-norm's
 * backward done in the gating backward's pass: with gf=0 the fp32 dg / du written, with gf=1
 * the bf16 operands, with gw=1 both) and gn=1 (the gating forward done in the sub-norm
 * forward's pass; also with rpf=0), every entry with the other fusions (rg, gn) off unless
 * named: step-0
 * logits and all gradients bit for bit (the same float expressions in another kernel), on inputs
 * whose ids do not repeat (kn_distinct: with repeats the embedding gradient's atomicAdd alone
 * makes two identical runs differ, ~1e-9 relative L2 over all gradients on this model). */
static void test_fold_bits(void) {
    enum { NK = 14 };
    const char *kn[NK] = {"fa=2,rf=0,gf=0,rg=0,gn=0", "fa=2,rf=1,gf=0,rg=0,gn=0", "fa=2,rf=0,gf=1,rg=0,gn=0", "fa=2,rf=0,gf=0,vec=0,rg=0,gn=0",
                          "fa=2,rf=0,gf=0,cf=0,rg=0,gn=0", "fa=2,rf=0,gf=1,gw=1,rg=0,gn=0", "fa=2,rf=0,gf=0,rpf=0,rg=0,gn=0",
                          "fa=2,rf=0,gf=0,fao=0,rg=0,gn=0", "fa=2,rf=0,gf=0,rg=1,gn=0", "fa=2,rf=0,gf=1,rg=1,gn=0",
                          "fa=2,rf=0,gf=1,gw=1,rg=1,gn=0", "fa=2,rf=0,gf=0,rg=0,gn=1", "fa=2,rf=0,gf=0,rg=0,gn=1,rpf=0",
                          "fa=2,rf=0,gf=0,lz=0,rg=0,gn=0"};
    float *lg[NK] = {NULL}, *gr[NK] = {NULL};
    size_t n = 0, np = 0;
    bitnet_status s = BITNET_OK;
    kn_distinct = 1;
    for (int k = 0; k < NK && !s; k++) s = knob_step0(kn[k], &lg[k], &n, &gr[k], &np);
    kn_distinct = 0;
    for (int k = 1; k < NK; k++) {
        int ok = !s && lg[0] && lg[k] && gr[0] && gr[k];
        char nm[160];
        snprintf(nm, sizeof nm, "%s vs %s: step-0 logits and gradients bit for bit", kn[k], kn[0]);
        CHECK(nm, ok && !memcmp(lg[0], lg[k], n * 4) && !memcmp(gr[0], gr[k], np * 4), "%s", s ? bitnet_last_error() :
              ok ? (memcmp(lg[0], lg[k], n * 4) ? "logits differ" : "gradients differ") : "not run");
        if (ok) printf("# %s: logits rel L2 %.3g, gradients %.3g\n", kn[k], rel_l2(lg[k], lg[0], n), rel_l2(gr[k], gr[0], np));
    }
    for (int k = 0; k < NK; k++) { free(lg[k]); free(gr[k]); }
}

/* rg and gn (the FFN sub-norm's backward in the gating backward's pass, the gating forward in
 * the sub-norm forward's pass) at FFN widths that are not a multiple of 4 (the gating kernels'
 * vector width; the unfused path then takes the scalar gating and dY conversion kernels): a
 * fresh 1-layer model (hidden 64, vocab 512, default mode) with ffn 5630 (the 1b's 1024-thread,
 * 6-values-a-thread row class) and 1410 (512 threads, 4 values, the prefetching class), B 2 x
 * T 160 (320 rows: blocks take several rows, so the gamma partials cover many rows), distinct
 * ids; rg=1,gn=1 against rg=0,gn=0: step-0 logits and all gradients bit for bit. */
static void test_rg_awkward(void) {
    static const int ffn[2] = {5630, 1410};
    for (int fi = 0; fi < 2; fi++) {
        float *lg[2] = {NULL, NULL}, *gr[2] = {NULL, NULL};
        size_t n = 0, np = 0;
        bitnet_status s = BITNET_OK;
        for (int k = 0; k < 2 && !s; k++) {
            bn_config c; memset(&c, 0, sizeof c);
            c.vocab_size = 512; c.hidden_size = 64; c.intermediate_size = ffn[fi]; c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 2;
            c.head_dim = 32; c.max_pos = 160; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f; c.act = BN_ACT_RELU2; c.tied = 1; c.bos_id = c.eos_id = -1;
            bn_train_model *m;
            if ((s = bn_train_model_new(&c, 0, 1, &m))) break;
            bn_train_model_init_random(m, 7, 0.05f);
            uint32_t r = 99;
            for (int i = 0; i < m->n_tp; i++)   /* norm weights away from 1, so their products matter */
                if (m->tp[i].kind == BN_PK_NORM)
                    for (size_t j = 0; j < m->tp[i].numel; j++) { r = r * 1664525u + 1013904223u; m->params[m->tp[i].off + j] = 0.5f + (float)(r >> 8) / 16777216.0f; }
            s = bn_train_cuda_attach_ex(m, 0, BITNET_TRAIN_PREC_DEFAULT, k ? "rg=1,gn=1" : "rg=0,gn=0");
            int B = 2, T = 160;
            int32_t in[320], tg[320];
            for (int i = 0; i < B * T; i++) { in[i] = (i * 37 + 11) % 512; tg[i] = (i * 101 + 5) % 512; }
            float loss;
            if (!s) s = bn_train_forward(m, in, tg, B, T, &loss);
            n = (size_t)B * T * c.vocab_size; np = m->n_params;
            if (!s && (lg[k] = malloc(n * 4))) s = bn_cu_d2h(lg[k], bn_train_logits(m), n * 4, NULL);
            bn_train_zero_grad(m);
            if (!s) s = bn_train_backward(m, 1.0f);
            if (!s) s = m->ops->sync(m, 1);
            if (!s && (gr[k] = malloc(np * 4))) memcpy(gr[k], m->grads, np * 4);
            bn_train_model_free(m);
        }
        int ok = !s && lg[0] && lg[1] && gr[0] && gr[1];
        char nm[128];
        snprintf(nm, sizeof nm, "rg=1,gn=1 vs rg=0,gn=0 at ffn %d: step-0 logits and gradients bit for bit", ffn[fi]);
        CHECK(nm, ok && !memcmp(lg[0], lg[1], n * 4) && !memcmp(gr[0], gr[1], np * 4), "%s", s ? bitnet_last_error() :
              ok ? (memcmp(lg[0], lg[1], n * 4) ? "logits differ" : "gradients differ") : "not run");
        if (ok) printf("# ffn %d rg/gn: logits rel L2 %.3g, gradients %.3g\n", ffn[fi], rel_l2(lg[1], lg[0], n), rel_l2(gr[1], gr[0], np));
        free(lg[0]); free(lg[1]); free(gr[0]); free(gr[1]);
    }
}

/* Knobs of the optimizer-side passes, each pair run for 4 steps of zero_grad, two accumulated
 * micro-batches (forward + backward each) and AdamW on the golden master, default mode, ids
 * that do not repeat (kn_distinct's); the losses and the final weights bit for bit:
 *   - AdamW writing the |W| sums of the next weight quantization (ws=1, the default) against the
 *     separate sum pass (ws=0), with the float4 passes (ov=1, the default) and the scalar ones
 *     (ov=0): the same sums in the same order;
 *   - the lazy zero_grad (lz=1, the default) against the memset (lz=0): the first dW write of a
 *     tensor overwrites, the second micro-batch's adds (an overwrite there fails the check). */
static void test_ws_bits(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    size_t ntok; uint32_t *tok = t_read_file(gpath("golden_train_tokens.u32"), &ntok);
    enum { NK = 6 };
    static const char *kn[NK] = {"ws=0", "ws=1", "ov=0,ws=0", "ov=0,ws=1", "lz=0", "lz=1"};
    float loss[NK][4], *w[NK] = {NULL};
    size_t np = 0;
    bitnet_status s = tok ? BITNET_OK : BITNET_ERR_IO;
    for (int k = 0; k < NK && !s; k++) {
        bn_train_model *m;
        s = bn_train_model_from_dir(dir, 0, 1, &m);
        if (s) break;
        s = bn_train_cuda_attach_ex(m, 0, BITNET_TRAIN_PREC_DEFAULT, kn[k]);
        int B = 2, T = 32;
        int32_t in[64], tg[64];
        for (int i = 0; i < B * T; i++) { in[i] = (i * 37 + 11) % m->cfg.vocab_size; tg[i] = (int32_t)tok[i + 1]; }
        for (int st = 0; st < 4 && !s; st++) {
            bn_train_zero_grad(m);
            for (int mb = 0; mb < 2 && !s; mb++) {
                s = bn_train_forward(m, in, tg, B, T, &loss[k][st]);
                if (!s) s = bn_train_backward(m, 0.5f);
            }
            if (!s) { m->ops->adamw(m, 1.0f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, st + 1); s = m->ops->status(m); }
        }
        np = m->n_params;
        if (!s) s = m->ops->sync(m, 1);
        if (!s && (w[k] = malloc(np * 4))) memcpy(w[k], m->params, np * 4);
        bn_train_model_free(m);
    }
    for (int k = 0; k < NK; k += 2) {
        int ok = !s && w[k] && w[k + 1];
        char nm[160];
        snprintf(nm, sizeof nm, "optimizer passes: %s vs %s (4 steps of 2 micro-batches): losses and weights bit for bit", kn[k + 1], kn[k]);
        CHECK(nm, ok && !memcmp(loss[k], loss[k + 1], sizeof loss[0]) && !memcmp(w[k], w[k + 1], np * 4), "%s",
              s ? bitnet_last_error() : ok ? "differ" : "not run");
    }
    for (int k = 0; k < NK; k++) free(w[k]);
    free(tok);
}

/* The rmsnorm ops at the 1b model's widths (D 2048 and 5632, 300 rows: blocks of the backward
 * take several rows), rms=0, rms=1 with rpf=0 (one row a block) and rms=1 (rows loop with the
 * next row prefetched), against a double-precision CPU reference: y and rstd within 1e-6
 * relative L2 (the same bits between the kernels), dx (accumulated onto a prefilled buffer) and
 * the gamma gradient (accumulated onto a prefilled one) within 1e-5; and the forward with the
 * activation quantization (keep=1: yq written) gives the same yq bits in all three. */
static void test_rms_wide(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    for (int di = 0; di < 2; di++) {
        int N = 300, D = di ? 5632 : 2048;
        size_t nd = (size_t)N * D;
        float *x = malloc(nd * 4), *dy = malloc(nd * 4), *dx0 = malloc(nd * 4), *w = malloc(D * 4), *dw0 = malloc(D * 4);
        enum { NC = 3 };
        static const char *kc[NC] = {"rms=0,keep=1", "rms=1,rpf=0,keep=1", "rms=1,keep=1"};
        float *out[NC][5] = {{0}};   /* y, rstd, dx, dw, yq */
        if (!x || !dy || !dx0 || !w || !dw0) { CHECK("rmsnorm wide: memory", 0, "out of memory"); return; }
        uint32_t r = 12345;
        #define RND() ((r = r * 1664525u + 1013904223u), ((float)(r >> 8) / 16777216.0f - 0.5f))
        for (size_t i = 0; i < nd; i++) { x[i] = 3 * RND(); dy[i] = RND(); dx0[i] = RND(); }
        for (int i = 0; i < D; i++) { w[i] = 1 + RND(); dw0[i] = RND(); }
        #undef RND
        bitnet_status s = BITNET_OK;
        for (int k = 0; k < NC && !s; k++) {
            bn_train_model *m;
            s = bn_train_model_from_dir(dir, 0, 1, &m);
            if (!s) s = bn_train_cuda_attach_ex(m, 0, BITNET_TRAIN_PREC_DEFAULT, kc[k]);
            if (s) break;
            float *g; void *st;
            s = bn_train_cuda_grads(m, &g, &st);
            float *dX = m->ops->alloc(m, nd), *dDY = m->ops->alloc(m, nd), *dY = m->ops->alloc(m, nd), *dDX = m->ops->alloc(m, nd);
            float *dW = m->ops->alloc(m, D), *dDW = m->ops->alloc(m, D), *dR = m->ops->alloc(m, N), *dQ = m->ops->alloc(m, nd);
            float *dY2 = m->ops->alloc(m, nd), *dR2 = m->ops->alloc(m, N);
            if (!s && !(dX && dDY && dY && dDX && dW && dDW && dR && dQ && dY2 && dR2)) s = bn_err(BITNET_ERR_NOMEM, "device memory");
            if (!s) s = bn_cu_h2d(dX, x, nd * 4, st);
            if (!s) s = bn_cu_h2d(dDY, dy, nd * 4, st);
            if (!s) s = bn_cu_h2d(dDX, dx0, nd * 4, st);
            if (!s) s = bn_cu_h2d(dW, w, D * 4, st);
            if (!s) s = bn_cu_h2d(dDW, dw0, D * 4, st);
            if (!s) {
                m->ops->rmsnorm_fwd(m, dX, dW, dY, dR, NULL, N, D); m->ops->rmsnorm_bwd(m, dDY, dX, dW, dR, dDX, dDW, N, D, 1);
                m->ops->rmsnorm_fwd(m, dX, dW, dY2, dR2, dQ, N, D);   /* the quantizing forward: yq = dQ */
                s = m->ops->status(m);
            }
            size_t sz[5] = {nd, (size_t)N, nd, (size_t)D, nd};
            const float *src[5] = {dY, dR, dDX, dDW, dQ};
            for (int j = 0; j < 5 && !s; j++) if (!(out[k][j] = malloc(sz[j] * 4)) || (s = bn_cu_d2h(out[k][j], src[j], sz[j] * 4, st))) break;
            float *all[10] = {dX, dDY, dY, dDX, dW, dDW, dR, dQ, dY2, dR2};
            for (int j = 0; j < 10; j++) if (all[j]) m->ops->free(m, all[j]);
            bn_train_model_free(m);
        }
        /* reference in double */
        float *ry = malloc(nd * 4), *rr = malloc(N * 4), *rdx = malloc(nd * 4), *rdw = malloc(D * 4);
        double *adw = calloc(D, sizeof(double));
        if (ry && rr && rdx && rdw && adw) {
            for (int t = 0; t < N; t++) {
                const float *xr = x + (size_t)t * D, *d = dy + (size_t)t * D;
                double ss = 0, dot = 0;
                for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
                double rs = 1.0 / sqrt(ss / D + 1e-5);   /* the golden master's rms_norm_eps */
                rr[t] = (float)rs;
                for (int i = 0; i < D; i++) { ry[(size_t)t * D + i] = (float)(w[i] * xr[i] * rs); dot += (double)d[i] * w[i] * xr[i]; adw[i] += (double)d[i] * xr[i] * rs; }
                for (int i = 0; i < D; i++) rdx[(size_t)t * D + i] = (float)(dx0[(size_t)t * D + i] + rs * d[i] * w[i] - dot * rs * rs * rs / D * xr[i]);
            }
            for (int i = 0; i < D; i++) rdw[i] = (float)(dw0[i] + adw[i]);
        }
        for (int k = 0; k < NC; k++) {
            int ok = !s && out[k][4] && ry && adw;
            double ey = ok ? rel_l2(out[k][0], ry, nd) : 1e30, er = ok ? rel_l2(out[k][1], rr, N) : 1e30;
            double ex = ok ? rel_l2(out[k][2], rdx, nd) : 1e30, ew = ok ? rel_l2(out[k][3], rdw, D) : 1e30;
            char name[96]; snprintf(name, sizeof name, "rmsnorm ops D=%d %s vs double reference", D, kc[k]);
            CHECK(name, ok && ey < 1e-6 && er < 1e-6 && ex < 1e-5 && ew < 1e-5, "y %g rstd %g dx %g dw %g %s", ey, er, ex, ew, s ? bitnet_last_error() : "");
        }
        for (int k = 1; k < NC; k++) {
            int same = !s && out[0][4] && out[k][4] && !memcmp(out[0][0], out[k][0], nd * 4) && !memcmp(out[0][1], out[k][1], (size_t)N * 4)
                       && !memcmp(out[0][4], out[k][4], nd * 4);
            char name[112]; snprintf(name, sizeof name, "rmsnorm forward D=%d: %s gives %s's y, rstd and yq bits", D, kc[k], kc[0]);
            CHECK(name, same, "y / rstd / yq differ");
        }
        for (int k = 0; k < NC; k++) for (int j = 0; j < 5; j++) free(out[k][j]);
        free(x); free(dy); free(dx0); free(w); free(dw0); free(ry); free(rr); free(rdx); free(rdw); free(adw);
    }
}

/* The device AdamW from the same parameters, gradients and moments as the CPU's: same bits
 * (clipping coefficient, decay on linear/head, none on norms/embedding). */
static void test_adamw_bits(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    bn_train_model *c, *g;
    bitnet_status s = bn_train_model_from_dir(dir, 0, 1, &c);
    if (!s) s = bn_train_model_from_dir(dir, 0, 1, &g);
    if (s) { CHECK("adamw bits: load", 0, "%s", bitnet_last_error()); return; }
    uint64_t r = 99;
    for (size_t i = 0; i < c->n_params; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        c->grads[i] = g->grads[i] = (float)((int)(r >> 40) % 2001 - 1000) * 1e-4f;
        c->adam_m[i] = g->adam_m[i] = c->grads[i] * 0.5f;
        c->adam_v[i] = g->adam_v[i] = c->grads[i] * c->grads[i] * 0.7f;
    }
    s = bn_train_cuda_attach(g, 0, BITNET_TRAIN_PREC_DEFAULT);   /* uploads the same parameters and moments */
    size_t ntok; uint32_t *tok = t_read_file(gpath("golden_train_tokens.u32"), &ntok);
    int B = 2, T = 32;
    int32_t in[64], tg[64];
    for (int i = 0; i < B * T; i++) { in[i] = (int32_t)tok[i]; tg[i] = (int32_t)tok[i + 1]; }
    float l;
    bn_train_zero_grad(g);
    if (!s) s = bn_train_forward(g, in, tg, B, T, &l);
    if (!s) s = bn_train_backward(g, 1.0f);
    if (!s) s = g->ops->sync(g, 1);          /* the GPU's gradients -> host; give the CPU the same */
    if (!s) memcpy(c->grads, g->grads, c->n_params * 4);
    if (!s) {
        g->ops->adamw(g, 0.37f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3);
        s = g->ops->sync(g, 1);
    }
    if (!s) {
        for (int i = 0; i < c->n_tp; i++) {
            const bn_tparam *p = &c->tp[i];
            int dec = p->kind == BN_PK_LINEAR || p->kind == BN_PK_HEAD;
            bn_grad_scale(NULL, c->grads + p->off, p->numel, 0.37f);
            bn_adamw_update(c->k, c->pool, c->params + p->off, c->grads + p->off, c->adam_m + p->off, c->adam_v + p->off, p->numel,
                            1e-3f, 0.9f, 0.95f, 1e-8f, dec ? 0.1f : 0.0f, 3);
        }
    }
    size_t bad = 0;
    for (size_t i = 0; !s && i < c->n_params; i++)
        if (memcmp(&c->params[i], &g->params[i], 4) || memcmp(&c->adam_m[i], &g->adam_m[i], 4) || memcmp(&c->adam_v[i], &g->adam_v[i], 4)) bad++;
    CHECK("adamw bits: the GPU AdamW step (clip 0.37, decay 0.1 on matrices) equals the CPU's bit for bit", !s && bad == 0,
          "%zu of %zu differ %s", bad, c->n_params, s ? bitnet_last_error() : "");
    free(tok);
    bn_train_model_free(c); bn_train_model_free(g);
}

/* A token file with structure a small model can learn: a noisy order-1 chain over 200 ids. */
static void write_data(const char *path, int n, uint64_t seed) {
    FILE *f = fopen(path, "wb");
    uint32_t x = 5;
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(seed >> 33);
        x = (r % 5 == 0) ? r % 200 : (x * 7 + 3) % 200;
        fwrite(&x, 4, 1, f);
    }
    fclose(f);
}

static const char *cpu_kernels;   /* NULL: the default CPU kernel set */
static int gpu_prec;              /* BITNET_TRAIN_PREC_* of the next GPU trainer */
static bitnet_trainer *mk(const char *from, const char *dev, int steps) {
    bitnet_train_params p = bitnet_train_default_params();
    p.batch = 4; p.seq = 32; p.total_steps = steps; p.n_threads = 4; p.device = dev; p.kernels = cpu_kernels; p.precision = gpu_prec;
    p.optim.lr = 3e-3f; p.optim.weight_decay = 0.1f; p.optim.clip = 1.0f; p.optim.warmup = 2; p.optim.schedule = BITNET_LR_COSINE;
    p.accum = 2;
    bitnet_trainer *t = NULL;
    if (bitnet_trainer_new(from, &p, &t) || bitnet_trainer_set_data(t, "/tmp/bn_cuda_train.u32", NULL)) {
        fprintf(stderr, "trainer: %s\n", bitnet_last_error());
        bitnet_trainer_free(t);
        return NULL;
    }
    return t;
}
/* Run steps [a, b) of t; losses into l[a..b). */
static bitnet_status run(bitnet_trainer *t, int a, int b, float *l) {
    for (int i = a; i < b; i++) {
        bitnet_train_stats st;
        bitnet_status s = bitnet_trainer_step(t, &st);
        if (s) return s;
        l[i] = st.loss;
    }
    return BITNET_OK;
}
static double worst_rel(const float *a, const float *b, int lo, int hi) {
    double w = 0;
    for (int i = lo; i < hi; i++) { double r = fabs((double)a[i] - b[i]) / fabs(b[i]); if (!(r <= w)) w = r; }
    return w;
}

/* Precision mode for the next GPU trainer. */
static void set_mode(const char *mode) { gpu_prec = prec_of(mode); }

static void test_vs_cpu_and_resume(void) {
    char dir[512], nm[160]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    write_data("/tmp/bn_cuda_train.u32", 20000, 7);
    float lc[20], lg[20], lgc[20], lcg[20], lr_[20];
    bitnet_trainer *c = mk(dir, "cpu", 20), *g;
    bitnet_status s = c ? run(c, 0, 20, lc) : BITNET_ERR_ARG;
    bitnet_trainer_free(c);
    /* The noise floor: the CPU trainer on the scalar reference kernels vs the default set, which
     * differ only in the order of float sums (~1e-6), drift apart as far as the note above says. */
    cpu_kernels = "ref";
    c = s ? NULL : mk(dir, "cpu", 20);
    if (!s && (!c || run(c, 0, 20, lr_))) s = BITNET_ERR_ARG;
    bitnet_trainer_free(c);
    cpu_kernels = NULL;
    double floor_ = s ? 1e30 : worst_rel(lr_, lc, 0, 20), bound = floor_ > 5e-4 ? 2 * floor_ : 1e-3;
    printf("# cpu[ref kernels] vs cpu[default kernels]: worst rel loss diff %.3g over 20 steps -> bound for the GPU %.3g\n", floor_, bound);
    static const char *modes[3] = {"fast", "default", "fp32"};   /* fp32 last: its run is resumed below */
    for (int k = 0; k < 3; k++) {
        set_mode(modes[k]); strict = !strcmp(modes[k], "fp32");
        g = s ? NULL : mk(dir, "cuda", 20);
        bitnet_status sg = g ? run(g, 0, 10, lg) : BITNET_ERR_ARG;
        if (!sg && k == 2) sg = bitnet_trainer_save(g, "/tmp/bn_cuda_ck_g");
        if (!sg) sg = run(g, 10, 20, lg);
        double w = s || sg ? 1e30 : worst_rel(lg, lc, 0, 20);
        snprintf(nm, sizeof nm, "gpu[%s] vs cpu: 20 steps (accum 2, clip, wd, cosine) agree within max(1e-3, 2x the CPU-vs-CPU drift)", modes[k]);
        GCHECK(nm, !s && !sg && w < bound, "worst rel %g, bound %g %s", w, bound, s || sg ? bitnet_last_error() : "");
        printf("# gpu[%s] vs cpu: the issue's 1e-3 over 20 steps: %s\n", modes[k], w < 1e-3 ? "met" : "not met (inside the CPU-vs-CPU drift)");
        if (!s && !sg) printf("# gpu[%s] vs cpu: worst rel loss diff %.3g over 20 steps (cpu %.5f -> %.5f, gpu %.5f -> %.5f)\n", modes[k], w, lc[0], lc[19], lg[0], lg[19]);
        bitnet_trainer_free(g);
    }
    strict = 1;
    double w;
    /* GPU checkpoint at step 10 -> CPU for 10 more */
    c = mk("/tmp/bn_cuda_ck_g", "cpu", 20);
    s = c ? bitnet_trainer_load_state(c, "/tmp/bn_cuda_ck_g") : BITNET_ERR_ARG;
    if (!s) s = run(c, 10, 20, lgc);
    w = s ? 1e30 : worst_rel(lgc, lg, 10, 20);
    CHECK("resume gpu -> cpu: steps 10..19 continue the GPU run within rel 1e-3", !s && bitnet_trainer_get_step(c) == 20 && w < 1e-3, "worst rel %g %s", w, s ? bitnet_last_error() : "");
    bitnet_trainer_free(c);
    /* CPU checkpoint at step 10 -> GPU */
    c = mk(dir, "cpu", 20);
    s = c ? run(c, 0, 10, lcg) : BITNET_ERR_ARG;
    if (!s) s = bitnet_trainer_save(c, "/tmp/bn_cuda_ck_c");
    bitnet_trainer_free(c);
    g = s ? NULL : mk("/tmp/bn_cuda_ck_c", "cuda", 20);
    s = g ? bitnet_trainer_load_state(g, "/tmp/bn_cuda_ck_c") : BITNET_ERR_ARG;
    if (!s) s = run(g, 10, 20, lcg);
    w = s ? 1e30 : worst_rel(lcg, lc, 10, 20);
    CHECK("resume cpu -> gpu: steps 10..19 continue the CPU run within rel 1e-3", !s && w < 1e-3, "worst rel %g %s", w, s ? bitnet_last_error() : "");
    bitnet_trainer_free(g);
    s = bitnet_export_packed("/tmp/bn_cuda_ck_g", "/tmp/bn_cuda_ck_g_packed", 0);
    bitnet_model *pm = NULL;
    if (!s) s = bitnet_model_load("/tmp/bn_cuda_ck_g_packed", &pm);
    CHECK("export: a GPU checkpoint packs and loads for inference", !s, "%s", bitnet_last_error());
    bitnet_model_free(pm);
}

/* The 20-step agreement on a realistic run (issue 12's "GPU and CPU trainers agree step by step
 * on a 20-step run within 1e-3"): a fresh 4-layer BitNet (hidden 128, 4 heads of 32, 2 kv heads,
 * ffn 344, vocab 2048, 0.86M parameters) on real text (tests/data/tinystories_27k.u32: the first
 * 100 kB of ../shared/data/tinystories-sample.txt, whole lines, `bitnet tokenize-file -m
 * models/bitnet-tinystories --eos-between-lines`, 27212 ids), 16 x 256 = 4096 tokens a step,
 * the first 20 steps of the bundled model's recipe (scripts/default-model.sh: 1200 steps, peak
 * lr 2e-3, 50 warm-up steps, two-stage, wd 0.1, clip 1), seed 1. On this run the two CPU kernel
 * sets (ref vs default) stay within 1.3e-4 of each other (measured on a 2-core x86 host, AVX2
 * set; 4.3e-4 with 5 warm-up steps to a 20-step cosine instead), unlike the tiny golden batch
 * above (2.4e-3); the GPU trainer is bounded by the 1e-3 itself in the default and
 * parity modes (the fast mode is printed). */
static bitnet_trainer *mk_real(const char *dev, const char *kernels, int prec) {
    const char *cfg = "/tmp/bn_cuda_real_cfg.json";
    FILE *f = fopen(cfg, "w");
    if (!f) return NULL;
    fputs("{\"architectures\":[\"BitNetForCausalLM\"],\"model_type\":\"bitnet\",\"vocab_size\":2048,\"hidden_size\":128,"
          "\"intermediate_size\":344,\"num_hidden_layers\":4,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
          "\"max_position_embeddings\":256,\"rope_theta\":10000,\"rms_norm_eps\":1e-05,\"hidden_act\":\"relu2\","
          "\"tie_word_embeddings\":true,\"bos_token_id\":2043,\"eos_token_id\":2047}\n", f);
    fclose(f);
    bitnet_train_params p = bitnet_train_default_params();
    p.batch = 16; p.seq = 256; p.total_steps = 1200; p.n_threads = 0; p.kernels = kernels; p.device = dev; p.precision = prec; p.seed = 1;
    p.optim.lr = 2e-3f; p.optim.weight_decay = 0.1f; p.optim.clip = 1.0f; p.optim.warmup = 50; p.optim.schedule = BITNET_LR_TWO_STAGE;
    bitnet_trainer *t = NULL;
    if (bitnet_trainer_new(cfg, &p, &t) || bitnet_trainer_set_data(t, "tests/data/tinystories_27k.u32", NULL)) {
        fprintf(stderr, "trainer: %s\n", bitnet_last_error());
        bitnet_trainer_free(t);
        return NULL;
    }
    return t;
}
static void test_real_20(void) {
    float lc[20], lr_[20], lg[20];
    char nm[200];
    bitnet_trainer *t = mk_real("cpu", NULL, 0);
    bitnet_status s = t ? run(t, 0, 20, lc) : BITNET_ERR_ARG;
    bitnet_trainer_free(t);
    t = s ? NULL : mk_real("cpu", "ref", 0);
    if (!s) s = t ? run(t, 0, 20, lr_) : BITNET_ERR_ARG;
    bitnet_trainer_free(t);
    double w = s ? 1e30 : worst_rel(lr_, lc, 0, 20);
    CHECK("real 20 steps (0.86M params, 4096 text tokens a step): cpu[ref] vs cpu[default] within rel 1e-3", !s && w < 1e-3,
          "worst rel %g %s", w, s ? bitnet_last_error() : "");
    printf("# real 20: cpu[ref] vs cpu[default] worst rel %.3g (cpu loss %.5f -> %.5f)\n", w, lc[0], lc[19]);
    static const char *modes[3] = {"default", "fp32", "fast"};
    for (int k = 0; k < 3 && !s; k++) {
        t = mk_real("cuda", NULL, prec_of(modes[k]));
        bitnet_status sg = t ? run(t, 0, 20, lg) : BITNET_ERR_ARG;
        bitnet_trainer_free(t);
        w = sg ? 1e30 : worst_rel(lg, lc, 0, 20);
        strict = strcmp(modes[k], "fast") != 0;
        snprintf(nm, sizeof nm, "real 20 steps: gpu[%s] vs cpu within rel 1e-3", modes[k]);
        GCHECK(nm, !sg && w < 1e-3, "worst rel %g %s", w, sg ? bitnet_last_error() : "");
        if (!sg) printf("# real 20: gpu[%s] vs cpu worst rel %.3g (gpu loss %.5f -> %.5f)\n", modes[k], w, lg[0], lg[19]);
    }
    strict = 1;
}

static void test_errors(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    bitnet_train_params p = bitnet_train_default_params();
    bitnet_trainer *t = NULL;
    p.device = "cuda:99";
    bitnet_status s = bitnet_trainer_new(dir, &p, &t);
    CHECK("errors: device cuda:99 is refused, naming it", s != BITNET_OK && strstr(bitnet_last_error(), "cuda:99"), "%d %s", s, bitnet_last_error());
    bitnet_trainer_free(t); t = NULL;
    p.device = "cuda"; p.param_set = BITNET_TRAIN_LORA;
    s = bitnet_trainer_new(dir, &p, &t);
    CHECK("errors: LoRA on the GPU is refused (CPU only)", s == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "LoRA"), "%d %s", s, bitnet_last_error());
    bitnet_trainer_free(t);
}

int main(int argc, char **argv) {
    const char *why = NULL;
    if (bn_cu_device_count(&why) == 0) { printf("skip cuda training: %s\n", why ? why : "no GPU"); return 0; }
    if (argc > 1 && !strcmp(argv[1], "real")) { test_real_20(); T_DONE(); }   /* only the realistic 20-step run */
    if (argc > 1 && !strcmp(argv[1], "golden")) {   /* only the default and fast golden runs */
        test_golden("default"); test_golden("fast");
        T_DONE();
    }
    test_golden("default");
    test_golden("fp32");
    test_golden("fast");
    test_adamw_bits();
    test_i8_same_bits();
    test_head_bf16();
    test_rms_rows();
    test_fold_bits();
    test_rg_awkward();
    test_ws_bits();
    test_rms_wide();
    test_vs_cpu_and_resume();
    test_real_20();
    test_errors();
    T_DONE();
}
