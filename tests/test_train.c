/* test_train.c — training model checks: golden step-0 logits and gradients and 8 AdamW losses
 * (tests/golden/bitnet-b158-master, made with transformers), finite-difference gradient checks
 * of every layer type in --no-quant mode (both families), AdamW vs a scalar reference, data
 * loader errors, export round trip, shuffled data windows, text-as-data hints, trainer_state range
 * checks and stored options on resume, batch x seq size limits. */
#include "t.h"
#include "train/train.h"
#include "backend/backend.h"
#include "backend/cpu/layers.h"
#include "model/model.h"
#include "train/optim.h"
#include "backend/cpu/gemm_f32.h"
#include "io/safetensors.h"
#include "train/train_loop.h"
#include "train/data.h"
#include "train/train_export.h"
#include <cjson/cJSON.h>
#include <unistd.h>
#include <sys/stat.h>
#include "t_train.h"

static char *gpath(const char *model, const char *file) {
    static char buf[4][512]; static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s/%s", t_golden(), model, file);
    return b;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    return sqrt(num / (den > 0 ? den : 1e-30));
}

static void test_golden(int nthreads) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    bn_train_model *m;
    bitnet_status s = bn_train_model_from_dir(dir, 0, nthreads, &m);
    CHECK("golden: load master", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    size_t ntok; uint32_t *tok = t_read_file(gpath("bitnet-b158-master", "golden_train_tokens.u32"), &ntok);
    char *js = t_read_file(gpath("bitnet-b158-master", "golden_train.json"), NULL);
    cJSON *j = cJSON_Parse(js);
    int B = cJSON_GetObjectItem(j, "B")->valueint, T = cJSON_GetObjectItem(j, "T")->valueint;
    ntok /= 4;
    CHECK("golden: token file holds B*T+1", (int)ntok == B * T + 1, "%zu tokens", ntok);
    int32_t *in = malloc(B * T * 4), *tg = malloc(B * T * 4);
    for (int i = 0; i < B * T; i++) { in[i] = (int32_t)tok[i]; tg[i] = (int32_t)tok[i + 1]; }
    float loss;
    s = bn_train_forward(m, in, tg, B, T, &loss);
    CHECK("golden: forward", s == BITNET_OK, "%s", bitnet_last_error());
    size_t nl; float *gl = t_read_file(gpath("bitnet-b158-master", "golden_logits_step0.f32"), &nl);
    int V = m->cfg.vocab_size;
    double e = rel_l2(bn_train_logits(m), gl, (size_t)B * T * V);
    CHECK("golden: step-0 logits rel L2 < 1e-4", nl == (size_t)B * T * V * 4 && e < 1e-4, "rel %g", e);
    printf("# threads %d: logits rel L2 %.3g\n", nthreads, e);
    cJSON *losses = cJSON_GetObjectItem(j, "losses");
    double l0 = cJSON_GetArrayItem(losses, 0)->valuedouble;
    CHECK("golden: step-0 loss", fabs(loss - l0) / l0 < 2e-3, "%g vs %g", loss, l0);
    bn_train_zero_grad(m);
    s = bn_train_backward(m, 1.0f);
    CHECK("golden: backward", s == BITNET_OK, "%s", bitnet_last_error());
    bn_st *gs;
    s = bn_st_open(gpath("bitnet-b158-master", "golden_grads_step0.safetensors"), &gs);
    CHECK("golden: open grads", s == BITNET_OK, "%s", bitnet_last_error());
    double worst = 0; const char *wn = "";
    int nfound = 0;
    for (int i = 0; i < m->n_tp; i++) {
        const bn_tensor *t = bn_st_find(gs, m->tp[i].name);
        if (!t || (size_t)t->numel != m->tp[i].numel) continue;
        nfound++;
        float *ref = malloc(t->numel * 4);
        bn_tensor_to_f32(t, ref, 0, t->numel);
        double r = rel_l2(m->grads + m->tp[i].off, ref, t->numel);
        if (r > worst || r != r) { worst = r; wn = m->tp[i].name; }
        free(ref);
    }
    CHECK("golden: every parameter has a golden gradient", nfound == m->n_tp && nfound == bn_st_count(gs), "%d of %d", nfound, m->n_tp);
    CHECK("golden: step-0 gradients rel L2 < 1e-2", worst < 1e-2, "worst %g (%s)", worst, wn);
    printf("# threads %d: worst gradient rel L2 %.3g (%s)\n", nthreads, worst, wn);
    bn_st_free(gs);
    /* 8 AdamW steps on the same batch */
    bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    cJSON *o = cJSON_GetObjectItem(j, "optimizer");
    oc.lr = cJSON_GetObjectItem(o, "lr")->valuedouble; oc.beta1 = cJSON_GetObjectItem(o, "beta1")->valuedouble;
    oc.beta2 = cJSON_GetObjectItem(o, "beta2")->valuedouble; oc.eps = cJSON_GetObjectItem(o, "eps")->valuedouble;
    oc.wd = cJSON_GetObjectItem(o, "weight_decay")->valuedouble;
    double wl = 0;
    int steps = cJSON_GetArraySize(losses);
    for (int st = 0; st < steps; st++) {
        if (st > 0) {
            s = bn_train_forward(m, in, tg, B, T, &loss);
            bn_train_zero_grad(m);
            if (!s) s = bn_train_backward(m, 1.0f);
        }
        double ref = cJSON_GetArrayItem(losses, st)->valuedouble;
        double r = fabs(loss - ref) / ref;
        if (r > wl) wl = r;
        bn_adamw_update(m->k, m->pool, m->params, m->grads, m->adam_m, m->adam_v, m->n_params, oc.lr, oc.beta1, oc.beta2, oc.eps, oc.wd, st + 1);
    }
    CHECK("golden: 8 AdamW losses within rel 2e-3", wl < 2e-3, "worst rel %g", wl);
    printf("# threads %d: worst loss rel err %.3g (last loss %.6f)\n", nthreads, wl, loss);
    cJSON_Delete(j); free(js); free(tok); free(in); free(tg); free(gl);
    bn_train_model_free(m);
}

