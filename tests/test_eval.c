/* test_eval.c — `bitnet perplexity` and `bitnet eval` against numbers computed here, independently:
 *  - golden models: PPL of the llama-perplexity chunking (hand-made token streams: a chunk whose
 *    first token is not BOS, a tail that must be dropped) equals exp(mean NLL) from the transformers
 *    logits golden_full_logits.f32 to 1e-4 relative, with llama.cpp's +/- formula;
 *  - the bundled model: the chunked and the sliding-window (--stride) methods on distinct chunks
 *    equal exp(mean NLL) over the rows the rules pick, from logits of the library's own forward
 *    (bitnet_ctx_eval on each window, not the tool's code);
 *  - eval loglikelihoods of pre-tokenized options equal sums of golden log-probs, greedy flags
 *    match the golden greedy ids;
 *  - a 20-question TinyStories task (tests/data/tinystories_mc.jsonl): acc / acc_norm / every
 *    loglikelihood equal those of lm-eval's rules written again here over the library API, at the
 *    model's context and at 12 tokens (contexts cut from the left).
 * It runs the CLI ($BUILD/bitnet) through popen. Not a test of the tokenizer or the forward pass. */
#include "t.h"
#include "bitnet.h"
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/stat.h>

/* next line after l (NULL at the end) */
static const char *next_line(const char *l) { const char *e = strchr(l, '\n'); return e ? e + 1 : NULL; }

static char bin[512];
static char tmpdir[256];

/* stdout of a shell command (malloc'd), or NULL if it exited non-zero */
static char *run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap);
    while ((r = fread(b + n, 1, cap - n - 1, p)) > 0) { n += r; if (n + 1 >= cap) b = realloc(b, cap *= 2); }
    b[n] = 0;
    int st = pclose(p);
    if (st != 0) { fprintf(stderr, "command failed (%d): %s\n%s\n", st, cmd, b); free(b); return NULL; }
    return b;
}

static void write_u32(const char *path, const int32_t *v, int n) {
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++) { uint32_t x = (uint32_t)v[i]; unsigned char b[4] = {x, x >> 8, x >> 16, x >> 24}; fwrite(b, 1, 4, f); }
    fclose(f);
}

/* -log softmax(row)[t] in double */
static double nll(const float *row, int V, int t) {
    double mx = row[0];
    for (int i = 1; i < V; i++) if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp(row[i] - mx);
    return mx + log(s) - row[t];
}

/* parse "[1]a,[2]b,...\nFinal estimate: PPL = X +/- Y" */
static int parse_ppl(const char *out, double *run_est, int max, double *ppl, double *pm) {
    int n = 0;
    const char *p = out;
    while ((p = strchr(p, '[')) && n < max) {
        int k; double v;
        if (sscanf(p, "[%d]%lf", &k, &v) == 2 && k == n + 1) run_est[n++] = v;
        p++;
    }
    const char *f = strstr(out, "Final estimate: PPL = ");
    if (!f || sscanf(f, "Final estimate: PPL = %lf +/- %lf", ppl, pm) != 2) return -1;
    return n;
}

static int rel_ok(double got, double want, double tol) { return fabs(got - want) <= tol * fabs(want); }

/* expected final estimate from a list of nlls: llama.cpp's formula */
static void final_of(const double *v, int n, double *ppl, double *pm) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) { s += v[i]; s2 += v[i] * v[i]; }
    double m = s / n, var = s2 / n - m * m;
    *ppl = exp(m); *pm = sqrt(var / (n - 1)) * *ppl;
}

static int ids_of(cJSON *j, const char *key, int32_t *out) {
    int n = 0; cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, key)) out[n++] = (int32_t)e->valueint;
    return n;
}

