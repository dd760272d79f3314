/* finetune_lora.c — LoRA fine-tuning through the public headers only (bitnet_train.h, bitnet.h):
 * rank-R adapters on the frozen base in MODEL_DIR (master weights), trained on a uint32 token
 * file, saved in PEFT's format into OUT_DIR, then applied at inference to print the greedy next
 * token of the data's first window with and without the adapter.
 *     cc finetune_lora.c -Iinclude build/libbitnet.a -lcjson -lpcre2-8 -lm -lpthread
 *     ./a.out MODEL_DIR TOKENS.u32 OUT_DIR [steps]
 * Not: a CLI with options (see `bitnet train --lora-rank`). */
#include "bitnet_train.h"
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) { fprintf(stderr, "finetune_lora: %s: %s\n", what, bitnet_last_error()); return 1; }

static int argmax(const float *x, int n) { int b = 0; for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i; return b; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL_DIR TOKENS.u32 OUT_DIR [steps]\n", argv[0]); return 2; }
    bitnet_train_params p = bitnet_train_default_params();
    p.param_set = BITNET_TRAIN_LORA;
    p.lora_rank = 8; p.lora_alpha = 16; p.lora_targets = 0;     /* 0: all seven BitLinear matrices */
    p.batch = 4; p.seq = 32; p.total_steps = argc > 4 ? atoi(argv[4]) : 40; p.optim.lr = 1e-2f;
    bitnet_trainer *t;
    if (bitnet_trainer_new(argv[1], &p, &t)) return fail("trainer");
    if (bitnet_trainer_set_data(t, argv[2], NULL)) return fail("data");
    bitnet_trainer_info info; bitnet_trainer_get_info(t, &info);
    printf("training %lld adapter parameters on a frozen base of %lld\n", (long long)info.n_params, (long long)info.n_base_params);
    bitnet_train_stats st;
    while (bitnet_trainer_get_step(t) < p.total_steps) {
        if (bitnet_trainer_step(t, &st)) return fail("step");
        if (bitnet_trainer_get_step(t) % 10 == 0) printf("step %lld loss %.4f\n", (long long)bitnet_trainer_get_step(t), st.loss);
    }
    if (bitnet_trainer_save(t, argv[3])) return fail("save");
    bitnet_trainer_free(t);

    /* inference: the base, then the base + the adapter */
    FILE *f = fopen(argv[2], "rb");
    int32_t ids[16]; uint32_t u[16];
    if (!f || fread(u, 4, 16, f) != 16) { fprintf(stderr, "finetune_lora: %s: fewer than 16 tokens\n", argv[2]); return 1; }
    fclose(f);
    for (int i = 0; i < 16; i++) ids[i] = (int32_t)u[i];
    bitnet_model *m; bitnet_ctx *c; bitnet_model_info mi;
    if (bitnet_model_load(argv[1], &m)) return fail("model");
    bitnet_model_get_info(m, &mi);
    float *logits = malloc((size_t)mi.vocab_size * sizeof *logits);
    for (int k = 0; k < 2; k++) {
        if (k == 1 && bitnet_model_load_lora(m, argv[3], 1.0f)) return fail("adapter");
        if (bitnet_ctx_new(m, NULL, &c) || bitnet_ctx_eval(c, ids, 15, logits, 0)) return fail("eval");
        printf("%s: next token %d (data: %d)\n", k ? "with the adapter" : "base", argmax(logits, mi.vocab_size), ids[15]);
        bitnet_ctx_free(c);
    }
    free(logits); bitnet_model_free(m);
    return 0;
}