/* Central finite differences vs backward in --no-quant mode, for every parameter tensor
 * (so every layer type: embedding, norms, q/k/v/o with RoPE + GQA attention, gated FFN, head). */
static void test_fd(int fam, int B, int T) {
    bn_config c = tiny_cfg(fam);
    bn_train_model *m;
    bitnet_status s = bn_train_model_new(&c, 1, 1, &m);
    CHECK("fd: model", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    bn_train_model_init_random(m, 7 + fam, 0.3f);
    for (int i = 0; i < m->n_tp; i++)  /* non-trivial norm weights so their gradients matter */
        if (m->tp[i].kind == BN_PK_NORM) for (size_t j = 0; j < m->tp[i].numel; j++) m->params[m->tp[i].off + j] = 1.0f + 0.1f * (float)((int)((j * 7) % 5) - 2);
    int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
    for (int i = 0; i < B * T; i++) { in[i] = (i * 5 + 3) % c.vocab_size; tg[i] = (i * 11 + 1) % c.vocab_size; }
    float loss;
    bn_train_forward(m, in, tg, B, T, &loss);
    bn_train_zero_grad(m);
    bn_train_backward(m, 1.0f);
    double worst = 0; const char *wn = "";
    for (int i = 0; i < m->n_tp; i++) {
        bn_tparam *p = &m->tp[i];
        /* the 6 largest analytic gradients of this tensor */
        size_t pick[6]; int np = 0;
        for (int k = 0; k < 6; k++) {
            size_t best = 0; float bv = -1;
            for (size_t j = 0; j < p->numel; j++) {
                int used = 0; for (int q = 0; q < np; q++) used |= pick[q] == j;
                float g = fabsf(m->grads[p->off + j]);
                if (!used && g > bv) { bv = g; best = j; }
            }
            pick[np++] = best;
        }
        double num = 0, den = 0;
        for (int k = 0; k < np; k++) {
            float *x = &m->params[p->off + pick[k]], x0 = *x, lp, lm;
            float h = 1e-2f * (fabsf(x0) > 1 ? fabsf(x0) : 1);
            *x = x0 + h; bn_train_forward(m, in, tg, B, T, &lp);
            *x = x0 - h; bn_train_forward(m, in, tg, B, T, &lm);
            *x = x0;
            double fd = ((double)lp - lm) / (2.0 * h), an = m->grads[p->off + pick[k]];
            num += (fd - an) * (fd - an); den += an * an;
        }
        double r = sqrt(num / (den > 0 ? den : 1e-30));
        if (getenv("FD_VERBOSE")) printf("#   %s rel %g\n", p->name, r);
        if (r > worst || r != r) { worst = r; wn = p->name; }
    }
    char nm[96]; snprintf(nm, sizeof nm, "fd: %s gradients match finite differences (B=%d, T=%d)", fam ? "1bitLLM/silu/untied" : "2B-4T/relu2/tied", B, T);
    CHECK(nm, worst < 2e-2, "worst rel %g (%s)", worst, wn);
    printf("# fd family %d T %d: worst rel error %.3g (%s)\n", fam, T, worst, wn);
    free(in); free(tg);
    bn_train_model_free(m);
}

static void write_u32(const char *path, const uint32_t *t, size_t n) {
    FILE *f = fopen(path, "wb"); fwrite(t, 4, n, f); fclose(f);
}

static void test_data_and_errors(void) {
    const char *p = "/tmp/bn_test_train_data.u32";
    uint32_t t[200];
    for (int i = 0; i < 200; i++) t[i] = (uint32_t)(i % 20);
    write_u32(p, t, 200);
    bn_data *d;
    bitnet_status s = bn_data_open(p, 20, 2, 8, &d);
    CHECK("data: open", s == BITNET_OK, "%s", bitnet_last_error());
    if (!s) {
        int32_t in[16], tg[16];
        bn_data_next(d, in, tg);
        CHECK("data: first batch", in[0] == 0 && tg[0] == 1 && in[15] == 15 && tg[15] == 16, "%d %d %d %d", in[0], tg[0], in[15], tg[15]);
        for (int k = 0; k < 11; k++) bn_data_next(d, in, tg);  /* 12 batches use 192 (+1) tokens */
        bn_data_next(d, in, tg);                                  /* the 13th wraps to position 0 */
        CHECK("data: wraps around", in[0] == 0 && d->pos == 16, "in0 %d pos %zu", in[0], d->pos);
        bn_data_free(d);
    }
    s = bn_data_open(p, 19, 2, 8, &d);
    CHECK("data: vocab mismatch is an error naming the file", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), p) && strstr(bitnet_last_error(), "vocabulary"), "%d %s", s, bitnet_last_error());
    s = bn_data_open(p, 20, 4, 50, &d);
    CHECK("data: too short for one batch is an error", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "too short"), "%d %s", s, bitnet_last_error());
    write_u32(p, t, 17);
    s = bn_data_open(p, 20, 2, 8, &d);
    CHECK("data: exactly B*T+1 tokens is enough", s == BITNET_OK, "%s", bitnet_last_error());
    bn_data_free(d);
    write_u32(p, t, 16);
    s = bn_data_open(p, 20, 2, 8, &d);
    CHECK("data: B*T tokens is too short", s == BITNET_ERR_FORMAT, "%d", s);

    /* NaN loss: the step fails, nothing is updated */
    write_u32(p, t, 200);
    bn_config c = tiny_cfg(0); c.vocab_size = 20;
    bn_train_model *m;
    bn_train_model_new(&c, 0, 1, &m);
    bn_train_model_init_random(m, 1, 0.02f);
    bn_data_open(p, 20, 2, 8, &d);
    bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    bn_trainer tr;
    bn_trainer_init(&tr, m, d, &oc, 2, 8, 1);
    bn_step_stats st;
    s = bn_trainer_step(&tr, &st);
    CHECK("errors: a normal step", s == BITNET_OK && isfinite(st.loss), "%s", bitnet_last_error());
    m->params[m->tp[m->final_norm].off] = NAN;
    float *copy = malloc(m->n_params * 4); memcpy(copy, m->params, m->n_params * 4);
    size_t pos = d->pos; int64_t step = tr.step;
    s = bn_trainer_step(&tr, &st);
    CHECK("errors: NaN loss stops the step with a clear error", s == BITNET_ERR_NUMERIC && strstr(bitnet_last_error(), "not finite"), "%d %s", s, bitnet_last_error());
    m->params[m->tp[m->final_norm].off] = 0; copy[m->tp[m->final_norm].off] = 0;
    CHECK("errors: NaN step leaves parameters, step and data position alone",
          !memcmp(copy, m->params, m->n_params * 4) && tr.step == step && d->pos == pos, "changed");
    /* write failure: a checkpoint under a path that cannot be a directory */
    s = bn_trainer_save(&tr, "/dev/null/ckpt");
    CHECK("errors: unwritable checkpoint directory is an error", s == BITNET_ERR_IO, "%d %s", s, bitnet_last_error());
    free(copy);
    bn_trainer_free(&tr); bn_data_free(d); bn_train_model_free(m);
    unlink(p);
}

