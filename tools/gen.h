/* gen.h — the generation loop shared by `bitnet run` and `bitnet chat`: model + context +
 * tokenizer + sampler in one session, sampling flags, streaming output and speed stats. */
#ifndef BITNET_GEN_H
#define BITNET_GEN_H
#include "cli.h"
#include "args.h"
#include <signal.h>

/* Sampling settings from the command line: sampler parameters and --logit-bias entries. */
typedef struct gen_sampling {
    bitnet_sampler_params sp;
    int n_bias;
    int bias_id[32];
    float bias[32];
    int n_lora;              /* --lora DIR (repeatable) with its --lora-scale (default 1) */
    const char *lora[8];
    float lora_scale[8];
} gen_sampling;

typedef struct gen_session {
    bitnet_model *model;
    bitnet_ctx *ctx;
    bitnet_tokenizer *tok;   /* NULL if the folder has none and none was required */
    bitnet_sampler *smp;
    int n_ctx, vocab;
    int eos;                 /* config.json's eos id: the stop token when there is no tokenizer */
    float *logits;           /* [vocab] */
    gen_sampling smp_opts;   /* --logit-bias entries are applied to the logits before sampling */
} gen_session;

typedef struct gen_stats {
    int n_prompt, n_gen;
    double t_prompt, t_gen;  /* seconds */
    int stopped_by;          /* 0 = length, 1 = end-of-generation token, 2 = interrupted, 3 = context full */
    int last_id;
} gen_stats;

enum { GEN_OUT_NONE, GEN_OUT_TEXT, GEN_OUT_IDS };

/* Defaults (llama.cpp-like) with the given temperature. */
void gen_sampling_default(gen_sampling *o, float temperature);
/* The sampling options (--temp, --top-k, ..., --seed, --logit-bias ID=BIAS repeatable) as an
 * args.h table writing into *o, for run and chat to pass to args_parse. The table is static:
 * valid until the next call. */
const arg_opt *gen_sampling_options(gen_sampling *o);
/* Load model, tokenizer (required if need_tok), context and sampler. Prints errors; returns 0 on success. */
int gen_open(gen_session *g, const char *model_dir, int n_ctx, int threads, const gen_sampling *o, int need_tok);
void gen_close(gen_session *g);
/* Feed ids[n] (prompt) then sample up to n_gen tokens, writing them as out says. Stops at an
 * end-of-generation token unless ignore_eos, at *stop != 0, or when the context is full.
 * The last sampled token is NOT fed to the model (st->last_id has it). Returns 0 or 1 on error. */
int gen_generate(gen_session *g, const int32_t *ids, int n, int n_gen, int ignore_eos, int out,
                 volatile sig_atomic_t *stop, gen_stats *st);
/* "prompt: N tokens, X tok/s | generation: M tokens, Y tok/s" on stderr. */
void gen_report(const gen_stats *st);
#endif