static void golden_perplexity(const char *name) {
    char path[512], cmd[2048], tn[512];
    snprintf(path, sizeof path, "%s/%s/golden.json", t_golden(), name);
    char *js = t_read_file(path, NULL);
    cJSON *j = cJSON_Parse(js);
    int32_t full[64];
    int np = ids_of(j, "prompt_ids", full), ng = ids_of(j, "greedy_ids", full + np), n = np + ng;
    int V = cJSON_GetObjectItem(j, "vocab_size")->valueint;
    snprintf(path, sizeof path, "%s/%s/golden_full_logits.f32", t_golden(), name);
    size_t sz = 0; float *L = t_read_file(path, &sz);
    CHECK("golden files", L && sz == (size_t)n * V * 4 && n == 40, "%s: %zu bytes, %d ids", name, sz, n);
    if (!L || n != 40) { free(js); cJSON_Delete(j); free(L); return; }
    /* ctx 20: chunk 1 = full[0:20]; chunk 2 = X + full[1:20] (X becomes BOS); 7 tail tokens dropped */
    for (int ctx = 20; ctx <= 40; ctx += 20) {
        int32_t s[96]; int ns = 0;
        for (int i = 0; i < ctx; i++) s[ns++] = full[i];
        s[ns++] = full[np + 3] != full[0] ? full[np + 3] : full[1];
        for (int i = 1; i < ctx; i++) s[ns++] = full[i];
        for (int i = 0; i < 7; i++) s[ns++] = full[5 + i];
        snprintf(tn, sizeof tn, "%s/g%d.u32", tmpdir, ctx); write_u32(tn, s, ns);
        snprintf(cmd, sizeof cmd, "%s perplexity -m %s/%s --tokens %s -c %d 2>/dev/null", bin, t_golden(), name, tn, ctx);
        char *out = run(cmd);
        double est[8], ppl = 0, pm = 0;
        int ne = out ? parse_ppl(out, est, 8, &ppl, &pm) : -1;
        /* independent: rows ctx/2 .. ctx-2 of the golden forward predict full[row+1]; both chunks alike */
        double v[128]; int nv = 0;
        for (int c = 0; c < 2; c++)
            for (int r = ctx / 2; r <= ctx - 2; r++) v[nv++] = nll(L + (size_t)r * V, V, full[r + 1]);
        double wp, wpm; final_of(v, nv, &wp, &wpm);
        double w1 = exp(0); { double sum = 0; for (int i = 0; i < nv / 2; i++) sum += v[i]; w1 = exp(sum / (nv / 2)); }
        char nm[128];
        snprintf(nm, sizeof nm, "perplexity %s -c %d: 2 chunks, running estimates", name, ctx);
        CHECK(nm, ne == 2 && rel_ok(est[0], w1, 1e-4) && rel_ok(est[1], wp, 1e-4), "ne=%d est %g %g want %g %g\n%s", ne, ne > 0 ? est[0] : 0, ne > 1 ? est[1] : 0, w1, wp, out ? out : "");
        snprintf(nm, sizeof nm, "perplexity %s -c %d: final PPL = golden exp(mean NLL) to 1e-4", name, ctx);
        CHECK(nm, ne >= 0 && rel_ok(ppl, wp, 1e-4), "got %.6f want %.6f", ppl, wp);
        snprintf(nm, sizeof nm, "perplexity %s -c %d: +/- is llama.cpp's formula", name, ctx);
        CHECK(nm, ne >= 0 && rel_ok(pm, wpm, 1e-3), "got %.6f want %.6f", pm, wpm);
        free(out);
    }
    /* fewer than 2*ctx tokens: llama-perplexity's refusal */
    snprintf(tn, sizeof tn, "%s/g39.u32", tmpdir); write_u32(tn, full, 39);
    snprintf(cmd, sizeof cmd, "%s perplexity -m %s/%s --tokens %s -c 20 2>&1", bin, t_golden(), name, tn);
    FILE *p = popen(cmd, "r"); char msg[512] = {0}; size_t r = fread(msg, 1, sizeof msg - 1, p); msg[r] = 0; int st = pclose(p);
    CHECK("perplexity needs 2*ctx tokens", st != 0 && strstr(msg, "at least 40 tokens"), "st=%d %s", st, msg);

    /* eval: pre-tokenized options; loglikelihood = sum of golden log-probs */
    snprintf(tn, sizeof tn, "%s/g.jsonl", tmpdir);
    FILE *f = fopen(tn, "w");
    int X = full[np + 3] == 7 ? 8 : 7, Y = 11;
    struct { int nx, a, b; int single; } opts[2][4] = {
        {{10, 10, 14, -1}, {10, 0, 0, X}, {10, 10, 11, -1}, {10, 10, 20, -1}},
        {{24, 0, 0, Y}, {24, 24, 40, -1}, {0}, {0}}};
    int nopt[2] = {4, 2};
    for (int q = 0; q < 2; q++) {
        fprintf(f, "{\"context_ids\": [");
        for (int i = 0; i < opts[q][0].nx; i++) fprintf(f, i ? ",%d" : "%d", full[i]);
        fprintf(f, "], \"choices_ids\": [");
        for (int o = 0; o < nopt[q]; o++) {
            fprintf(f, o ? ", [" : "[");
            if (opts[q][o].single >= 0) fprintf(f, "%d", opts[q][o].single);
            else for (int i = opts[q][o].a; i < opts[q][o].b; i++) fprintf(f, i > opts[q][o].a ? ",%d" : "%d", full[i]);
            fprintf(f, "]");
        }
        fprintf(f, "], \"label\": %d}\n", q);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s eval -m %s/%s --task %s --print-ll 2>/dev/null", bin, t_golden(), name, tn);
    char *out = run(cmd);
    int bad = out ? 0 : 1, seen = 0;
    for (const char *l = out; l && *l; l = next_line(l)) {
        long q; int o, nt, g; double ll;
        if (strncmp(l, "ll ", 3)) continue;
        if (sscanf(l, "ll %ld %d %lf %d %d", &q, &o, &ll, &nt, &g) != 5 || q > 1 || o >= nopt[q]) { bad++; continue; }
        seen++;
        double want = 0; int nx = opts[q][o].nx;
        if (opts[q][o].single >= 0) want = -nll(L + (size_t)(nx - 1) * V, V, opts[q][o].single);
        else for (int i = opts[q][o].a; i < opts[q][o].b; i++) want -= nll(L + (size_t)(i - 1) * V, V, full[i]);
        if (!(fabs(ll - want) <= 1e-4 * fmax(1, fabs(want)))) { bad++; fprintf(stderr, "q%ld o%d ll %.6f want %.6f\n", q, o, ll, want); }
        if (q == 1 && o == 1 && g != 1) { bad++; fprintf(stderr, "golden greedy continuation not flagged greedy\n"); }
    }
    char nm[128];
    snprintf(nm, sizeof nm, "eval %s: loglikelihoods = golden log-probs (6 options)", name);
    CHECK(nm, !bad && seen == 6, "bad=%d seen=%d\n%s", bad, seen, out ? out : "");
    snprintf(nm, sizeof nm, "eval %s: acc of the golden-greedy question", name);
    CHECK(nm, out && strstr(out, "acc      = "), "%s", out ? out : "");
    free(out);
    free(js); cJSON_Delete(j); free(L);
}

/* logits [n][V] of a forward from an empty cache in calls of nb tokens, via the library */
static float *forward_b(bitnet_ctx *c, const int32_t *ids, int n, int V, int nb) {
    float *lg = malloc((size_t)n * V * sizeof *lg);
    bitnet_ctx_reset(c);
    for (int s = 0; s < n; s += nb)
        if (bitnet_ctx_eval(c, ids + s, n - s < nb ? n - s : nb, lg + (size_t)s * V, 1)) { free(lg); return NULL; }
    return lg;
}
static float *forward(bitnet_ctx *c, const int32_t *ids, int n, int V) { return forward_b(c, ids, n, V, n); }

static void bundled_methods(void) {
    const char *M = "models/bitnet-tinystories", *txt = "tests/data/tinystories_val_excerpt.txt";
    bitnet_model *m = NULL; bitnet_ctx *c = NULL; bitnet_tokenizer *tok = NULL;
    CHECK("load bundled model", !bitnet_model_load(M, &m) && !bitnet_tokenizer_load(M, &tok), "%s", bitnet_last_error());
    if (!m || !tok) return;
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    int V = info.vocab_size, bos = bitnet_tokenizer_bos(tok);
    bitnet_ctx_params cp = {.n_ctx = 128, .n_threads = 1, .kv_type = BITNET_KV_F32};   /* as the tool's default */
    bitnet_ctx_new(m, &cp, &c);
    size_t len; char *text = t_read_file(txt, &len);
    int32_t *ids = NULL; int n = 0;
    bitnet_tokenizer_encode(tok, text, len, 1, &ids, &n);
    CHECK("excerpt has enough tokens", n >= 3 * 64 + 10, "n=%d", n);
    char cmd[1024];
    /* chunked: -c 64 --chunks 3 over the text */
    {
        int ctx = 64, nch = 3;
        double v[512]; int nv = 0, bad = 0;
        double est[3];
        for (int ch = 0; ch < nch; ch++) {
            int32_t w[64]; memcpy(w, ids + ch * ctx, sizeof w); w[0] = bos;
            float *lg = forward_b(c, w, ctx, V, 24);
            if (!lg) { bad = 1; break; }
            for (int r = ctx / 2; r <= ctx - 2; r++) v[nv++] = nll(lg + (size_t)r * V, V, ids[ch * ctx + r + 1]);
            double s = 0; for (int i = 0; i < nv; i++) s += v[i];
            est[ch] = exp(s / nv);
            free(lg);
        }
        double wp, wpm; final_of(v, nv, &wp, &wpm);
        snprintf(cmd, sizeof cmd, "%s perplexity -m %s -f %s -c 64 --chunks 3 -b 24 2>/dev/null", bin, M, txt);
        char *out = run(cmd);
        double got[8], ppl = 0, pm = 0;
        int ne = out ? parse_ppl(out, got, 8, &ppl, &pm) : -1;
        CHECK("chunked method on distinct chunks (-b 24 < ctx)", !bad && ne == 3 && rel_ok(got[0], est[0], 1e-4) && rel_ok(got[1], est[1], 1e-4)
              && rel_ok(got[2], est[2], 1e-4) && rel_ok(ppl, wp, 1e-4) && rel_ok(pm, wpm, 1e-3),
              "ne=%d got %g %g %g %g want %g %g %g %g\n%s", ne, ne > 0 ? got[0] : 0, ne > 1 ? got[1] : 0, ne > 2 ? got[2] : 0, ppl,
              est[0], est[1], est[2], wp, out ? out : "");
        free(out);
    }
    /* sliding window: Hugging Face's loop over the first 150 tokens, window 64, stride 40 */
    {
        int N = 150, ctx = 64, S = 40;
        snprintf(cmd, sizeof cmd, "%s/s.u32", tmpdir); write_u32(cmd, ids, N);
        double v[256]; int nv = 0, nw = 0, bad = 0;
        for (int b = 0, prev = 0; prev < N; b += S, nw++) {
            int e = b + ctx < N ? b + ctx : N;
            float *lg = forward(c, ids + b, e - b, V);
            if (!lg) { bad = 1; break; }
            for (int t = (prev > b + 1 ? prev : b + 1); t < e; t++) v[nv++] = nll(lg + (size_t)(t - 1 - b) * V, V, ids[t]);
            free(lg);
            prev = e;
        }
        double wp, wpm; final_of(v, nv, &wp, &wpm);
        char c2[1024];
        snprintf(c2, sizeof c2, "%s perplexity -m %s --tokens %s/s.u32 -c 64 --stride 40 2>/dev/null", bin, M, tmpdir);
        char *out = run(c2);
        double got[8], ppl = 0, pm = 0;
        int ne = out ? parse_ppl(out, got, 8, &ppl, &pm) : -1;
        CHECK("sliding window (--stride): HF's windows, every token after the first scored once",
              !bad && nv == N - 1 && ne == nw && rel_ok(ppl, wp, 1e-4), "nv=%d ne=%d nw=%d got %g want %g\n%s", nv, ne, nw, ppl, wp, out ? out : "");
        free(out);
    }
    free(ids); free(text);
    bitnet_ctx_free(c); bitnet_tokenizer_free(tok); bitnet_model_free(m);
}

/* lm-eval's _encode_pair + loglikelihood, written again over the library API */
static double lm_ll(bitnet_ctx *c, const bitnet_tokenizer *tok, int V, const char *ctx, const char *cont, int max_ctx) {
    char cx[2048], ct[2048];
    snprintf(cx, sizeof cx, "%s", ctx); snprintf(ct, sizeof ct, "%s", cont);
    size_t k = strlen(cx);
    while (k > 0 && (cx[k - 1] == ' ' || cx[k - 1] == '\n')) k--;
    char whole[4096];
    snprintf(whole, sizeof whole, "%s%s", ctx, cont);   /* context + continuation, spaces moved or not */
    cx[k] = 0;
    int32_t *a = NULL, *w = NULL; int na = 0, nw = 0;
    bitnet_tokenizer_encode(tok, cx, k, 0, &a, &na);
    bitnet_tokenizer_encode(tok, whole, strlen(whole), 0, &w, &nw);
    /* the model reads (a + w[na:])[-(max_ctx+1):][:-1] */
    int n = na + (nw - na) - 1;
    int32_t *in = malloc((size_t)(n + 1) * sizeof *in);
    memcpy(in, a, (size_t)na * sizeof *in); memcpy(in + na, w + na, (size_t)(nw - na) * sizeof *in);
    int st = n > max_ctx ? n - max_ctx : 0;
    /* in two calls, as the tool documents: the context before its last token, then the rest
     * (so the numbers are the same whatever the engine's batch shapes do to rounding) */
    int r0 = na - 1 - st;
    bitnet_ctx_reset(c);
    if (r0 > 0) bitnet_ctx_eval(c, in + st, r0, NULL, 0);
    float *lg = malloc((size_t)(n - st - r0) * V * sizeof *lg);
    bitnet_ctx_eval(c, in + st + r0, n - st - r0, lg, 1);
    double ll = 0;
    for (int i = na; i < nw; i++) ll -= nll(lg + (size_t)(i - na) * V, V, in[i]);
    free(lg); free(in); free(a); free(w);
    return ll;
}

static long nchars(const char *s) { long n = 0; for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80; return n; }

static void bundled_task(int max_ctx) {
    const char *M = "models/bitnet-tinystories", *task = "tests/data/tinystories_mc.jsonl";
    bitnet_model *m = NULL; bitnet_ctx *c = NULL; bitnet_tokenizer *tok = NULL;
    if (bitnet_model_load(M, &m) || bitnet_tokenizer_load(M, &tok)) { CHECK("load bundled model", 0, "%s", bitnet_last_error()); return; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    bitnet_ctx_params cp = {.n_ctx = 512, .n_threads = 1, .kv_type = BITNET_KV_F32};   /* as the tool's default */
    bitnet_ctx_new(m, &cp, &c);
    size_t len; char *text = t_read_file(task, &len);
    CHECK("task file", text != NULL, "%s missing", task);
    if (!text) return;
    double want_ll[20][4]; int nq = 0, acc = 0, accn = 0;
    for (char *line = strtok(text, "\n"); line && nq < 20; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *ctx = cJSON_GetObjectItem(j, "context")->valuestring;
        cJSON *ch = cJSON_GetObjectItem(j, "choices");
        const char *del = cJSON_GetObjectItem(j, "delimiter") ? cJSON_GetObjectItem(j, "delimiter")->valuestring : "";
        int label = cJSON_GetObjectItem(j, "label")->valueint, no = cJSON_GetArraySize(ch), best = 0, bestn = 0;
        for (int o = 0; o < no; o++) {
            char cont[1024]; const char *s = cJSON_GetArrayItem(ch, o)->valuestring;
            snprintf(cont, sizeof cont, "%s%s", del, s);
            want_ll[nq][o] = lm_ll(c, tok, info.vocab_size, ctx, cont, max_ctx);
            if (want_ll[nq][o] > want_ll[nq][best]) best = o;
            if (want_ll[nq][o] / nchars(s) > want_ll[nq][bestn] / nchars(cJSON_GetArrayItem(ch, bestn)->valuestring)) bestn = o;
        }
        acc += best == label; accn += bestn == label;
        nq++;
        cJSON_Delete(j);
    }
    CHECK("20 questions", nq == 20, "nq=%d", nq);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s eval -m %s --task %s --print-ll -c %d 2>/dev/null", bin, M, task, max_ctx);
    char *out = run(cmd);
    int bad = out ? 0 : 1, seen = 0;
    for (const char *l = out; l && *l; l = next_line(l)) {
        long q; int o, nt, g; double ll;
        if (strncmp(l, "ll ", 3)) continue;
        if (sscanf(l, "ll %ld %d %lf %d %d", &q, &o, &ll, &nt, &g) != 5 || q >= 20 || o >= 4) { bad++; continue; }
        seen++;
        if (!(fabs(ll - want_ll[q][o]) <= 1e-6 * fmax(1, fabs(want_ll[q][o])))) { bad++; fprintf(stderr, "q%ld o%d %.6f want %.6f\n", q, o, ll, want_ll[q][o]); }
    }
    char nm[128], wa[64], wn[64];
    snprintf(nm, sizeof nm, "eval bundled -c %d: every loglikelihood = lm-eval rules over the library", max_ctx);
    CHECK(nm, !bad && seen >= 40, "bad=%d seen=%d", bad, seen);
    snprintf(wa, sizeof wa, "acc      = %.4f", acc / 20.0); snprintf(wn, sizeof wn, "acc_norm = %.4f", accn / 20.0);
    snprintf(nm, sizeof nm, "eval bundled -c %d: acc and acc_norm as computed independently", max_ctx);
    CHECK(nm, out && strstr(out, wa) && strstr(out, wn), "want '%s' '%s'\n%s", wa, wn, out ? out : "");
    printf("# bundled model on the 20-question task, context %d: acc %d/20, acc_norm %d/20\n", max_ctx, acc, accn);
    if (max_ctx >= 512) CHECK("eval bundled: the model answers the obvious TinyStories questions (>= 15/20)", acc >= 15, "acc %d/20", acc);
    free(out); free(text);
    bitnet_ctx_free(c); bitnet_tokenizer_free(tok); bitnet_model_free(m);
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/bitnet", b ? b : "build");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bitnet_test_eval.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    golden_perplexity("bitnet-1bitllm");
    golden_perplexity("bitnet-b158-master");
    bundled_methods();
    bundled_task(512);
    bundled_task(12);   /* contexts cut from the left, as lm-eval does past max_length */
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir); system(cmd);
    T_DONE();
}
