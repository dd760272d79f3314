/* gen.c — the shared generation loop (see gen.h). */
#include "gen.h"
#include <time.h>
#include <math.h>
#include <unistd.h>
#include <errno.h>
#include <stdint.h>

void gen_sampling_default(gen_sampling *o, float temperature) {
    memset(o, 0, sizeof *o);
    o->sp = bitnet_sampler_default_params();
    o->sp.temperature = temperature;
    o->kv = "f16";
}

/* --logit-bias ID=BIAS (also llama.cpp's ID+BIAS / ID-BIAS); BIAS finite or -inf (bans ID). */
static int parse_bias(void *dst, const char *v, char *err, size_t errlen) {
    gen_sampling *o = dst;
    char *end; errno = 0;
    long id = strtol(v, &end, 10);
    const char *b = end + (*end == '=');
    char *bend; errno = 0;
    double f = (*end == '=' || *end == '+' || *end == '-') ? strtod(b, &bend) : NAN;
    if (end == v || id < 0 || id > INT32_MAX || isnan(f) || *bend || (isinf(f) ? f > 0 : !isfinite((float)f))) {
        snprintf(err, errlen, "needs ID=BIAS (a token id and a finite number or -inf), got '%s'", v); return 1; }
    if (o->n_bias >= 32) { snprintf(err, errlen, "at most 32 entries"); return 1; }
    o->bias[o->n_bias].token = (int32_t)id; o->bias[o->n_bias].bias = isinf(f) ? -INFINITY : (float)f; o->n_bias++;
    return 0;
}

/* --seed S: an unsigned 64-bit integer below 2^64-1, or -1 for a random one (BITNET_SEED_RANDOM:
 * the library draws it from the OS; -v shows it). */
static int parse_seed(void *dst, const char *v, char *err, size_t errlen) {
    uint64_t *seed = dst;
    if (!strcmp(v, "-1")) { *seed = BITNET_SEED_RANDOM; return 0; }
    char *end; errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end || errno || s == BITNET_SEED_RANDOM) {
        snprintf(err, errlen, "needs an integer in [0, 18446744073709551614] or -1 (random), got '%s'", v); return 1; }
    *seed = s;
    return 0;
}

/* --lora DIR: one more adapter (scale 1 until a --lora-scale after it). */
int gen_parse_lora(void *dst, const char *v, char *err, size_t errlen) {
    gen_sampling *o = dst;
    if (o->n_lora >= 8) { snprintf(err, errlen, "at most 8 adapters"); return 1; }
    o->lora[o->n_lora] = v; o->lora_scale[o->n_lora++] = 1.0f;
    return 0;
}
/* --lora-scale S: the scale of the --lora given before it. */
int gen_parse_lora_scale(void *dst, const char *v, char *err, size_t errlen) {
    gen_sampling *o = dst;
    char *end; errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x)) { snprintf(err, errlen, "needs a finite number, got '%s'", v); return 1; }
    if (!o->n_lora) { snprintf(err, errlen, "needs a --lora DIR before it"); return 1; }
    o->lora_scale[o->n_lora - 1] = (float)x;
    return 0;
}