/* A short run on a repeating token pattern: the loss must fall well below its start. */
static void test_loss_falls(void) {
    const char *p = "/tmp/bn_test_train_pat.u32";
    uint32_t t[4000];
    for (int i = 0; i < 4000; i++) t[i] = (uint32_t)((i % 37) * 7 % 30);
    write_u32(p, t, 4000);
    bn_config c = tiny_cfg(0); c.vocab_size = 30; c.hidden_size = 32; c.head_dim = 8; c.intermediate_size = 64;
    bn_train_model *m; bn_data *d;
    bn_train_model_new(&c, 0, 2, &m);
    bn_train_model_init_random(m, 3, 0.02f);
    bn_data_open(p, 30, 4, 32, &d);
    bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    oc.lr = 1e-2f; oc.sched = BN_LR_COSINE; oc.warmup = 5; oc.total_steps = 60;
    bn_trainer tr; bn_trainer_init(&tr, m, d, &oc, 4, 32, 1);
    bn_step_stats st; float first = 0;
    for (int i = 0; i < 60; i++) { bn_trainer_step(&tr, &st); if (!i) first = st.loss; }
    CHECK("train: loss falls on a repeating pattern (QAT)", st.loss < 0.5f * first, "first %g last %g", first, st.loss);
    printf("# loss %.4f -> %.4f in 60 steps\n", first, st.loss);
    bn_trainer_free(&tr); bn_data_free(d); bn_train_model_free(m);
    unlink(p);
}

