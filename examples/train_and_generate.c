/* train_and_generate.c — bitnet.c's public API end to end, in one small program that uses only
 * include/bitnet.h and include/bitnet_train.h (built and run by `make test`):
 *   1. tokenize a text with a tokenizer folder (the bundled model's, by default),
 *   2. train a tiny BitNet b1.58 model from a config.json for a few QAT steps,
 *   3. save the checkpoint and export it to the packed inference layout (tokenizer copied),
 *   4. load the packed model and generate greedily, streaming through the detokenizer.
 * usage: train_and_generate TOKENIZER_DIR WORK_DIR [STEPS]
 * Prints "step N loss X" lines, then the generated text; exits non-zero on any error. */
#include "bitnet.h"
#include "bitnet_train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fail(const char *what) { fprintf(stderr, "train_and_generate: %s: %s\n", what, bitnet_last_error()); return 1; }

static char *join(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    if (p) sprintf(p, "%s/%s", a, b);
    return p;
}

static const char TEXT[] =
    "Once upon a time, there was a little dog named Max. Max liked to run in the park. "
    "One day, Max saw a big red ball. He ran to the ball and played with it all day. "
    "Max was very happy. The sun was warm and the sky was blue. Max went home and slept. ";

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s TOKENIZER_DIR WORK_DIR [STEPS]\n", argv[0]); return 2; }
    const char *tokdir = argv[1], *work = argv[2];
    int steps = argc > 3 ? atoi(argv[3]) : 8;
    mkdir(work, 0777);

    /* 1. text -> uint32 token file (repeated so one batch fits) */
    bitnet_tokenizer *tok;
    if (bitnet_tokenizer_load(tokdir, &tok)) return fail("tokenizer");
    int32_t *ids; int n;
    if (bitnet_tokenizer_encode(tok, TEXT, strlen(TEXT), 0, &ids, &n)) return fail("encode");
    int reps = 8;
    uint32_t *data = malloc((size_t)n * reps * sizeof *data);
    for (int r = 0; r < reps; r++) for (int i = 0; i < n; i++) data[r * n + i] = (uint32_t)ids[i];  /* little-endian hosts */
    char *dpath = join(work, "train.u32");
    if (bitnet_write_file_atomic(dpath, data, (size_t)n * reps * sizeof *data)) return fail("write tokens");

    /* 2. a tiny model of the tokenizer's vocabulary */
    char cfg[1024];
    int V = bitnet_tokenizer_vocab_size(tok);
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"bitnet\", \"vocab_size\": %d, \"hidden_size\": 64, \"intermediate_size\": 128,\n"
             " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
             " \"max_position_embeddings\": 128, \"hidden_act\": \"relu2\", \"tie_word_embeddings\": true,\n"
             " \"bos_token_id\": %d, \"eos_token_id\": %d}\n", V, bitnet_tokenizer_bos(tok), bitnet_tokenizer_eos(tok));
    char *cpath = join(work, "config.json");
    if (bitnet_write_file_atomic(cpath, cfg, strlen(cfg))) return fail("write config");

    bitnet_train_params tp = bitnet_train_default_params();
    tp.batch = 2; tp.seq = 32; tp.total_steps = steps; tp.n_threads = 1; tp.seed = 7;
    tp.optim.lr = 3e-3f;
    bitnet_trainer *tr;
    if (bitnet_trainer_new(cpath, &tp, &tr)) return fail("trainer");
    if (bitnet_trainer_set_data(tr, dpath, NULL)) return fail("data");
    float first = 0, last = 0;
    while (bitnet_trainer_get_step(tr) < steps) {
        bitnet_train_stats st;
        if (bitnet_trainer_step(tr, &st)) return fail("step");
        if (bitnet_trainer_get_step(tr) == 1) first = st.loss;
        last = st.loss;
        printf("step %lld loss %.4f\n", (long long)bitnet_trainer_get_step(tr), st.loss);
    }
    char *ck = join(work, "checkpoint"), *packed = join(work, "packed");
    if (bitnet_trainer_save(tr, ck)) return fail("save");
    bitnet_trainer_free(tr);
    printf("loss %.4f -> %.4f\n", first, last);

    /* 3. export (the tokenizer travels with the checkpoint) */
    if (bitnet_copy_tokenizer_files(tokdir, ck, NULL)) return fail("copy tokenizer");
    if (bitnet_export_packed(ck, packed, 0)) return fail("export");

    /* 4. load the packed model and generate */
    bitnet_model *m;
    if (bitnet_model_load(packed, &m)) return fail("load");
    bitnet_ctx_params cp = {.n_ctx = 64, .n_threads = 1};
    bitnet_ctx *ctx;
    if (bitnet_ctx_new(m, &cp, &ctx)) return fail("context");
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    sp.temperature = 0;  /* greedy */
    bitnet_sampler *smp;
    bitnet_detok *dt;
    if (bitnet_sampler_new(&sp, V, &smp) || bitnet_detok_new(tok, &dt)) return fail("sampler");
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t *prompt; int np;
    if (bitnet_tokenizer_encode(tok, "Once upon a time", 16, 1, &prompt, &np)) return fail("encode prompt");
    if (bitnet_ctx_eval(ctx, prompt, np, logits, 0)) return fail("eval");
    printf("generated: Once upon a time");
    for (int i = 0; i < 20; i++) {
        int32_t id = bitnet_sampler_sample(smp, logits);
        if (id < 0 || bitnet_tokenizer_is_eog(tok, id)) break;
        bitnet_sampler_accept(smp, id);
        const char *piece;
        if (bitnet_detok_push(dt, id, &piece)) return fail("detok");
        fputs(piece, stdout);
        if (bitnet_ctx_eval(ctx, &id, 1, logits, 0)) return fail("eval");
    }
    fputs(bitnet_detok_flush(dt), stdout);
    printf("\n");
    free(logits); free(prompt); free(ids); free(data);
    free(dpath); free(cpath); free(ck); free(packed);
    bitnet_detok_free(dt); bitnet_sampler_free(smp); bitnet_ctx_free(ctx); bitnet_model_free(m); bitnet_tokenizer_free(tok);
    return 0;
}
