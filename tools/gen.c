/* gen.c — the shared generation loop (see gen.h). */
#include "gen.h"
#include <time.h>
#include <math.h>
#include <unistd.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

void gen_usage_sampling(void) {
    printf("sampling:\n"
           "  --temp T           temperature (0 = greedy; default 0.8)\n"
           "  --top-k K          keep the K most likely tokens (0 = off; default 40)\n"
           "  --top-p P          nucleus sampling (1 = off; default 0.95)\n"
           "  --min-p P          drop tokens below P x the top probability (0 = off; default 0.05)\n"
           "  --repeat-penalty R llama.cpp-style repetition penalty (1 = off)\n"
           "  --frequency-penalty F, --presence-penalty P   OpenAI-style penalties (0 = off)\n"
           "  --repeat-last-n N  penalty window (default 64; 0 = no penalties, -1 = the whole context)\n"
           "  --seed S           random seed (default -1 = random, shown with -v): same seed and settings, same text\n"
           "  --logit-bias ID=B  add B to token ID's logit (repeatable; -inf bans it)\n"
           "  -v                 print the seed and thread count on stderr\n"
           "order: logit bias, penalties, top-k, top-p, min-p, temperature, draw\n");
}

void gen_sampling_default(gen_sampling *o, float temperature) {
    memset(o, 0, sizeof *o);
    o->sp = bitnet_sampler_default_params();
    o->sp.temperature = temperature;
}

static int parse_bias(const char *v, gen_sampling *o) {
    char *end; long id = strtol(v, &end, 10);
    if (end == v || *end != '=' || id < 0 || o->n_bias >= 32) { fprintf(stderr, "bitnet: --logit-bias needs ID=BIAS (at most 32), got '%s'\n", v); return 0; }
    const char *b = end + 1;
    float f;
    if (!strcmp(b, "-inf")) f = -INFINITY;
    else if (!cli_float("--logit-bias", b, &f)) return 0;
    o->bias[o->n_bias].token = (int32_t)(id > INT32_MAX ? INT32_MAX : id); o->bias[o->n_bias].bias = f; o->n_bias++;
    return 1;
}

int gen_parse_sampling(int argc, char **argv, int *i, gen_sampling *go) {
    bitnet_sampler_params *sp = &go->sp;
    const char *o = argv[*i];
    if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) { go->verbose = 1; return 1; }
    if (*i + 1 >= argc) return 0;
    const char *v = argv[*i + 1];
    int ok = 1, iv;
    if (!strcmp(o, "--temp")) ok = cli_float(o, v, &sp->temperature) && sp->temperature >= 0;
    else if (!strcmp(o, "--top-k")) { ok = cli_int(o, v, 0, 1 << 30, &iv); sp->top_k = iv; }
    else if (!strcmp(o, "--top-p")) ok = cli_float(o, v, &sp->top_p) && sp->top_p > 0 && sp->top_p <= 1;
    else if (!strcmp(o, "--min-p")) ok = cli_float(o, v, &sp->min_p) && sp->min_p >= 0 && sp->min_p <= 1;
    else if (!strcmp(o, "--repeat-penalty")) ok = cli_float(o, v, &sp->repeat_penalty) && sp->repeat_penalty > 0;
    else if (!strcmp(o, "--frequency-penalty")) ok = cli_float(o, v, &sp->frequency_penalty);
    else if (!strcmp(o, "--presence-penalty")) ok = cli_float(o, v, &sp->presence_penalty);
    else if (!strcmp(o, "--repeat-last-n")) { ok = cli_int(o, v, -1, 1 << 20, &iv); sp->penalty_last_n = iv; }
    else if (!strcmp(o, "--logit-bias")) { if (!parse_bias(v, go)) return -1; }
    else if (!strcmp(o, "--seed")) {
        char *end; unsigned long long s = strtoull(v, &end, 10); /* -1: random, like llama.cpp */
        ok = !strcmp(v, "-1") || (*v >= '0' && *v <= '9' && !*end && s != BITNET_SEED_RANDOM);
        sp->seed = ok && *v == '-' ? BITNET_SEED_RANDOM : s;
    } else return 0;
    if (!ok) { fprintf(stderr, "bitnet: bad value '%s' for %s\n", v, o); return -1; }
    *i += 1;
    return 1;
}

int gen_open(gen_session *g, const char *dir, int n_ctx, int threads, const gen_sampling *o, int need_tok) {
    memset(g, 0, sizeof *g);
    if (cli_load_model(dir, &g->model)) return cli_fail("cannot load the model");
    bitnet_model_info info; bitnet_model_get_info(g->model, &info);
    g->vocab = info.vocab_size;
    g->eos = info.eos_id;
    if (bitnet_tokenizer_load(dir, &g->tok)) {
        if (need_tok) { cli_fail("tokenizer"); gen_close(g); return 1; }
        g->tok = NULL;
    }
    if (threads <= 0) threads = bitnet_physical_cores();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && threads > online)
        fprintf(stderr, "bitnet: warning: -t %d is more threads than the %ld online CPUs; they will share cores (slower)\n", threads, online);
    bitnet_ctx_params p = {.n_ctx = n_ctx, .n_threads = threads};
    if (bitnet_ctx_new(g->model, &p, &g->ctx)) { cli_fail("context"); gen_close(g); return 1; }
    g->n_ctx = n_ctx > 0 ? n_ctx : (info.max_seq_len < 4096 ? info.max_seq_len : 4096);
    bitnet_sampler_params sp = o->sp;
    sp.logit_bias = o->bias; sp.n_logit_bias = o->n_bias;
    if (bitnet_sampler_new(&sp, g->vocab, &g->smp)) { fprintf(stderr, "bitnet: %s\n", bitnet_last_error()); gen_close(g); return 1; }
    if (o->verbose) fprintf(stderr, "seed: %llu\nthreads: %d\n", (unsigned long long)bitnet_sampler_seed(g->smp), threads);
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
    if (bitnet_ctx_eval(g->ctx, ids, n, want_logits ? g->logits : NULL, 0)) return cli_fail(what);
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
    double t0 = now();
    if (gen_feed(g, ids, n, 1, "prompt")) return 1;
    st->t_prompt = now() - t0; st->n_prompt = n;
    bitnet_detok *dt = NULL;
    if (out == GEN_OUT_TEXT && bitnet_detok_new(g->tok, &dt)) return cli_fail("detokenizer");
    t0 = now();
    int first = 1;
    while (st->n_gen < n_gen) {
        if (stop && *stop) { st->stopped_by = 2; break; }
        int id = bitnet_sampler_sample(g->smp, g->logits);
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
    st->t_gen = now() - t0;
    return 0;
}

void gen_report(const gen_stats *st) {
    fprintf(stderr, "\nprompt: %d tokens, %.2f tok/s | generation: %d tokens, %.2f tok/s\n",
            st->n_prompt, st->t_prompt > 0 ? st->n_prompt / st->t_prompt : 0.0,
            st->n_gen, st->t_gen > 0 ? st->n_gen / st->t_gen : 0.0);
}