/* export --packed: decode the packed tensors and compare with quantizing the master weights. */
static void test_export(void) {
    char dir[512]; snprintf(dir, sizeof dir, "%s/bitnet-b158-master", t_golden());
    const char *out = "/tmp/bn_test_export_packed";
    bitnet_status s = bn_export_packed(dir, out);
    CHECK("export: writes", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    bn_train_model *m; bn_train_model_from_dir(dir, 1, 1, &m);
    bn_st *st; char mp[600]; snprintf(mp, sizeof mp, "%s/model.safetensors", out);
    s = bn_st_open(mp, &st);
    CHECK("export: readable", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) { bn_train_model_free(m); return; }
    int bad = 0, nlin = 0; char why[256] = "";
    for (int i = 0; i < m->n_tp; i++) {
        bn_tparam *p = &m->tp[i];
        const bn_tensor *t = bn_st_find(st, p->name);
        if (!t) { bad++; snprintf(why, sizeof why, "missing %s", p->name); continue; }
        if (p->kind != BN_PK_LINEAR) {
            int ok = t->dtype == BN_BF16 && (size_t)t->numel == p->numel;
            for (size_t j = 0; ok && j < p->numel; j++) { uint16_t h; memcpy(&h, (const uint8_t *)t->data + 2 * j, 2); ok = h == bn_f32_to_bf16(m->params[p->off + j]); }
            if (!ok) { bad++; snprintf(why, sizeof why, "%s", p->name); }
            continue;
        }
        nlin++;
        int out_ = (int)p->shape[0], in = (int)p->shape[1];
        int8_t *q = malloc(p->numel);
        float mean = bn_ternarize(m->params + p->off, p->numel, q);
        char sn[128]; snprintf(sn, sizeof sn, "%s_scale", p->name);
        const bn_tensor *sc = bn_st_find(st, sn);
        int ok = t->dtype == BN_U8 && t->ndim == 2 && t->shape[0] == out_ / 4 && t->shape[1] == in && sc && sc->dtype == BN_BF16 && sc->numel == 1;
        if (ok) { uint16_t h; memcpy(&h, sc->data, 2); ok = h == bn_f32_to_bf16(mean); }
        const uint8_t *b = t->data;
        for (int r = 0; ok && r < out_; r++)
            for (int col = 0; ok && col < in; col++) {
                int code = (b[(size_t)(r % (out_ / 4)) * in + col] >> (2 * (r / (out_ / 4)))) & 3;
                ok = code - 1 == q[(size_t)r * in + col];
            }
        if (!ok) { bad++; snprintf(why, sizeof why, "%s", p->name); }
        free(q);
    }
    CHECK("export: packed tensors decode to the quantized master (values, scales, bf16 norms/embeddings)", bad == 0 && nlin == 14, "%d bad (%s), %d linear", bad, why, nlin);
    char cp[600]; snprintf(cp, sizeof cp, "%s/config.json", out);
    char *cj = t_read_file(cp, NULL);
    CHECK("export: config says offline autobitlinear", cj && strstr(cj, "\"offline\"") && strstr(cj, "\"autobitlinear\""), "%s", cj ? cj : "(none)");
    free(cj);
    bn_st_free(st);
    /* inference on the export: bitnet_model_load + one forward over the golden prompt */
    char *gj = t_read_file(gpath("bitnet-b158-master", "golden.json"), NULL);
    cJSON *g = cJSON_Parse(gj); cJSON *pi = cJSON_GetObjectItem(g, "prompt_ids");
    int n = cJSON_GetArraySize(pi), V = m->cfg.vocab_size;
    int32_t *ids = malloc(n * 4); for (int i = 0; i < n; i++) ids[i] = cJSON_GetArrayItem(pi, i)->valueint;
    float *gl = t_read_file(gpath("bitnet-b158-master", "golden_prompt_logits.f32"), NULL);
    bitnet_model *bm; bitnet_ctx *ctx;
    s = bitnet_model_load(out, &bm);
    CHECK("export: inference engine loads the packed export", s == BITNET_OK, "%s", bitnet_last_error());
    if (!s) {
        bitnet_ctx_params cp2 = {.n_ctx = 0, .n_threads = 1};
        bitnet_ctx_new(bm, &cp2, &ctx);
        float *lg = malloc((size_t)n * V * 4);
        s = bitnet_ctx_eval(ctx, ids, n, lg, 1);
        double mean = 0, sd = 0, mx = 0, mu = 0; int same = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) mu += gl[i];
        mu /= (double)n * V;
        for (size_t i = 0; i < (size_t)n * V; i++) { sd += (gl[i] - mu) * (gl[i] - mu); double d = fabs(lg[i] - gl[i]); mean += d; if (d > mx) mx = d; }
        sd = sqrt(sd / ((double)n * V)); mean /= (double)n * V;
        for (int r = 0; r < n; r++) {
            int a = 0, b = 0;
            for (int v = 1; v < V; v++) { if (lg[r * V + v] > lg[r * V + a]) a = v; if (gl[r * V + v] > gl[r * V + b]) b = v; }
            same += a == b;
        }
        /* bf16 storage (embeddings, norms, weight_scale) moves logits by ~2.5e-2 std uniformly;
         * with float32 copies of those the same packed ternary tensors give 3e-7 (checked once). */
        CHECK("export: bitnet logits on the export vs golden master logits (mean <= 5e-2 std, max <= 0.25 std)",
              s == BITNET_OK && mean <= 5e-2 * sd && mx <= 0.25 * sd, "mean %g max %g (std %g)", mean / sd, mx / sd, sd);
        CHECK("export: argmax agrees on >= 80% of rows", same * 5 >= n * 4, "%d of %d", same, n);
        printf("# export logits: mean |diff| %.3g std, max %.3g std, argmax %d/%d\n", mean / sd, mx / sd, same, n);
        free(lg);
        bitnet_ctx_free(ctx); bitnet_model_free(bm);
    }
    free(ids); free(gl); cJSON_Delete(g); free(gj);
    /* out rows not a multiple of 4 */
    bn_config c = tiny_cfg(0); c.n_kv_heads = 2; c.head_dim = 2; c.n_heads = 8; c.hidden_size = 16; c.intermediate_size = 22;
    bn_train_model *m2; bn_train_model_new(&c, 1, 1, &m2);
    const char *bd = "/tmp/bn_test_export_bad"; mkdir(bd, 0777);
    bn_train_save_weights(m2, bd);
    s = bn_export_packed(bd, "/tmp/bn_test_export_bad_out");
    CHECK("export: out % 4 != 0 is a clear error", s == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "multiple of 4"), "%d %s", s, bitnet_last_error());
    bn_train_model_free(m2);
    bn_train_model_free(m);
}


/* The training model takes its kernel set by parameter (bn_train_model_new_ex): every set here
 * gives the same loss and gradients as ref within float rounding (full precision, so that no
 * quantizer step can flip on a rounding difference), two models on different sets live side by
 * side, each reports its own set, and an unknown name is refused. */
