/* test_sft.c — chat SFT data: ignored targets in the training loss (train.c: the loss is the mean
 * over the targets that count, computed here independently from the logits; the gradient equals
 * the mean of the single-target gradients, so masked positions add nothing), the loss mask in the
 * data reader (data.c, both orders), the JSONL renderer (sft.c: assistant-only mask, packing with
 * EOS, BOS first, errors naming the line) and the public bitnet_trainer_set_data_tokens +
 * bitnet_sft_load_jsonl + progress callback. Not: a fine-tuning run (tests/sft.sh does that). */
#include "t.h"
#include "t_tmp.h"
#include "train/train.h"
#include "train/data.h"
#include "train/sft.h"
#include "core/rng.h"
#include "bitnet_train.h"
#include <math.h>
#include <stdio.h>
#include <unistd.h>

static bn_config tiny_cfg(void) {
    bn_config c; memset(&c, 0, sizeof c);
    c.family = BN_FAM_BITNET;
    c.vocab_size = 23; c.hidden_size = 16; c.intermediate_size = 24; c.n_layers = 2;
    c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 4; c.max_pos = 64;
    c.rope_theta = 10000.0f; c.norm_eps = 1e-5f; c.act = BN_ACT_RELU2; c.tied = 1;
    c.bos_id = c.eos_id = -1;
    return c;
}

enum { B = 2, T = 8, BT = B * T };

