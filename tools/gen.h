/* gen.h — the generation loop shared by `bitnet run` and `bitnet chat`: model + context +
 * tokenizer + sampler in one session, sampling flags, streaming output and speed stats. The
 * policy (sampler chain, logit bias, end-of-generation) is the library's; this file only wires
 * it to the command line and the terminal. */
#ifndef BITNET_GEN_H
#define BITNET_GEN_H
#include "cli.h"
#include "args.h"
#include <signal.h>

/* Sampling settings from the command line: sampler parameters and --logit-bias entries
 * (sp.logit_bias is pointed at bias[] when the sampler is made). */
typedef struct gen_sampling {
    bitnet_sampler_params sp;
    int n_bias;
    bitnet_logit_bias bias[32];
    int verbose;             /* -v (set by the command's own table): print the seed in use and the settings */
    const char *kv;          /* --kv f16|f32: the KV cache's storage (default f16) */
    int n_lora;              /* --lora DIR (repeatable) with its --lora-scale (default 1) */
    const char *lora[8];
    float lora_scale[8];
    const char *device;      /* --device: where the model runs (NULL: the CPU) */
} gen_sampling;

/* Option parsers (OPT_FUNC, dst = a gen_sampling) for --lora DIR (repeatable, at most 8) and
 * --lora-scale S (the scale of the --lora before it); `bitnet serve` uses them too. */
int gen_parse_lora(void *dst, const char *v, char *err, size_t errlen);
int gen_parse_lora_scale(void *dst, const char *v, char *err, size_t errlen);

typedef struct gen_session {
    bitnet_model *model;
    bitnet_ctx *ctx;
    bitnet_tokenizer *tok;   /* NULL if the folder has none and none was required */
    bitnet_sampler *smp;
    int n_ctx, vocab;
    int threads;             /* threads in use (the physical cores when 0 was asked for) */
    int eos;                 /* config.json's eos id: the stop token when there is no tokenizer */
    float *logits;           /* [vocab] */
    int greedy;              /* temperature 0 and no bias or penalties: the library's greedy call
                              * (bitnet_ctx_eval_greedy: on a GPU only the id comes back) */
    int32_t next;            /* its choice after the last gen_feed with logits */
    int32_t *hist;           /* [n_hist] the ids in the KV cache, in order (gen_feed keeps it) */
    int n_hist, cap_hist;
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
/* Load model, tokenizer (required if need_tok), context and sampler. threads 0 = the physical
 * cores; more threads than online CPUs gets a warning. Prints errors; returns 0 on success. */
int gen_open(gen_session *g, const char *model_dir, int n_ctx, int threads, const gen_sampling *o, int need_tok);
void gen_close(gen_session *g);
/* Evaluate ids[n] at the end of the cache (logits of the last into g->logits if want_logits),
 * recording them in g->hist. Returns 0, or 1 with "bitnet: WHAT: error" printed. */
int gen_feed(gen_session *g, const int32_t *ids, int n, int want_logits, const char *what);
/* Drop the cache (and g->hist) from pos on. */
void gen_truncate(gen_session *g, int pos);
/* Feed ids[n] (prompt) then sample up to n_gen tokens, writing them as out says. Stops at an
 * end-of-generation token (bitnet_tokenizer_is_eog; config.json's eos without a tokenizer)
 * unless ignore_eos, at *stop != 0, or when the context is full.
 * The last sampled token is NOT fed to the model (st->last_id has it). Returns 0 or 1 on error. */
int gen_generate(gen_session *g, const int32_t *ids, int n, int n_gen, int ignore_eos, int out,
                 volatile sig_atomic_t *stop, gen_stats *st);
/* "prompt: N tokens, X tok/s | generation: M tokens, Y tok/s" on stderr. */
void gen_report(const gen_stats *st);
#endif