static void test_train_sets(void) {
    bn_config c = tiny_cfg(0); c.max_pos = 256;
    const char *const *av = bn_kernels_available();
    int B = 2, T = 70;
    int32_t *in = malloc((size_t)B * T * sizeof *in), *tg = malloc((size_t)B * T * sizeof *tg);
    for (int i = 0; i < B * T; i++) { in[i] = (i * 7 + 2) % c.vocab_size; tg[i] = (i * 5 + 1) % c.vocab_size; }
    bn_train_model *r = NULL;
    CHECK("train sets: ref model", bn_train_model_new_ex(&c, 1, 2, "ref", &r) == BITNET_OK && !strcmp(r->k->name, "ref"), "%s", bitnet_last_error());
    if (!r) { free(in); free(tg); return; }
    bn_train_model_init_random(r, 5, 0.2f);
    float lr_ = 0; bn_train_forward(r, in, tg, B, T, &lr_); bn_train_zero_grad(r); bn_train_backward(r, 1.0f);
    for (int k = 0; av[k]; k++) {
        if (!strcmp(av[k], "ref")) continue;
        bn_train_model *m = NULL;
        char nm[128]; snprintf(nm, sizeof nm, "train sets: %s model has its own set", av[k]);
        CHECK(nm, bn_train_model_new_ex(&c, 1, 2, av[k], &m) == BITNET_OK && !strcmp(m->k->name, av[k]), "%s", bitnet_last_error());
        if (!m) continue;
        memcpy(m->params, r->params, r->n_params * sizeof(float));
        float l = 0; bn_train_forward(m, in, tg, B, T, &l); bn_train_zero_grad(m); bn_train_backward(m, 1.0f);
        double num = 0, den = 0;
        for (size_t i = 0; i < r->n_params; i++) { double d = (double)m->grads[i] - r->grads[i]; num += d * d; den += (double)r->grads[i] * r->grads[i]; }
        double rel = sqrt(num / (den > 0 ? den : 1));
        snprintf(nm, sizeof nm, "train sets: %s loss and gradients match ref (rel 1e-5)", av[k]);
        CHECK(nm, fabsf(l - lr_) <= 1e-5f * fabsf(lr_) && rel < 1e-5, "loss %.7g vs %.7g, grad rel L2 %g", l, lr_, rel);
        bn_train_model_free(m);
    }
    bn_train_model *x = NULL;
    CHECK("train sets: an unknown kernel set is refused", bn_train_model_new_ex(&c, 0, 1, "no-such-set", &x) == BITNET_ERR_UNSUPPORTED && !x, " ");
    bn_train_model_free(r); free(in); free(tg);
}

/* Causality across attention's row blocks: logits of the first n positions of a length-T
 * sequence equal those of the length-n prefix (n inside, at and past block edges). */
static void test_causal(int T) {
    bn_config c = tiny_cfg(0); c.max_pos = 256;
    bn_train_model *m;
    if (bn_train_model_new(&c, 1, 1, &m)) { CHECK("causal: model", 0, "%s", bitnet_last_error()); return; }
    bn_train_model_init_random(m, 3, 0.3f);
    int32_t *in = malloc((size_t)T * sizeof *in);
    for (int i = 0; i < T; i++) in[i] = (i * 7 + 2) % c.vocab_size;
    float *full = malloc((size_t)T * c.vocab_size * sizeof *full);
    bn_train_forward(m, in, NULL, 1, T, NULL);
    memcpy(full, bn_train_logits(m), (size_t)T * c.vocab_size * sizeof *full);
    static const int ns[] = {1, 17, 63, 64, 65, 128, 129};
    double worst = 0;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        if (n > T) continue;
        bn_train_model *m2; bn_train_model_new(&c, 1, 1, &m2);
        memcpy(m2->params, m->params, m->n_params * sizeof(float));
        bn_train_forward(m2, in, NULL, 1, n, NULL);
        const float *l = bn_train_logits(m2);
        for (size_t i = 0; i < (size_t)n * c.vocab_size; i++) { double d = fabs((double)l[i] - full[i]); if (d > worst || d != d) worst = d; }
        bn_train_model_free(m2);
    }
    CHECK("causal: prefix logits equal the full sequence's (across attention row blocks)", worst < 1e-4, "worst |diff| %g", worst);
    free(in); free(full);
    bn_train_model_free(m);
}

/* bn_adamw_update (vectorized, split over 2 threads) equals torch's per-element AdamW formula in
 * scalar float32 bit for bit, with and without weight decay, over a length with a ragged tail,
 * with every kernel set's row kernel. */
static void test_adamw_set(const bn_kernels *K) {
    size_t n = 70000 + 13;
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = malloc(n * 4), *v = malloc(n * 4);
    float *p2 = malloc(n * 4), *m2 = malloc(n * 4), *v2 = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        p[i] = p2[i] = sinf((float)i) * 0.1f; g[i] = cosf((float)i * 0.7f) * 0.01f;
        m[i] = m2[i] = g[i] * 0.5f; v[i] = v2[i] = g[i] * g[i] * (float)(i % 3);
    }
    bn_pool *pool; bn_pool_new(2, &pool);
    int same = 1;
    for (int t = 1; t <= 3; t++) {
        float lr = 1e-3f * t, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = t == 2 ? 0.0f : 0.1f;
        bn_adamw_update(K, pool, p, g, m, v, n, lr, b1, b2, eps, wd, t);
        double bc1 = 1.0 - pow(b1, t), bc2s = sqrt(1.0 - pow(b2, t));
        for (size_t i = 0; i < n; i++) {
            float pp = p2[i];
            if (wd != 0.0f) pp *= 1.0f - lr * wd;
            float mm = m2[i] + (g[i] - m2[i]) * (1.0f - b1);
            float vv = v2[i] * b2 + (1.0f - b2) * g[i] * g[i];
            float den = sqrtf(vv) / (float)bc2s + eps;
            pp += (-(float)(lr / bc1) * mm) / den;
            p2[i] = pp; m2[i] = mm; v2[i] = vv;
        }
        same &= !memcmp(p, p2, n * 4) && !memcmp(m, m2, n * 4) && !memcmp(v, v2, n * 4);
    }
    char nm[96]; snprintf(nm, sizeof nm, "adamw[%s]: vectorized 2-thread update equals the scalar formula bit for bit", K->name);
    CHECK(nm, same, "differs");
    bn_pool_free(pool);
    free(p); free(g); free(m); free(v); free(p2); free(m2); free(v2);
}
static void test_adamw(void) {
    for (const char *const *av = bn_kernels_available(); *av; av++) test_adamw_set(bn_kernels_by_name(*av));
}

