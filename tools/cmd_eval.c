/* cmd_eval.c — `bitnet eval`: zero-shot multiple-choice accuracy with lm-eval-harness's
 * loglikelihood semantics, on a JSONL task file (scripts/convert_tasks.py writes them from the
 * public HellaSwag / ARC / PIQA / WinoGrande / BoolQ files).
 *
 * Task lines (one JSON object per line; blank lines are skipped):
 *   {"context": "...", "choices": ["...", ...], "label": 0}           one context, N continuations
 *   {"contexts": ["...", ...], "continuation": "...", "label": 0}     N contexts, one continuation
 *                                                                      (WinoGrande's partial scoring)
 *   {"context_ids": [1, 2], "choices_ids": [[3], [4, 5]], "label": 1} pre-tokenized (no tokenizer)
 * optional "delimiter" (default ""): put between context and continuation (lm-eval's
 * target_delimiter; the converter writes " ").
 * Each option i is the request (context_i, delimiter + continuation_i), scored as lm-eval's HF
 * model does: trailing whitespace of the context moves to the front of the continuation; the
 * context's tokens are enc(context), the continuation's are enc(context + continuation) after
 * the first len(enc(context)) tokens (no BOS unless --bos; an empty context is BOS, or EOS if
 * the model has no BOS); the model reads context + continuation minus its last token, cut from
 * the left to the context size; loglikelihood = sum of log p(continuation token) over the
 * continuation. acc: the option with the largest loglikelihood is the label. acc_norm: the same
 * after dividing by the option's length in characters (Unicode code points of the continuation
 * without the delimiter, as lm-eval's len(choice); tokens for pre-tokenized lines). Ties go to
 * the first option (numpy argmax). +/- is lm-eval's standard error, sqrt(var_sample / n).
 *
 * What it is not: batched yet — options run one after another through bitnet_ctx_eval, sharing
 * the KV cache of the context before its last token (bitnet_ctx_truncate); with the multi-sequence API
 * (bitnet_ctx_decode) the options of a question would be sequences of one call (see score_req). */
#include "cli.h"
#include "score.h"
#include "args.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

typedef struct { int32_t *v; int n, cap; } ivec;
static int iv_push(ivec *a, const int32_t *x, int n) {
    if (a->n + n > a->cap) {
        int c = a->cap ? a->cap : 64;
        while (c < a->n + n) c *= 2;
        int32_t *q = realloc(a->v, (size_t)c * sizeof *q);
        if (!q) return 1;
        a->v = q; a->cap = c;
    }
    memcpy(a->v + a->n, x, (size_t)n * sizeof *x);
    a->n += n;
    return 0;
}

typedef struct {
    bitnet_ctx *c;
    int n_ctx, vocab;
    ivec cache;        /* the shared prefix now in the KV cache (more tokens may follow it) */
    float *lg;         /* [n_ctx][vocab] */
} scorer;

/* Loglikelihood of cont[0..nc) after ctx[0..nx) (nx >= 1, nc >= 1): the model reads
 * (ctx + cont)[:-1], cut from the left to n_ctx tokens; reuses the cached context prefix.
 * Sets *ll and *greedy (every continuation token was the argmax). 0 or 1 (message printed). */