/* Loss and gradient with masked targets against an independent computation. */
static void test_masked_loss(int no_quant) {
    bn_config c = tiny_cfg();
    bn_train_model *m;
    bitnet_status s = bn_train_model_new(&c, no_quant, 1, &m);
    CHECK("mask: model", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    bn_train_model_init_random(m, 5, 0.3f);
    int32_t in[BT], tg[BT], tg_m[BT];
    uint64_t x = 99;
    int nv = 0;
    for (int i = 0; i < BT; i++) {
        in[i] = (int32_t)(bn_splitmix64(&x) % 23); tg[i] = (int32_t)(bn_splitmix64(&x) % 23);
        tg_m[i] = i % 3 == 1 ? tg[i] : BN_TARGET_IGNORE;   /* 5 of 16 count */
        nv += tg_m[i] >= 0;
    }
    float loss = 0;
    s = bn_train_forward(m, in, NULL, B, T, NULL);
    double ref = 0;
    const float *lg = bn_train_logits(m);
    for (int r = 0; r < BT && !s; r++) {
        if (tg_m[r] < 0) continue;
        const float *l = lg + (size_t)r * 23;
        double mx = l[0], sum = 0;
        for (int i = 1; i < 23; i++) mx = l[i] > mx ? l[i] : mx;
        for (int i = 0; i < 23; i++) sum += exp(l[i] - mx);
        ref += log(sum) + mx - l[tg_m[r]];
    }
    ref /= nv;
    if (!s) s = bn_train_forward(m, in, tg_m, B, T, &loss);
    CHECK("mask: loss = mean over the unmasked targets (independent)", !s && fabs(loss - ref) <= 1e-5 * fabs(ref) && m->n_targets == nv,
          "loss %.7f, independent %.7f, counted %d of %d (%s)", loss, ref, m->n_targets, nv, s ? bitnet_last_error() : "");
    /* the gradient: masked = mean of the gradients with a single unmasked target */
    size_t np = m->n_params;
    float *gm = malloc(np * sizeof *gm), *gs = calloc(np, sizeof *gs);
    bn_train_zero_grad(m);
    if (!s) s = bn_train_backward(m, 1.0f);
    memcpy(gm, m->grads, np * sizeof *gm);
    for (int r = 0; r < BT && !s; r++) {
        if (tg_m[r] < 0) continue;
        int32_t one[BT];
        for (int i = 0; i < BT; i++) one[i] = i == r ? tg_m[r] : BN_TARGET_IGNORE;
        bn_train_zero_grad(m);
        s = bn_train_forward(m, in, one, B, T, NULL);
        if (!s) s = bn_train_backward(m, 1.0f);
        for (size_t j = 0; j < np; j++) gs[j] += m->grads[j] / (float)nv;
    }
    double num = 0, den = 0;
    for (size_t j = 0; j < np; j++) { num += (gm[j] - gs[j]) * (double)(gm[j] - gs[j]); den += (double)gs[j] * gs[j]; }
    CHECK("mask: gradient = mean of the single-target gradients (masked positions add nothing)", !s && den > 0 && sqrt(num / den) < 1e-5,
          "rel L2 %.3g (%s)", den > 0 ? sqrt(num / den) : -1.0, s ? bitnet_last_error() : "");
    /* the same targets unmasked give another loss (the mask does something) */
    float lfull = 0;
    if (!s) s = bn_train_forward(m, in, tg, B, T, &lfull);
    CHECK("mask: the full loss differs", !s && m->n_targets == BT && fabs(lfull - loss) > 1e-4, "%g vs %g", lfull, loss);
    /* all masked: loss 0, zero gradient */
    int32_t none[BT];
    for (int i = 0; i < BT; i++) none[i] = BN_TARGET_IGNORE;
    bn_train_zero_grad(m);
    float l0 = 1;
    if (!s) s = bn_train_forward(m, in, none, B, T, &l0);
    if (!s) s = bn_train_backward(m, 1.0f);
    double g2 = 0;
    for (size_t j = 0; j < np; j++) g2 += (double)m->grads[j] * m->grads[j];
    CHECK("mask: all targets masked: loss 0, gradient 0", !s && l0 == 0 && g2 == 0, "loss %g, |g|^2 %g", l0, g2);
    free(gm); free(gs);
    bn_train_model_free(m);
}

static void test_data_mask(void) {
    int32_t ids[40]; uint8_t mask[40];
    for (int i = 0; i < 40; i++) { ids[i] = i % 23; mask[i] = (i / 5) % 2; }
    bn_data *d = NULL;
    bitnet_status s = bn_data_from_tokens("t", ids, mask, 40, 23, 2, 4, &d);
    CHECK("data: from tokens", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    int32_t in[8], tg[8];
    int bad = 0;
    for (int k = 0; k < 6 && !s; k++) {   /* sequential: batch k covers tokens 8k .. 8k+8 (wraps at 40) */
        size_t st = d->pos + 9 > 40 ? 0 : d->pos;   /* the reader wraps before a short batch */
        s = bn_data_next(d, in, tg);
        for (int i = 0; i < 8; i++) {
            size_t p = st + (size_t)i;
            bad += in[i] != ids[p] || tg[i] != (mask[p + 1] ? ids[p + 1] : BN_TARGET_IGNORE);
        }
    }
    CHECK("data: sequential targets follow the mask", !s && !bad, "%d wrong", bad);
    s = bn_data_shuffle(d, 7);
    bad = 0;
    int nmask = 0;
    for (int k = 0; k < 5 && !s; k++) {
        s = bn_data_next(d, in, tg);
        for (int i = 0; i < 8; i++) {   /* an input id is its position mod 23 only up to 23; find the window by the input */
            nmask += tg[i] < 0;
            if (tg[i] >= 0) bad += tg[i] != (in[i] + 1) % 23;
        }
    }
    CHECK("data: shuffled windows keep the mask", !s && !bad && nmask > 0 && nmask < 40, "%d wrong, %d masked", bad, nmask);
    bn_data_free(d);
    uint8_t zero[40] = {0};
    s = bn_data_from_tokens("t", ids, zero, 40, 23, 2, 4, &d);
    CHECK("data: a mask with no target is refused", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "no token to train"), "%d %s", s, bitnet_last_error());
    ids[3] = 23;
    s = bn_data_from_tokens("toks", ids, NULL, 40, 23, 2, 4, &d);
    CHECK("data: an id outside the vocabulary names it", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "toks: token 3"), "%s", bitnet_last_error());
}

static void put(const char *path, const char *text) { FILE *f = fopen(path, "wb"); fputs(text, f); fclose(f); }

/* The decoded text of ids[a..b) where mask == want. */
static char *decode_where(const bitnet_tokenizer *tok, const int32_t *ids, const uint8_t *mask, size_t n, int want) {
    int32_t *sel = malloc(n * sizeof *sel); int k = 0;
    for (size_t i = 0; i < n; i++) if (mask[i] == want) sel[k++] = ids[i];
    char *txt = NULL;
    bitnet_tokenizer_decode(tok, sel, k, &txt);
    free(sel);
    return txt;
}