/* bn_sgemm against a double reference for every transpose combination, edge sizes (M, N, K not
 * multiples of the tiles, K > KC, M > MC), padded leading dimensions and accumulate, on every
 * kernel set this CPU has (each set's micro-kernel, given as the parameter); bn_sgemm_mt on 2
 * threads must equal 1 thread bit for bit, on every set. */
static void test_gemm(void) {
    static const int sz[][3] = {{1, 1, 1}, {13, 33, 7}, {25, 70, 300}, {150, 100, 520}, {12, 32, 64}, {290, 64, 256}, {37, 300, 45}};
    const char *const *isas = bn_kernels_available();
    float *ws = bn_alloc(bn_sgemm_ws_floats() * sizeof(float));
    uint64_t r = 12345;
    for (int is = 0; isas[is]; is++) {
        const bn_kernels *ks = bn_kernels_by_name(isas[is]);
        double worst = 0; int bad = 0;
        for (size_t z = 0; z < sizeof sz / sizeof sz[0]; z++)
            for (int t = 0; t < 8; t++) {
                int ta = t & 1, tb = t >> 1 & 1, acc = t >> 2, M = sz[z][0], N = sz[z][1], K = sz[z][2];
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *C0 = malloc(nc * 4);
                for (size_t i = 0; i < na; i++) { r = r * 6364136223846793005ull + 1442695040888963407ull; A[i] = (float)((r >> 40) % 2001) / 1000.0f - 1.0f; }
                for (size_t i = 0; i < nb; i++) { r = r * 6364136223846793005ull + 1442695040888963407ull; B[i] = (float)((r >> 40) % 2001) / 1000.0f - 1.0f; }
                for (size_t i = 0; i < nc; i++) C[i] = C0[i] = (float)(i % 7) - 3.0f;
                bn_sgemm(ks, ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc, ws);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < ldc; j++) {
                        double ref = C0[(size_t)i * ldc + j];
                        if (j < N) {
                            double sum = 0;
                            for (int k = 0; k < K; k++)
                                sum += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                            ref = (acc ? ref : 0) + sum;
                        }
                        double e = fabs(C[(size_t)i * ldc + j] - ref) / (1.0 + sqrt((double)K));
                        if (e > worst) worst = e;
                        if (!(e < 1e-5)) bad++;
                    }
                free(A); free(B); free(C); free(C0);
            }
        char nm[96]; snprintf(nm, sizeof nm, "gemm %s (%s): all transposes, edges, acc vs reference", isas[is], ks->sgemm->name);
        CHECK(nm, bad == 0, "%d elements off, worst scaled error %g", bad, worst);
    }
    /* threads: 2-thread split (rows or columns) equals one thread bit for bit */
    bn_pool *pool; bn_pool_new(2, &pool);
    float *ws2[2] = {ws, bn_alloc(bn_sgemm_ws_floats() * sizeof(float))};
    for (int is = 0; isas[is]; is++) {
        const bn_kernels *ks = bn_kernels_by_name(isas[is]);
        int same = 1;
        static const int msz[][3] = {{300, 70, 90}, {70, 300, 90}, {2048, 384, 64}, {384, 1024, 300}};
        for (size_t z = 0; z < sizeof msz / sizeof msz[0]; z++)
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1, M = msz[z][0], N = msz[z][1], K = msz[z][2];
                float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4), *C1 = malloc((size_t)M * N * 4), *C2 = malloc((size_t)M * N * 4);
                for (size_t i = 0; i < (size_t)M * K; i++) A[i] = sinf((float)i * 0.37f);
                for (size_t i = 0; i < (size_t)K * N; i++) B[i] = cosf((float)i * 0.11f);
                bn_sgemm(ks, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, 0, C1, N, ws);
                bn_sgemm_mt(ks, pool, ws2, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, 0, C2, N);
                if (memcmp(C1, C2, (size_t)M * N * 4)) same = 0;
                free(A); free(B); free(C1); free(C2);
            }
        char nm[96]; snprintf(nm, sizeof nm, "gemm %s: 2 threads bit-identical to 1 thread", isas[is]);
        CHECK(nm, same, "results differ");
    }
    bn_free(ws2[1]); bn_free(ws); bn_pool_free(pool);
}

/* Shuffled windows: each epoch visits every window once, in a seeded order that (seed, pos)
 * alone reproduce; rows are whole windows (T+1 consecutive tokens at a multiple of T). */