const arg_opt *gen_sampling_options(gen_sampling *o) {
    static arg_opt t[16];
    bitnet_sampler_params *p = &o->sp;
    const arg_opt tab[] = {
        OPT_FLOAT(0, "temp", 0, INFINITY, &p->temperature, "T", "temperature (0 = greedy)"),
        OPT_INT(0, "top-k", 0, 1 << 30, &p->top_k, "K", "keep the K most likely tokens (0 = off)"),
        OPT_FLOAT_GT(0, "top-p", 0, 1, &p->top_p, "P", "nucleus sampling (1 = off)"),
        OPT_FLOAT(0, "min-p", 0, 1, &p->min_p, "P", "drop tokens below P x the top probability (0 = off)"),
        OPT_FLOAT_GT(0, "repeat-penalty", 0, INFINITY, &p->repeat_penalty, "R", "llama.cpp-style repetition penalty (1 = off)"),
        OPT_FLOAT(0, "frequency-penalty", -INFINITY, INFINITY, &p->frequency_penalty, "F", "OpenAI-style frequency penalty (0 = off)"),
        OPT_FLOAT(0, "presence-penalty", -INFINITY, INFINITY, &p->presence_penalty, "P", "OpenAI-style presence penalty (0 = off)"),
        OPT_INT(0, "repeat-last-n", -1, 1 << 20, &p->penalty_last_n, "N", "penalty window in tokens (0 = no penalties, -1 = the whole context)"),
        OPT_FUNC(0, "seed", parse_seed, &p->seed, "S", "random seed (default -1 = random, shown by -v): same seed and settings, same text; "
                 "the sampler applies logit bias, penalties, top-k, top-p, min-p, temperature, in that order"),
        OPT_FUNC(0, "logit-bias", parse_bias, o, "ID=B", "add B to token ID's logit (repeatable; -inf bans it)"),
        OPT_FUNC(0, "lora", gen_parse_lora, o, "DIR", "apply the PEFT LoRA adapter in DIR (repeatable; bitnet train --lora-rank makes one)"),
        OPT_FUNC(0, "lora-scale", gen_parse_lora_scale, o, "S", "scale of the --lora before it (1)"),
        OPT_CHOICE(0, "kv", &o->kv, "f16|f32", "KV cache storage: f16 takes half the memory, f32 is exact"),
        OPT_STR(0, "device", &o->device, "cpu|cuda|cuda:N", "where the model runs (default cpu; bitnet info --devices lists them)"),
        OPT_END,
    };
    memcpy(t, tab, sizeof tab);
    return t;
}

int gen_open(gen_session *g, const char *dir, int n_ctx, int threads, const gen_sampling *o, int need_tok) {
    memset(g, 0, sizeof *g);
    if (cli_load_model_on(dir, o->device, &g->model)) return cli_fail("cannot load the model");
    for (int i = 0; i < o->n_lora; i++)
        if (bitnet_model_load_lora(g->model, o->lora[i], o->lora_scale[i])) { cli_fail("--lora"); gen_close(g); return 1; }
    bitnet_model_info info; bitnet_model_get_info(g->model, &info);
    g->vocab = info.vocab_size;
    g->eos = info.eos_id;
    if (cli_load_tokenizer(dir, &g->tok)) {
        if (need_tok) { cli_fail("tokenizer"); gen_close(g); return 1; }
        g->tok = NULL;
    }
    if (g->tok && bitnet_tokenizer_vocab_size(g->tok) > g->vocab) {
        fprintf(stderr, "bitnet: %s: the tokenizer has %d tokens but the model's vocabulary is %d: they do not belong together\n",
                dir, bitnet_tokenizer_vocab_size(g->tok), g->vocab);
        gen_close(g); return 1;
    }
    if (n_ctx > info.max_seq_len) {
        fprintf(stderr, "bitnet: -c %d exceeds the model's %d positions (use -c %d or less)\n", n_ctx, info.max_seq_len, info.max_seq_len);
        gen_close(g); return 1;
    }
    if (threads <= 0) threads = bitnet_physical_cores();
    g->threads = threads;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && threads > online)
        fprintf(stderr, "bitnet: warning: -t %d is more threads than the %ld online CPUs; they will share cores (slower)\n", threads, online);
    bitnet_ctx_params p = {.n_ctx = n_ctx, .n_threads = threads, .kv_type = !strcmp(o->kv, "f32") ? BITNET_KV_F32 : BITNET_KV_F16};
    if (bitnet_ctx_new(g->model, &p, &g->ctx)) { cli_fail("cannot create the context"); gen_close(g); return 1; }
    g->n_ctx = n_ctx > 0 ? n_ctx : (info.max_seq_len < 4096 ? info.max_seq_len : 4096);
    bitnet_sampler_params sp = o->sp;
    sp.logit_bias = o->bias; sp.n_logit_bias = o->n_bias;
    if (bitnet_sampler_new(&sp, g->vocab, &g->smp)) { fprintf(stderr, "bitnet: %s\n", bitnet_last_error()); gen_close(g); return 1; }
    g->greedy = sp.temperature <= 0.f && sp.n_logit_bias == 0 && sp.repeat_penalty == 1.0f &&
                sp.frequency_penalty == 0.f && sp.presence_penalty == 0.f;
    g->logits = malloc((size_t)g->vocab * sizeof(float));
    if (!g->logits) { fprintf(stderr, "bitnet: out of memory\n"); gen_close(g); return 1; }
    return 0;
}