static void test_jsonl(void) {
    char mdir[512]; snprintf(mdir, sizeof mdir, "%s/../../models/bitnet-tinystories", t_golden());
    if (access(mdir, R_OK)) snprintf(mdir, sizeof mdir, "models/bitnet-tinystories");
    bitnet_tokenizer *tok = NULL;
    if (bitnet_tokenizer_load(mdir, &tok)) { printf("skip sft jsonl: no bundled tokenizer in %s\n", mdir); return; }
    put(tpath("a.jsonl"),
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, {\"role\": \"user\", \"content\": \"Hi there\"}, {\"role\": \"assistant\", \"content\": \"Hello, friend!\"}]}\n"
        "\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"What is red?\"}, {\"role\": \"assistant\", \"content\": \"An apple.\"}, {\"role\": \"user\", \"content\": \"And blue?\"}, {\"role\": \"assistant\", \"content\": \"The sky.\"}]}\n");
    int32_t *ids = NULL; uint8_t *mask = NULL; size_t n = 0; bn_sft_stats st;
    bitnet_status s = bn_sft_load_jsonl(tpath("a.jsonl"), tok, BITNET_CHAT_BITNET, &ids, &mask, &n, &st);
    CHECK("jsonl: loads two conversations", s == BITNET_OK && st.examples == 2 && (size_t)st.tokens == n, "%s", bitnet_last_error());
    if (s) { bitnet_tokenizer_free(tok); return; }
    char *tr = decode_where(tok, ids, mask, n, 1), *all = NULL;
    bitnet_tokenizer_decode(tok, ids, (int)n, &all);
    const char *want_tr = "Hello, friend!<|eot_id|>An apple.<|eot_id|>The sky.<|eot_id|>";
    CHECK("jsonl: only the assistant turns (content + end of turn) are trained", tr && !strcmp(tr, want_tr), "trained text '%s'", tr ? tr : "");
    const char *want_all = "<|begin_of_text|>System: Be kind.<|eot_id|>User: Hi there<|eot_id|>Assistant: Hello, friend!<|eot_id|>"
                           "<|begin_of_text|>User: What is red?<|eot_id|>Assistant: An apple.<|eot_id|>User: And blue?<|eot_id|>Assistant: The sky.<|eot_id|>";
    CHECK("jsonl: conversations rendered with the template, packed with BOS (EOS = <|eot_id|> already ends them)", all && !strcmp(all, want_all), "'%s'", all ? all : "");
    CHECK("jsonl: BOS is not a target", ids[0] == bitnet_tokenizer_bos(tok) && mask[0] == 0 && st.trained > 0 && st.trained < st.tokens, "id %d mask %d", ids[0], mask[0]);
    free(tr); free(all); free(ids); free(mask);
    /* PLAIN template: no end-of-turn token, so EOS is appended and trained after the assistant */
    s = bn_sft_load_jsonl(tpath("a.jsonl"), tok, BITNET_CHAT_PLAIN, &ids, &mask, &n, &st);
    int eos = bitnet_tokenizer_eos(tok), neos = 0;
    for (size_t i = 0; !s && i < n; i++) neos += ids[i] == eos && mask[i];
    CHECK("jsonl: plain template: EOS separates conversations and is trained", !s && neos == 2 && ids[n - 1] == eos, "%d trained EOS (%s)", neos, s ? bitnet_last_error() : "");
    free(ids); free(mask);
    /* errors */
    put(tpath("b.jsonl"), "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n{\"messages\": [{\"role\": \"user\", \"content\": 3}]}\n");
    s = bn_sft_load_jsonl(tpath("b.jsonl"), tok, BITNET_CHAT_BITNET, &ids, &mask, &n, NULL);
    CHECK("jsonl: a bad message names the file and line", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "b.jsonl line 2: message 0"), "%s", bitnet_last_error());
    put(tpath("c.jsonl"), "{\"messages\": []}\n");
    s = bn_sft_load_jsonl(tpath("c.jsonl"), tok, BITNET_CHAT_BITNET, &ids, &mask, &n, NULL);
    CHECK("jsonl: empty messages refused", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "c.jsonl line 1: needs a non-empty"), "%s", bitnet_last_error());
    put(tpath("d.jsonl"), "{\"messages\": [\n");
    s = bn_sft_load_jsonl(tpath("d.jsonl"), tok, BITNET_CHAT_BITNET, &ids, &mask, &n, NULL);
    CHECK("jsonl: broken JSON refused", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "d.jsonl line 1: not valid JSON"), "%s", bitnet_last_error());
    put(tpath("e.jsonl"), "\n  \n");
    s = bn_sft_load_jsonl(tpath("e.jsonl"), tok, BITNET_CHAT_BITNET, &ids, &mask, &n, NULL);
    CHECK("jsonl: no conversations refused", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "no conversations"), "%s", bitnet_last_error());
    bitnet_tokenizer_free(tok);
}