static int score_req(scorer *s, const int32_t *ctx, int nx, const int32_t *cont, int nc, double *ll, int *greedy) {
    if (nc > s->n_ctx) { fprintf(stderr, "bitnet eval: a continuation of %d tokens does not fit the context of %d\n", nc, s->n_ctx); return 1; }
    ivec in = {0};
    if (iv_push(&in, ctx, nx) || iv_push(&in, cont, nc)) { free(in.v); fprintf(stderr, "bitnet eval: out of memory\n"); return 1; }
    int total = in.n - 1;                 /* tokens the model reads */
    int cut = total > s->n_ctx ? total - s->n_ctx : 0;
    const int32_t *x = in.v + cut;
    int n = total - cut;
    int r0 = nx - 1 - cut;                /* row whose logits predict cont[0] */
    /* Always two calls of the same shape: the prefix x[0, r0) (kept in the cache while options
     * share it), then x[r0, n) with logits. So an option's numbers do not depend on which option
     * or question came before it. */
    if (s->cache.n == r0 && (r0 == 0 || !memcmp(s->cache.v, x, (size_t)r0 * sizeof *x))) {
        if (bitnet_ctx_truncate(s->c, r0)) { free(in.v); return cli_fail("eval: truncate"); }
    } else {
        bitnet_ctx_reset(s->c);
        s->cache.n = 0;
        if (r0 > 0 && bitnet_ctx_eval(s->c, x, r0, NULL, 0)) { free(in.v); return cli_fail("eval"); }
        if (iv_push(&s->cache, x, r0)) { free(in.v); fprintf(stderr, "bitnet eval: out of memory\n"); return 1; }
    }
    if (bitnet_ctx_eval(s->c, x + r0, n - r0, s->lg, 1)) { free(in.v); return cli_fail("eval"); }
    double sum = 0; int g = 1;
    for (int i = 0; i < nc; i++) {
        const float *row = s->lg + (size_t)i * s->vocab;
        double lse = score_logsumexp(row, s->vocab);
        sum -= score_nll(row, lse, cont[i]);
        if (score_argmax(row, s->vocab) != cont[i]) g = 0;
    }
    free(in.v);
    if (!isfinite(sum)) { fprintf(stderr, "bitnet eval: non-finite logits\n"); return 1; }
    *ll = sum; *greedy = g;
    return 0;
}

static long utf8_chars(const char *s) {
    long n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Python's str.isspace for ASCII */
static int is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }

/* lm-eval's _encode_pair: tokens of ctx and of cont given ctx (see the file comment). */
static int encode_pair(const bitnet_tokenizer *t, const char *ctx, const char *cont, int bos, int prefix,
                       ivec *cx, ivec *ct) {
    size_t lc = strlen(ctx), ls = lc;
    while (ls > 0 && is_ws(ctx[ls - 1])) ls--;
    size_t lk = strlen(cont);
    char *whole = malloc(lc + lk + 1);
    if (!whole) return 1;
    memcpy(whole, ctx, lc); memcpy(whole + lc, cont, lk); whole[lc + lk] = 0;
    int32_t *a = NULL, *b = NULL; int na = 0, nb = 0;
    cx->n = ct->n = 0;
    int32_t bid = bos;
    if (ls == 0) { /* empty context: lm-eval's prefix token, continuation encoded alone */
        if (bitnet_tokenizer_encode(t, whole, lc + lk, 0, &b, &nb)) { free(whole); return cli_fail("eval: tokenize"); }
        int32_t pf = prefix;
        int r = iv_push(cx, &pf, 1) || iv_push(ct, b, nb);
        free(b); free(whole);
        return r;
    }
    if (bitnet_tokenizer_encode(t, ctx, ls, 0, &a, &na) || bitnet_tokenizer_encode(t, whole, lc + lk, 0, &b, &nb)) {
        free(a); free(whole); return cli_fail("eval: tokenize"); }
    int r = 0;
    if (bos >= 0) r |= iv_push(cx, &bid, 1);
    r |= iv_push(cx, a, na);
    if (nb > na) r |= iv_push(ct, b + na, nb - na);
    free(a); free(b); free(whole);
    return r;
}

static int get_ids(const cJSON *arr, int vocab, ivec *out) {
    out->n = 0;
    if (!cJSON_IsArray(arr)) return 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble >= vocab) return 1;
        int32_t v = (int32_t)e->valuedouble;
        if (iv_push(out, &v, 1)) return 1;
    }
    return 0;
}

/* One eval run: the options, the scorer and tokenizer, the buffers and the running counts. */
typedef struct {
    const char *model, *task;
    int use_bos, print_ll, bos, eos;
    scorer S;
    bitnet_tokenizer *tok;
    ivec cx, ct;
    double *lls, *lens;
    int nopt_cap;
    long nq, nreq, ntok;
    double s_acc, s_norm;
} eval_run;

