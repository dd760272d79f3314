/* llama_logits.c — optional test tool: runs a GGUF file in llama.cpp through its public C API
 * (llama.h) and writes the logits of the prompt and of a greedy continuation, so
 * tests/llamacpp.sh can compare llama.cpp with the goldens and with bitnet.c on files that
 * `bitnet convert` wrote. Built by that script against a llama.cpp build the user gives
 * (LLAMA_CPP_DIR); never part of the library or of `make`. It uses only functions that both
 * ggml-org/llama.cpp (early 2025) and bitnet.cpp's llama.cpp fork (late 2024) have.
 * Not: a sampler, a tokenizer or a benchmark.
 *
 * usage: llama_logits MODEL.gguf OUT.f32 VOCAB NGEN THREADS ID...
 *   One forward over the prompt ids (logits of every position), then NGEN greedy steps, each
 *   feeding the argmax (over the first VOCAB logits) through the KV cache (f32, so the cache
 *   adds no rounding; f16 where llama.cpp refuses f32, said on stderr as "f16 KV cache"). OUT.f32 gets float32 [n_prompt + NGEN, VOCAB] rows: the prompt's rows,
 *   then the row of each fed greedy token — the layout of a golden's golden_full_logits.f32
 *   when the greedy ids agree. The greedy ids are printed on stdout, comma-separated.
 *   Exit 0 on success, 1 with one line on stderr otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

/* Silences llama.cpp's log lines unless LLAMA_LOGITS_VERBOSE is set. */
static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (getenv("LLAMA_LOGITS_VERBOSE") || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

/* Decodes ids[0..n) at positions pos0.. in sequence 0, asking for the logits of every
 * position; appends each row's first V logits to out. Returns the argmax of the last row over
 * those V, or -1 when llama_decode fails. */
static int decode_rows(struct llama_context *ctx, const llama_token *ids, int n, int pos0, int V,
                       FILE *out) {
    struct llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = ids[i];
        b.pos[i] = pos0 + i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    int best = -1;
    if (llama_decode(ctx, b) == 0) {
        for (int i = 0; i < n; i++) {
            const float *row = llama_get_logits_ith(ctx, i);
            if (!row || fwrite(row, sizeof(float), (size_t)V, out) != (size_t)V) { best = -1; break; }
            best = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[best]) best = v;
        }
    }
    llama_batch_free(b);
    return best;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: llama_logits MODEL.gguf OUT.f32 VOCAB NGEN THREADS ID...\n");
        return 1;
    }
    const int V = atoi(argv[3]), ngen = atoi(argv[4]), nth = atoi(argv[5]), np = argc - 6;
    llama_token *ids = malloc(sizeof(llama_token) * (size_t)(np + ngen + 1));
    if (V <= 0 || ngen < 0 || nth <= 0 || !ids) { fprintf(stderr, "llama_logits: bad arguments\n"); return 1; }
    for (int i = 0; i < np; i++) ids[i] = atoi(argv[6 + i]);
    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_load_model_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "llama_logits: llama.cpp could not load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(np + ngen + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)(np > 32 ? np : 32);
    cp.n_threads = cp.n_threads_batch = nth;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    struct llama_context *ctx = llama_new_context_with_model(model, cp);
    if (!ctx) {   /* older llama.cpp (bitnet.cpp's fork) wants flash attention for a non-f16 V cache */
        cp.type_k = cp.type_v = GGML_TYPE_F16;
        ctx = llama_new_context_with_model(model, cp);
        if (ctx) fprintf(stderr, "llama_logits: f16 KV cache (this llama.cpp refused an f32 one)\n");
    }
    FILE *out = ctx ? fopen(argv[2], "wb") : NULL;
    if (!out) { fprintf(stderr, "llama_logits: no context or cannot write %s\n", argv[2]); return 1; }
    int next = decode_rows(ctx, ids, np, 0, V, out);
    for (int g = 0; g < ngen && next >= 0; g++) {
        ids[np + g] = next;
        printf("%s%d", g ? "," : "", next);
        next = decode_rows(ctx, &ids[np + g], 1, np + g, V, out);
    }
    printf("\n");
    int bad = next < 0 || fclose(out) != 0;
    if (bad) fprintf(stderr, "llama_logits: llama_decode failed or %s not written\n", argv[2]);
    llama_free(ctx);
    llama_free_model(model);
    llama_backend_free();
    free(ids);
    return bad;
}