void gen_close(gen_session *g) {
    bitnet_sampler_free(g->smp); bitnet_ctx_free(g->ctx); bitnet_tokenizer_free(g->tok); bitnet_model_free(g->model);
    free(g->logits); free(g->hist);
    memset(g, 0, sizeof *g);
}

int gen_feed(gen_session *g, const int32_t *ids, int n, int want_logits, const char *what) {
    if (g->n_hist + n > g->cap_hist) {
        int cap = (g->n_hist + n) * 2;
        int32_t *h = realloc(g->hist, (size_t)cap * sizeof *h);
        if (!h) { fprintf(stderr, "bitnet: out of memory\n"); return 1; }
        g->hist = h; g->cap_hist = cap;
    }
    if (want_logits && g->greedy ? bitnet_ctx_eval_greedy(g->ctx, ids, n, &g->next)
                                 : bitnet_ctx_eval(g->ctx, ids, n, want_logits ? g->logits : NULL, 0)) return cli_fail(what);
    memcpy(g->hist + g->n_hist, ids, (size_t)n * sizeof *ids);
    g->n_hist += n;
    return 0;
}

void gen_truncate(gen_session *g, int pos) {
    if (pos < g->n_hist) g->n_hist = pos;
    bitnet_ctx_truncate(g->ctx, pos);
}

/* The library's end-of-generation test; without a tokenizer, config.json's eos id. */
static int is_eog(const gen_session *g, int id) {
    return g->tok ? bitnet_tokenizer_is_eog(g->tok, id) : id == g->eos;
}

int gen_generate(gen_session *g, const int32_t *ids, int n, int n_gen, int ignore_eos, int out,
                 volatile sig_atomic_t *stop, gen_stats *st) {
    memset(st, 0, sizeof *st);
    st->last_id = -1;
    if (n > g->n_ctx - bitnet_ctx_pos(g->ctx)) {
        fprintf(stderr, "bitnet: context full: %d tokens in use + %d new exceed %d\n", bitnet_ctx_pos(g->ctx), n, g->n_ctx);
        st->stopped_by = 3;
        return 1;
    }
    for (int i = 0; i < n; i++) bitnet_sampler_accept(g->smp, ids[i]);
    double t0 = cli_time();
    if (gen_feed(g, ids, n, 1, "prompt")) return 1;
    st->t_prompt = cli_time() - t0; st->n_prompt = n;
    bitnet_detok *dt = NULL;
    if (out == GEN_OUT_TEXT && bitnet_detok_new(g->tok, &dt)) return cli_fail("detokenizer");
    t0 = cli_time();
    int first = 1;
    while (st->n_gen < n_gen) {
        if (stop && *stop) { st->stopped_by = 2; break; }
        int id = g->greedy ? g->next : bitnet_sampler_sample(g->smp, g->logits);
        if (id < 0) { fprintf(stderr, "bitnet: no token can be sampled (every logit is -inf: --logit-bias bans them all?)\n"); bitnet_detok_free(dt); return 1; }
        st->last_id = id;
        if (!ignore_eos && is_eog(g, id)) { st->stopped_by = 1; break; }
        bitnet_sampler_accept(g->smp, id);
        st->n_gen++;
        if (out == GEN_OUT_TEXT) { const char *piece = ""; if (!bitnet_detok_push(dt, id, &piece)) fputs(piece, stdout); fflush(stdout); }
        else if (out == GEN_OUT_IDS) { printf(first ? "%d" : " %d", id); fflush(stdout); }
        first = 0;
        if (st->n_gen == n_gen) break;
        if (bitnet_ctx_pos(g->ctx) >= g->n_ctx) { st->stopped_by = 3; break; }
        if (gen_feed(g, &id, 1, 1, "decode")) { bitnet_detok_free(dt); return 1; }
        st->last_id = -1;
    }
    if (dt) { fputs(bitnet_detok_flush(dt), stdout); bitnet_detok_free(dt); }
    fflush(stdout);
    st->t_gen = cli_time() - t0;
    return 0;
}

void gen_report(const gen_stats *st) {
    fprintf(stderr, "\nprompt: %d tokens, %.2f tok/s | generation: %d tokens, %.2f tok/s\n",
            st->n_prompt, st->t_prompt > 0 ? st->n_prompt / st->t_prompt : 0.0,
            st->n_gen, st->t_gen > 0 ? st->n_gen / st->t_gen : 0.0);
}