static int n_calls; static int64_t last_step; static double last_tps;
static void on_progress(void *ud, const bitnet_train_progress *p) {
    n_calls++; last_step = p->step; last_tps = p->tokens_per_s;
    if (p->step == 2) bitnet_trainer_cancel((bitnet_trainer *)*(void **)ud);
}

/* The public API: tokens + mask in memory, eval over the targets that count, the callback. */
static void test_api(void) {
    put(tpath("config.json"), "{\"model_type\": \"bitnet\", \"vocab_size\": 23, \"hidden_size\": 16, \"intermediate_size\": 24,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 64}");
    bitnet_train_params p = bitnet_train_default_params();
    p.batch = 2; p.seq = 8; p.total_steps = 4; p.n_threads = 1;
    void *self = NULL;
    p.progress = on_progress; p.progress_ud = &self;
    bitnet_trainer *t = NULL;
    bitnet_status s = bitnet_trainer_new(tpath("config.json"), &p, &t);
    CHECK("api: trainer", s == BITNET_OK, "%s", bitnet_last_error());
    if (s) return;
    self = t;
    int32_t ids[200]; uint8_t mask[200], ones[200];
    for (int i = 0; i < 200; i++) { ids[i] = (i * 7) % 23; mask[i] = i % 4 == 0; ones[i] = 1; }
    float v_mask = 0, v_none = 0, v_ones = 0;
    s = bitnet_trainer_set_data_tokens(t, ids, mask, 200, ids, mask, 200);
    if (!s) s = bitnet_trainer_eval(t, 3, &v_mask);
    if (!s) s = bitnet_trainer_set_data_tokens(t, ids, NULL, 200, ids, NULL, 200);
    if (!s) s = bitnet_trainer_eval(t, 3, &v_none);
    if (!s) s = bitnet_trainer_set_data_tokens(t, ids, ones, 200, ids, ones, 200);
    if (!s) s = bitnet_trainer_eval(t, 3, &v_ones);
    CHECK("api: a mask of ones = no mask; a sparse mask changes the loss", !s && v_ones == v_none && v_mask != v_none, "%g %g %g (%s)", v_ones, v_none, v_mask, s ? bitnet_last_error() : "");
    if (!s) s = bitnet_trainer_set_data_tokens(t, ids, mask, 200, NULL, NULL, 0);
    bitnet_train_stats st;
    while (!s && bitnet_trainer_get_step(t) < p.total_steps && !bitnet_trainer_cancelled(t)) s = bitnet_trainer_step(t, &st);
    CHECK("api: the progress callback runs per step and can cancel", !s && n_calls == 2 && last_step == 2 && last_tps > 0 && bitnet_trainer_get_step(t) == 2,
          "%d calls, step %lld (%s)", n_calls, (long long)last_step, s ? bitnet_last_error() : "");
    s = bitnet_trainer_set_data_tokens(t, ids, mask, 10, NULL, NULL, 0);
    CHECK("api: too few tokens refused", s == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "training tokens: 10 tokens"), "%s", bitnet_last_error());
    bitnet_trainer_free(t);
}

int main(void) {
    if (t_tmp_make("bn_sft")) return 1;
    test_masked_loss(1);
    test_masked_loss(0);
    test_data_mask();
    test_jsonl();
    test_api();
    t_tmp_remove();
    T_DONE();
}