static void test_shuffle(void) {
    char p[64]; snprintf(p, sizeof p, "/tmp/bn_test_train_shuf.%d.u32", (int)getpid());
    uint32_t t[401];
    for (int i = 0; i < 401; i++) t[i] = (uint32_t)i;   /* token == its position */
    write_u32(p, t, 401);
    bn_data *a, *b;
    bitnet_status s = bn_data_open(p, 401, 2, 8, &a);
    if (!s) s = bn_data_open(p, 401, 2, 8, &b);
    CHECK("shuffle: open", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    bn_data_shuffle(a, 7);
    int32_t in[16], tg[16], in2[16], tg2[16];
    int seen[50] = {0}, rows_ok = 1, in_order = 1;
    for (int k = 0; k < 25; k++) {                      /* 50 windows = one epoch */
        bn_data_next(a, in, tg);
        for (int r = 0; r < 2; r++) {
            int w = in[r * 8] / 8;
            rows_ok &= in[r * 8] % 8 == 0 && w < 50;
            for (int j = 0; j < 8; j++) rows_ok &= in[r * 8 + j] == in[r * 8] + j && tg[r * 8 + j] == in[r * 8 + j] + 1;
            if (w < 50) seen[w]++;
            in_order &= w == 2 * k + r;
        }
    }
    int once = 1; for (int w = 0; w < 50; w++) once &= seen[w] == 1;
    CHECK("shuffle: rows are whole windows at multiples of T", rows_ok, "bad row");
    CHECK("shuffle: an epoch visits every window exactly once", once, "not a permutation");
    CHECK("shuffle: the order is not the file order", !in_order, "sequential");
    /* same seed and position -> same batches (resume); another seed -> another order */
    bn_data_next(a, in, tg);
    bn_data_shuffle(b, 7); b->pos = 50;
    bn_data_next(b, in2, tg2);
    CHECK("shuffle: (seed, pos) reproduce a batch in the next epoch", !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg), "differs");
    bn_data_shuffle(a, 7); bn_data_next(a, in, tg);
    bn_data_shuffle(b, 8); bn_data_next(b, in2, tg2);
    CHECK("shuffle: another seed gives another order", memcmp(in, in2, sizeof in), "same");
    bn_data_free(a); bn_data_free(b);
    /* text given as token data */
    char tp[64]; snprintf(tp, sizeof tp, "/tmp/bn_test_train_text.%d.txt", (int)getpid());
    FILE *f = fopen(tp, "wb"); fputs("Once upon a time there was a cat. It sat on a mat, all day long!\n", f); fclose(f);  /* 65 bytes */
    s = bn_data_open(tp, 1000, 1, 4, &a);
    CHECK("data: a text file (size not a multiple of 4) suggests tokenize-file", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "tokenize-file") && strstr(bitnet_last_error(), tp), "%d %s", s, bitnet_last_error());
    f = fopen(tp, "wb"); fputs("Once upon a time there was a cat. It sat on a mat, all day long.\n\n\n", f); fclose(f);  /* 68 bytes */
    s = bn_data_open(tp, 1000, 1, 4, &a);
    CHECK("data: a text file (ids out of range) suggests tokenize-file", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "tokenize-file"), "%d %s", s, bitnet_last_error());
    s = bn_data_open("/tmp", 1000, 1, 4, &a);
    CHECK("data: a directory is an error, not a read", s == BITNET_ERR_IO && strstr(bitnet_last_error(), "not a regular file"), "%d %s", s, bitnet_last_error());
    unlink(tp); unlink(p);
}

/* A train_state.safetensors laid out as bn_trainer_save writes it, with a chosen trainer_state. */
static void write_state(const bn_train_model *m, const char *path, const int64_t state[8]) {
    bn_st_writer *w; bn_st_writer_new(&w);
    static const char *pre[3] = {"param.", "adam_m.", "adam_v."};
    const float *buf[3] = {m->params, m->adam_m, m->adam_v};
    char nm[128];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < m->n_tp; i++) {
            snprintf(nm, sizeof nm, "%s%s", pre[k], m->tp[i].name);
            bn_st_writer_add(w, nm, BN_F32, m->tp[i].ndim, m->tp[i].shape, buf[k] + m->tp[i].off);
        }
    int64_t sh[1] = {8};
    bn_st_writer_add(w, "trainer_state", BN_I64, 1, sh, state);
    bn_st_writer_save(w, path);
    bn_st_writer_free(w);
}