/* Score the question on line lineno (got bytes, not blank): every option's loglikelihood, then
 * acc and acc_norm counted. 0 on success, else 1 (the message printed). */
static int eval_question(eval_run *E, const char *line, size_t got, int lineno) {
    int rc = 1;
    cJSON *j = cJSON_ParseWithLength(line, got);
    if (!cJSON_IsObject(j)) { fprintf(stderr, "bitnet eval: %s:%d: not a JSON object\n", E->task, lineno); goto fail; }
    const cJSON *ctxj = cJSON_GetObjectItemCaseSensitive(j, "context"), *chj = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *ctxsj = cJSON_GetObjectItemCaseSensitive(j, "contexts"), *contj = cJSON_GetObjectItemCaseSensitive(j, "continuation");
    const cJSON *cidj = cJSON_GetObjectItemCaseSensitive(j, "context_ids"), *chidj = cJSON_GetObjectItemCaseSensitive(j, "choices_ids");
    const cJSON *labj = cJSON_GetObjectItemCaseSensitive(j, "label"), *delj = cJSON_GetObjectItemCaseSensitive(j, "delimiter");
    int kind = cJSON_IsString(ctxj) && cJSON_IsArray(chj) ? 0 : cJSON_IsArray(ctxsj) && cJSON_IsString(contj) ? 1
             : cJSON_IsArray(cidj) && cJSON_IsArray(chidj) ? 2 : -1;
    if (kind < 0) { fprintf(stderr, "bitnet eval: %s:%d: need \"context\" + \"choices\", \"contexts\" + \"continuation\", or \"context_ids\" + \"choices_ids\"\n", E->task, lineno); goto fail; }
    if (delj && !cJSON_IsString(delj)) { fprintf(stderr, "bitnet eval: %s:%d: \"delimiter\" must be a string\n", E->task, lineno); goto fail; }
    const char *delim = delj ? delj->valuestring : "";
    int nopt = cJSON_GetArraySize(kind == 0 ? chj : kind == 1 ? ctxsj : chidj);
    if (nopt < 1) { fprintf(stderr, "bitnet eval: %s:%d: no options\n", E->task, lineno); goto fail; }
    if (!cJSON_IsNumber(labj) || labj->valuedouble != floor(labj->valuedouble) || labj->valuedouble < 0 || labj->valuedouble >= nopt) {
        fprintf(stderr, "bitnet eval: %s:%d: \"label\" must be an integer in [0, %d)\n", E->task, lineno, nopt); goto fail; }
    int label = (int)labj->valuedouble;
    if (kind != 2 && !E->tok && bitnet_tokenizer_load(E->model, &E->tok)) { cli_fail("cannot load the tokenizer"); goto fail; }
    if (nopt > E->nopt_cap) {
        free(E->lls); free(E->lens);
        E->lls = malloc((size_t)nopt * sizeof *E->lls); E->lens = malloc((size_t)nopt * sizeof *E->lens);
        if (!E->lls || !E->lens) { fprintf(stderr, "bitnet eval: out of memory\n"); goto fail; }
        E->nopt_cap = nopt;
    }
    for (int o = 0; o < nopt; o++) {
        if (kind == 2) {
            if (get_ids(cidj, E->S.vocab, &E->cx) || E->cx.n < 1 || get_ids(cJSON_GetArrayItem(chidj, o), E->S.vocab, &E->ct) || E->ct.n < 1) {
                fprintf(stderr, "bitnet eval: %s:%d: ids must be non-empty arrays of token ids below %d\n", E->task, lineno, E->S.vocab); goto fail; }
            E->lens[o] = E->ct.n;
        } else {
            const cJSON *cj = kind == 0 ? ctxj : cJSON_GetArrayItem(ctxsj, o), *kj = kind == 0 ? cJSON_GetArrayItem(chj, o) : contj;
            if (!cJSON_IsString(cj) || !cJSON_IsString(kj)) { fprintf(stderr, "bitnet eval: %s:%d: options must be strings\n", E->task, lineno); goto fail; }
            size_t ld = strlen(delim), lk = strlen(kj->valuestring);
            char *cont = malloc(ld + lk + 1);
            if (!cont) { fprintf(stderr, "bitnet eval: out of memory\n"); goto fail; }
            memcpy(cont, delim, ld); memcpy(cont + ld, kj->valuestring, lk + 1);
            int r = encode_pair(E->tok, cj->valuestring, cont, E->use_bos ? E->bos : -1, E->bos >= 0 ? E->bos : E->eos, &E->cx, &E->ct);
            free(cont);
            if (r) goto fail;
            if (E->ct.n < 1) { fprintf(stderr, "bitnet eval: %s:%d: option %d has an empty continuation\n", E->task, lineno, o); goto fail; }
            if (E->cx.n < 1) { fprintf(stderr, "bitnet eval: %s:%d: the model has no BOS/EOS to stand for an empty context\n", E->task, lineno); goto fail; }
            E->lens[o] = (double)utf8_chars(kj->valuestring);
        }
        int g = 0;
        if (score_req(&E->S, E->cx.v, E->cx.n, E->ct.v, E->ct.n, &E->lls[o], &g)) { fprintf(stderr, "bitnet eval: at %s:%d\n", E->task, lineno); goto fail; }
        E->nreq++; E->ntok += E->ct.n;
        if (E->print_ll) printf("ll %ld %d %.9g %d %d\n", E->nq, o, E->lls[o], E->ct.n, g);
    }
    int best = 0, bestn = 0;
    for (int o = 1; o < nopt; o++) {
        if (E->lls[o] > E->lls[best]) best = o;
        if (E->lls[o] / E->lens[o] > E->lls[bestn] / E->lens[bestn]) bestn = o;
    }
    E->s_acc += best == label; E->s_norm += bestn == label;
    E->nq++;
    rc = 0;
fail:
    cJSON_Delete(j);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task = NULL, *head = "exact", *kv = "f32";
    int threads = 1, n_ctx = 0, limit = 0, use_bos = 0, print_ll = 0;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR(0, "task", &task, "FILE.jsonl", "task file (scripts/convert_tasks.py writes them)"),
        OPT_INT(0, "limit", 0, 1 << 30, &limit, "N", "only the first N questions (0: all)"),
        OPT_INT('c', "ctx-size", 0, 1 << 20, &n_ctx, "CTX", "context; longer inputs are cut from the left (0: the model's)"),
        OPT_FLAG(0, "bos", &use_bos, "put BOS before every context (lm-eval's add_bos_token)"),
        OPT_CHOICE(0, "head", &head, "exact|q8|q4", "LM head representation"),
        OPT_CHOICE(0, "kv", &kv, "f16|f32", "KV cache storage (scores default to the exact f32 cache)"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads"),
        OPT_FLAG(0, "print-ll", &print_ll, "one line per option: 'll QUESTION OPTION LOGLIKELIHOOD TOKENS GREEDY'"),
        OPT_END,
    };
    args_spec spec = {"eval",
        "usage: bitnet eval -m MODEL --task FILE.jsonl [--limit N] [-c CTX] [--bos] [--head exact|q8|q4]\n"
        "                   [-t N] [--print-ll]\n"
        "  Multiple-choice accuracy (acc, acc_norm) with lm-eval-harness's loglikelihood rules.\n"
        "  Lines: {\"context\": S, \"choices\": [S...], \"label\": I} or {\"contexts\": [S...],\n"
        "  \"continuation\": S, \"label\": I} or {\"context_ids\": [..], \"choices_ids\": [[..]..], \"label\": I},\n"
        "  optional \"delimiter\" (default \"\") between context and continuation (docs/EVALUATION.md).\n",
        {opts}, {"options"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    if (n_ctx == 1) return args_error(&spec, "-c needs at least 2 tokens"), 2;
    bitnet_head_type ht = BITNET_HEAD_EXACT;
    if (!strcmp(head, "q8")) ht = BITNET_HEAD_Q8;
    else if (!strcmp(head, "q4")) ht = BITNET_HEAD_Q4;
    if (!model || !task) { fprintf(stderr, "bitnet eval: need -m MODEL --task FILE.jsonl\n"); return 2; }
    FILE *tf = fopen(task, "rb");
    if (!tf) { fprintf(stderr, "bitnet eval: %s: cannot open (%s)\n", task, strerror(errno)); return 1; }

    int rc = 1;
    bitnet_model *m = NULL;
    eval_run E = {.model = model, .task = task, .use_bos = use_bos, .print_ll = print_ll};
    scorer *S = &E.S;
    char *line = NULL; size_t lcap = 0;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.head = ht;
    if (bitnet_model_load_ex(model, &mp, &m)) { rc = cli_fail("cannot load the model"); goto done; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    S->vocab = info.vocab_size;
    S->n_ctx = n_ctx ? n_ctx : info.max_seq_len;
    if (S->n_ctx > info.max_seq_len) { fprintf(stderr, "bitnet eval: -c %d exceeds the model's context of %d\n", S->n_ctx, info.max_seq_len); goto done; }
    bitnet_ctx_params cp = {.n_ctx = S->n_ctx, .n_threads = threads, .kv_type = !strcmp(kv, "f16") ? BITNET_KV_F16 : BITNET_KV_F32};
    if (bitnet_ctx_new(m, &cp, &S->c)) { rc = cli_fail("context"); goto done; }
    S->lg = malloc((size_t)S->n_ctx * S->vocab * sizeof *S->lg);
    if (!S->lg) { fprintf(stderr, "bitnet eval: out of memory\n"); goto done; }
    E.bos = info.bos_id; E.eos = info.eos_id;

    double t0 = cli_time();
    ssize_t got;
    int lineno = 0;
    while ((got = getline(&line, &lcap, tf)) > 0 && (!limit || E.nq < limit)) {
        lineno++;
        char *p = line; while (*p && is_ws(*p)) p++;
        if (!*p) continue;
        if (eval_question(&E, line, (size_t)got, lineno)) goto done;
        if (isatty(2) && !isatty(1) && E.nq % 10 == 0) fprintf(stderr, "\reval: %ld questions, acc %.4f   ", E.nq, E.s_acc / E.nq);
    }
    if (ferror(tf)) { fprintf(stderr, "bitnet eval: %s: read error\n", task); goto done; }
    if (isatty(2) && !isatty(1)) fprintf(stderr, "\r%50s\r", "");
    long nq = E.nq;
    if (nq == 0) { fprintf(stderr, "bitnet eval: %s: no questions\n", task); goto done; }
    double el = cli_time() - t0;
    double pa = E.s_acc / nq, pn = E.s_norm / nq;
    /* lm-eval's stderr of a mean: sample standard deviation / sqrt(n) */
    double ea = nq > 1 ? sqrt(pa * (1 - pa) * nq / (nq - 1) / nq) : 0, en = nq > 1 ? sqrt(pn * (1 - pn) * nq / (nq - 1) / nq) : 0;
    printf("task: %s (%ld questions, %ld options)\n", task, nq, E.nreq);
    printf("acc      = %.4f +/- %.4f\n", pa, ea);
    printf("acc_norm = %.4f +/- %.4f\n", pn, en);
    fprintf(stderr, "eval: %ld requests, %ld continuation tokens in %.2f s\n", E.nreq, E.ntok, el);
    rc = 0;
done:
    free(line); fclose(tf);
    free(E.cx.v); free(E.ct.v); free(E.lls); free(E.lens);
    free(S->lg); free(S->cache.v);
    bitnet_ctx_free(S->c); bitnet_tokenizer_free(E.tok); bitnet_model_free(m);
    return rc;
}
