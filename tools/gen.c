/* gen.c — the shared generation loop (see gen.h). */
#include "gen.h"
#include <time.h>
#include <math.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

void gen_usage_sampling(void) {
    printf("sampling:\n"
           "  --temp T           temperature (0 = greedy; default 0.8)\n"
           "  --top-k K          keep the K most likely tokens (0 = off; default 40)\n"
           "  --top-p P          nucleus sampling (1 = off; default 0.95)\n"
           "  --min-p P          drop tokens below P x the top probability (0 = off; default 0.05)\n"
           "  --repeat-penalty R llama.cpp-style repetition penalty (1 = off)\n"
           "  --frequency-penalty F, --presence-penalty P   OpenAI-style penalties (0 = off)\n"
           "  --repeat-last-n N  penalty window (default 64)\n"
           "  --seed S           random seed (default 42): same seed and settings, same text\n"
           "  --logit-bias ID=B  add B to token ID's logit (repeatable; -inf bans it)\n");
}

void gen_sampling_default(gen_sampling *o, float temperature) {
    memset(o, 0, sizeof *o);
    bitnet_sampler_params_default(&o->sp);
    o->sp.temperature = temperature;
}

static int parse_bias(const char *v, gen_sampling *o) {
    char *end; long id = strtol(v, &end, 10);
    if (end == v || *end != '=' || id < 0 || o->n_bias >= 32) { fprintf(stderr, "bitnet: --logit-bias needs ID=BIAS (at most 32), got '%s'\n", v); return 0; }
    const char *b = end + 1;
    float f;
    if (!strcmp(b, "-inf")) f = -INFINITY;
    else if (!cli_float("--logit-bias", b, &f)) return 0;
    o->bias_id[o->n_bias] = (int)id; o->bias[o->n_bias] = f; o->n_bias++;
    return 1;
}

int gen_parse_sampling(int argc, char **argv, int *i, gen_sampling *go) {
    bitnet_sampler_params *sp = &go->sp;
    const char *o = argv[*i];
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
    else if (!strcmp(o, "--repeat-last-n")) { ok = cli_int(o, v, 0, 1 << 20, &iv); sp->penalty_last_n = iv; }
    else if (!strcmp(o, "--logit-bias")) { if (!parse_bias(v, go)) return -1; }
    else if (!strcmp(o, "--seed")) {
        char *end; unsigned long long s = strtoull(v, &end, 10);
        ok = *v && !*end; sp->seed = s;
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
    bitnet_ctx_params p = {.n_ctx = n_ctx, .n_threads = threads};
    if (bitnet_ctx_new(g->model, &p, &g->ctx)) { cli_fail("context"); gen_close(g); return 1; }
    g->n_ctx = n_ctx > 0 ? n_ctx : (info.max_seq_len < 4096 ? info.max_seq_len : 4096);
    if (bitnet_sampler_new(&o->sp, g->vocab, &g->smp)) { cli_fail("sampler"); gen_close(g); return 1; }
    for (int i = 0; i < o->n_bias; i++)
        if (o->bias_id[i] >= g->vocab) { fprintf(stderr, "bitnet: --logit-bias token %d is out of the vocabulary (%d)\n", o->bias_id[i], g->vocab); gen_close(g); return 1; }
    g->smp_opts = *o;
    g->logits = malloc((size_t)g->vocab * sizeof(float));
    if (!g->logits) { fprintf(stderr, "bitnet: out of memory\n"); gen_close(g); return 1; }
    return 0;
}

void gen_close(gen_session *g) {
    bitnet_sampler_free(g->smp); bitnet_ctx_free(g->ctx); bitnet_tokenizer_free(g->tok); bitnet_model_free(g->model);
    free(g->logits);
    memset(g, 0, sizeof *g);
}

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
    if (bitnet_ctx_eval(g->ctx, ids, n, g->logits, 0)) return cli_fail("prompt");
    st->t_prompt = now() - t0; st->n_prompt = n;
    bitnet_detok *dt = NULL;
    if (out == GEN_OUT_TEXT && bitnet_detok_new(g->tok, &dt)) return cli_fail("detokenizer");
    t0 = now();
    int first = 1;
    while (st->n_gen < n_gen) {
        if (stop && *stop) { st->stopped_by = 2; break; }
        for (int b = 0; b < g->smp_opts.n_bias; b++) g->logits[g->smp_opts.bias_id[b]] += g->smp_opts.bias[b];
        int id = bitnet_sampler_sample(g->smp, g->logits);
        st->last_id = id;
        if (!ignore_eos && is_eog(g, id)) { st->stopped_by = 1; break; }
        bitnet_sampler_accept(g->smp, id);
        st->n_gen++;
        if (out == GEN_OUT_TEXT) { const char *piece = ""; if (!bitnet_detok_push(dt, id, &piece)) fputs(piece, stdout); fflush(stdout); }
        else if (out == GEN_OUT_IDS) { printf(first ? "%d" : " %d", id); fflush(stdout); }
        first = 0;
        if (st->n_gen == n_gen) break;
        if (bitnet_ctx_pos(g->ctx) >= g->n_ctx) { st->stopped_by = 3; break; }
        if (bitnet_ctx_eval(g->ctx, &id, 1, g->logits, 0)) { bitnet_detok_free(dt); return cli_fail("decode"); }
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