/* F6: every trainer_state field is range-checked on resume; options round-trip; F10 sizes. */
static void test_state_checks(void) {
    char p[64], dir[64];
    snprintf(p, sizeof p, "/tmp/bn_test_train_state.%d.u32", (int)getpid());
    snprintf(dir, sizeof dir, "/tmp/bn_test_train_state_dir.%d", (int)getpid());
    uint32_t t[200];
    for (int i = 0; i < 200; i++) t[i] = (uint32_t)(i % 20);
    write_u32(p, t, 200);
    bn_config c = tiny_cfg(0); c.vocab_size = 20;
    bn_train_model *m; bn_data *d;
    bn_train_model_new(&c, 0, 1, &m);
    bn_train_model_init_random(m, 1, 0.02f);
    bn_data_open(p, 20, 2, 8, &d);
    bn_data_shuffle(d, 5);
    bn_optim_cfg oc; bn_optim_cfg_default(&oc);
    bn_trainer tr; bn_trainer_init(&tr, m, d, &oc, 2, 8, 1);
    tr.rng = 5;
    tr.options = "{\"lr\":0.001}";
    bn_step_stats st;
    bn_trainer_step(&tr, &st); bn_trainer_step(&tr, &st);
    mkdir(dir, 0777);
    char sp[256]; snprintf(sp, sizeof sp, "%s/train_state.safetensors", dir);
    unlink(sp);
    char *opt = NULL;
    bitnet_status s = bn_trainer_read_options(dir, &opt);
    CHECK("state: --resume on a folder without a checkpoint says 'no checkpoint in DIR'", s == BITNET_ERR_IO && strstr(bitnet_last_error(), "no checkpoint in") && strstr(bitnet_last_error(), dir), "%d %s", s, bitnet_last_error());
    s = bn_trainer_save(&tr, dir);
    CHECK("state: save", s == BITNET_OK, "%s", bitnet_last_error());
    s = bn_trainer_read_options(dir, &opt);
    CHECK("state: options round-trip", s == BITNET_OK && opt && !strcmp(opt, tr.options), "%s", opt ? opt : "(null)");
    free(opt);
    bn_trainer t2; bn_trainer_init(&t2, m, d, &oc, 2, 8, 1);
    s = bn_trainer_load(&t2, dir);
    CHECK("state: a good checkpoint loads (step 2, window 4, seed 5)", s == BITNET_OK && t2.step == 2 && d->pos == 4 && t2.rng == 5, "%d %s", s, bitnet_last_error());
    struct { const char *what, *msg; int field; int64_t v; } bad[] = {
        {"step INT64_MAX", "step", 1, INT64_MAX}, {"step -1", "step", 1, -1}, {"step 2^31", "step", 1, (int64_t)1 << 31},
        {"version 1 (older bitnet)", "version 1", 0, 1}, {"version 99", "version", 0, 99},
        {"data position -1", "data position", 2, -1}, {"data position off the step", "data position", 2, 5},
        {"batch 3", "batch", 4, 3}, {"batch 0", "batch", 4, 0}, {"seq 9", "seq", 5, 9}, {"seq -1", "seq", 5, -1},
        {"n_params + 1", "n_params", 6, (int64_t)m->n_params + 1}, {"n_params -1", "n_params", 6, -1},
        {"accum 2", "accum", 7, 2}, {"accum INT64_MIN", "accum", 7, INT64_MIN},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t state[8] = {2, 2, 4, 5, 2, 8, (int64_t)m->n_params, 1};
        state[bad[i].field] = bad[i].v;
        write_state(m, sp, state);
        int64_t step0 = t2.step = 7;
        s = bn_trainer_load(&t2, dir);
        char name[128]; snprintf(name, sizeof name, "state: trainer_state %s is refused naming the file and the field", bad[i].what);
        CHECK(name, s != BITNET_OK && strstr(bitnet_last_error(), sp) && strstr(bitnet_last_error(), bad[i].msg) && t2.step == step0, "%d %s", s, bitnet_last_error());
    }
    /* F10: B*T beyond int is refused before any allocation or arithmetic */
    bn_config cb = tiny_cfg(0); cb.max_pos = 1 << 16;
    bn_train_model *mb; bn_train_model_new(&cb, 1, 1, &mb);
    bn_trainer tb;
    s = bn_trainer_init(&tb, mb, d, &oc, 1 << 16, 1 << 16, 1);
    CHECK("sizes: batch x seq beyond INT32_MAX is refused (trainer)", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "more than"), "%d %s", s, bitnet_last_error());
    int32_t ids[4] = {0};
    float loss;
    s = bn_train_forward(mb, ids, ids, 1 << 16, 1 << 16, &loss);
    CHECK("sizes: batch x seq beyond INT32_MAX is refused (forward)", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "more than"), "%d %s", s, bitnet_last_error());
    bn_train_model_free(mb);
    bn_trainer_free(&t2); bn_trainer_free(&tr); bn_data_free(d); bn_train_model_free(m);
    unlink(sp);
    char buf[300];
    snprintf(buf, sizeof buf, "%s/config.json", dir); unlink(buf);
    snprintf(buf, sizeof buf, "%s/model.safetensors", dir); unlink(buf);
    rmdir(dir); unlink(p);
}

/* The training op table is complete (a device backend must fill every slot),
 * and the shared row pieces keep their contracts: a causal row is a softmax over the visible keys
 * and zero after them; RoPE's inverse undoes it. */
static void test_ops_and_rows(void) {
    const bn_train_ops *op = bn_train_ops_cpu();
    int filled = !!op->rmsnorm_fwd + !!op->rmsnorm_bwd + !!op->linear_fwd + !!op->linear_bwd + !!op->rope +
                 !!op->attn_fwd + !!op->attn_bwd + !!op->glu_fwd + !!op->glu_bwd + !!op->embed_fwd + !!op->embed_bwd +
                 !!op->ce_fwd + !!op->ce_bwd + !!op->head_fwd + !!op->head_bwd;
    CHECK("ops: every CPU training op is set", filled == 15, "%d of 15", filled);
    float p[8] = {1, 2, 3, 4, 9, 9, 9, 9}, sum = 0;
    bn_softmax_causal_row(p, 4, 8, 0.5f);
    for (int i = 0; i < 4; i++) sum += p[i];
    CHECK("rows: causal softmax sums to 1 over visible keys, 0 after", fabsf(sum - 1) < 1e-6f && p[4] == 0 && p[7] == 0 && p[3] > p[0], "sum %g p4 %g", sum, p[4]);
    float cs[4], sn[4], x[8] = {1, -2, 3, 0.5f, 7, 1, -1, 2}, y[8];
    float ct[16], st[16];
    bn_rope_tables(10000.0f, 8, 4, ct, st);
    memcpy(cs, ct + 3 * 4, sizeof cs); memcpy(sn, st + 3 * 4, sizeof sn);
    memcpy(y, x, sizeof y);
    bn_rope_row(y, cs, sn, 4, 0);
    int moved = memcmp(x, y, sizeof x) != 0;
    bn_rope_row(y, cs, sn, 4, 1);
    float md = 0; for (int i = 0; i < 8; i++) md = fmaxf(md, fabsf(y[i] - x[i]));
    CHECK("rows: RoPE at position 3 rotates, its inverse restores", moved && md < 1e-5f, "max|d| %g", md);
}

int main(void) {
    test_ops_and_rows();
    test_gemm();
    test_adamw();
    test_train_sets();
    test_golden(1);
    test_golden(2);
    test_fd(0, 2, 7);
    test_fd(1, 2, 7);
    test_fd(0, 1, 150);   /* attention over several causal row blocks */
    test_causal(150);
    test_data_and_errors();
    test_loss_falls();
    test_export();
    test_shuffle();
    test_state_checks();
    T_DONE();
}
