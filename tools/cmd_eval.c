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
 * Batched: the options of a question are the sequences of one bitnet_ctx_decode call, their
 * shared context decoded once and copied into each (bitnet_ctx_seq_copy; see score_opts).
 * What it is not: a batcher across questions (one question's options per call). */
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

#define EVAL_SEQ_MAX 16        /* options per bitnet_ctx_decode call; more take several calls */
#define EVAL_SEQ_TOKENS 16384  /* and at most this many cache positions in all */

typedef struct {
    const bitnet_model *m;
    bitnet_ctx *c;
    int n_ctx, vocab, threads, n_seq;  /* n_seq: the context's n_seq_max */
    ivec cache;        /* the shared prefix now in sequence 0's KV cache */
    int32_t *tok, *pos, *seq; int8_t *flag; int bcap;  /* one batch */
    float *lg; size_t lgcap;           /* [rows][vocab] */
} scorer;

static int grow(void **p, size_t n, size_t *cap) {
    if (n <= *cap) return 0;
    void *q = realloc(*p, n);
    if (!q) return 1;
    *p = q; *cap = n;
    return 0;
}

/* The context with n sequences (at least as many as it has), recreated when it must grow.
 * 0 or 1 (message printed). */
static int scorer_seqs(scorer *s, int n) {
    int most = EVAL_SEQ_TOKENS / s->n_ctx > 1 ? EVAL_SEQ_TOKENS / s->n_ctx : 1;
    if (n > EVAL_SEQ_MAX) n = EVAL_SEQ_MAX;
    if (n > most) n = most;
    if (s->c && n <= s->n_seq) return 0;
    bitnet_ctx_free(s->c); s->c = NULL; s->cache.n = 0;
    bitnet_ctx_params cp = {.n_ctx = s->n_ctx, .n_threads = s->threads, .n_seq_max = n};
    if (bitnet_ctx_new(s->m, &cp, &s->c)) return cli_fail("context");
    s->n_seq = n;
    return 0;
}

/* Room for nb batch entries and rows logits rows. 0 or 1 (message printed). */
static int batch_room(scorer *s, int nb, int rows) {
    if (nb > s->bcap) {
        int32_t *t = realloc(s->tok, (size_t)nb * sizeof *t); if (t) s->tok = t;
        int32_t *q = realloc(s->pos, (size_t)nb * sizeof *q); if (q) s->pos = q;
        int32_t *d = realloc(s->seq, (size_t)nb * sizeof *d); if (d) s->seq = d;
        int8_t *f = realloc(s->flag, (size_t)nb); if (f) s->flag = f;
        if (!t || !q || !d || !f) { fprintf(stderr, "bitnet eval: out of memory\n"); return 1; }
        s->bcap = nb;
    }
    if (grow((void **)&s->lg, (size_t)rows * s->vocab * sizeof *s->lg, &s->lgcap)) { fprintf(stderr, "bitnet eval: out of memory\n"); return 1; }
    return 0;
}

/* ll[o], greedy[o] for options o0..o1 from their logits rows, in order, in s->lg. 0 or 1. */
static int score_rows(scorer *s, int o0, int o1, const ivec *in, const int *nc, double *ll, int *greedy) {
    const float *row = s->lg;
    for (int o = o0; o < o1; o++) {
        const int32_t *cont = in[o].v + in[o].n - nc[o];
        double sum = 0; int g = 1;
        for (int i = 0; i < nc[o]; i++, row += s->vocab) {
            double lse = score_logsumexp(row, s->vocab);
            sum -= score_nll(row, lse, cont[i]);
            if (score_argmax(row, s->vocab) != cont[i]) g = 0;
        }
        if (!isfinite(sum)) { fprintf(stderr, "bitnet eval: non-finite logits\n"); return 1; }
        ll[o] = sum; greedy[o] = g;
    }
    return 0;
}

/* score_opts for options whose first scored rows differ (contexts of their own, or cut from the
 * left differently): each option is a whole sequence from position 0, in two calls of the same
 * shapes as scoring it alone — x[0, r0) of every option, then every x[r0, n) with logits. */
static int score_alone(scorer *s, int nopt, const ivec *in, const int *nc, double *ll, int *greedy) {
    s->cache.n = 0;
    for (int o0 = 0; o0 < nopt; o0 += s->n_seq) {
        int o1 = o0 + s->n_seq < nopt ? o0 + s->n_seq : nopt, nb = 0, rows = 0;
        for (int o = o0; o < o1; o++) { int total = in[o].n - 1; nb += total < s->n_ctx ? total : s->n_ctx; rows += nc[o]; }
        if (batch_room(s, nb, rows)) return 1;
        for (int o = o0; o < o1; o++)
            if (bitnet_ctx_seq_truncate(s->c, o - o0, 0)) return cli_fail("eval: truncate");
        for (int part = 0; part < 2; part++) {
            int k = 0;
            for (int o = o0; o < o1; o++) {
                int total = in[o].n - 1, cut = total > s->n_ctx ? total - s->n_ctx : 0, n = total - cut, r0 = n - nc[o];
                for (int i = part ? r0 : 0; i < (part ? n : r0); i++, k++) {
                    s->tok[k] = in[o].v[cut + i]; s->pos[k] = i; s->seq[k] = o - o0; s->flag[k] = (int8_t)part;
                }
            }
            bitnet_batch b = {k, s->tok, s->pos, s->seq, s->flag};
            if (k > 0 && bitnet_ctx_decode(s->c, &b, part ? s->lg : NULL)) return cli_fail("eval");
        }
        if (score_rows(s, o0, o1, in, nc, ll, greedy)) return 1;
    }
    return 0;
}

/* Loglikelihood of each option o < nopt: in[o] = ctx + cont (ctx >= 1 token), nc[o] = cont's
 * length (>= 1); the model reads in[o][:-1], cut from the left to n_ctx tokens. When every
 * option reads the same P tokens before its first scored row (one context, as in HellaSwag or
 * ARC), those are decoded once in sequence 0 (kept there for the next question when it starts
 * the same way) and copied into sequences 1..k-1 (bitnet_ctx_seq_copy); the options' remaining
 * tokens are the sequences of one bitnet_ctx_decode call (up to the context's n_seq options per
 * call), logits on the rows that predict cont. Otherwise score_alone. Either way the calls have
 * the shapes of scoring each option alone (its context before the last token, then the rest),
 * so an option's numbers do not depend on the others. Sets ll[o] and greedy[o] (every
 * continuation token was the argmax). 0 or 1 (message printed). */
static int score_opts(scorer *s, int nopt, const ivec *in, const int *nc, double *ll, int *greedy) {
    if (scorer_seqs(s, nopt)) return 1;
    /* P: every option's first scored row, when it is the same row after the same tokens; else -1 */
    const int32_t *x0 = NULL;
    int P = -1;
    for (int o = 0; o < nopt; o++) {
        if (nc[o] > s->n_ctx) { fprintf(stderr, "bitnet eval: a continuation of %d tokens does not fit the context of %d\n", nc[o], s->n_ctx); return 1; }
        int total = in[o].n - 1, cut = total > s->n_ctx ? total - s->n_ctx : 0, r0 = total - cut - nc[o];
        const int32_t *x = in[o].v + cut;
        if (o == 0) { x0 = x; P = r0; }
        else if (r0 != P || memcmp(x, x0, (size_t)P * sizeof *x)) { P = -1; break; }
    }
    if (P < 0) return score_alone(s, nopt, in, nc, ll, greedy);
    if (s->cache.n >= P && bitnet_ctx_seq_pos(s->c, 0) >= P && (P == 0 || !memcmp(s->cache.v, x0, (size_t)P * sizeof *x0))) {
        if (bitnet_ctx_seq_truncate(s->c, 0, P)) return cli_fail("eval: truncate");
    } else {
        bitnet_ctx_seq_truncate(s->c, 0, 0);
        s->cache.n = 0;
        if (P > 0 && bitnet_ctx_eval(s->c, x0, P, NULL, 0)) return cli_fail("eval");
        if (iv_push(&s->cache, x0, P)) { fprintf(stderr, "bitnet eval: out of memory\n"); return 1; }
    }
    s->cache.n = P;
    for (int o0 = 0; o0 < nopt; o0 += s->n_seq) {
        int o1 = o0 + s->n_seq < nopt ? o0 + s->n_seq : nopt, nb = 0, rows = 0;
        for (int o = o0; o < o1; o++) {
            int total = in[o].n - 1;
            nb += (total < s->n_ctx ? total : s->n_ctx) - P;
            rows += nc[o];
        }
        if (batch_room(s, nb, rows)) return 1;
        if (bitnet_ctx_seq_truncate(s->c, 0, P)) return cli_fail("eval: truncate");
        for (int o = o0 + 1; o < o1; o++)
            if (bitnet_ctx_seq_copy(s->c, 0, o - o0)) return cli_fail("eval: copy the shared prefix");
        int k = 0;
        for (int o = o0; o < o1; o++) {
            int total = in[o].n - 1, cut = total > s->n_ctx ? total - s->n_ctx : 0, n = total - cut, r0 = n - nc[o];
            for (int i = P; i < n; i++, k++) {
                s->tok[k] = in[o].v[cut + i]; s->pos[k] = i; s->seq[k] = o - o0; s->flag[k] = (int8_t)(i >= r0);
            }
        }
        bitnet_batch b = {k, s->tok, s->pos, s->seq, s->flag};
        if (bitnet_ctx_decode(s->c, &b, s->lg)) return cli_fail("eval");
        if (score_rows(s, o0, o1, in, nc, ll, greedy)) return 1;
    }
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
    ivec *in; int *nc, *greedy;  /* [nopt_cap]: each option's context + continuation, its length */
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
        free(E->lls); free(E->lens); free(E->nc); free(E->greedy);
        for (int o = 0; o < E->nopt_cap; o++) free(E->in[o].v);
        free(E->in); E->nopt_cap = 0;
        E->lls = malloc((size_t)nopt * sizeof *E->lls); E->lens = malloc((size_t)nopt * sizeof *E->lens);
        E->nc = malloc((size_t)nopt * sizeof *E->nc); E->greedy = malloc((size_t)nopt * sizeof *E->greedy);
        E->in = calloc((size_t)nopt, sizeof *E->in);
        if (!E->lls || !E->lens || !E->nc || !E->greedy || !E->in) { fprintf(stderr, "bitnet eval: out of memory\n"); goto fail; }
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
        E->in[o].n = 0;
        if (iv_push(&E->in[o], E->cx.v, E->cx.n) || iv_push(&E->in[o], E->ct.v, E->ct.n)) { fprintf(stderr, "bitnet eval: out of memory\n"); goto fail; }
        E->nc[o] = E->ct.n;
    }
    if (score_opts(&E->S, nopt, E->in, E->nc, E->lls, E->greedy)) { fprintf(stderr, "bitnet eval: at %s:%d\n", E->task, lineno); goto fail; }
    for (int o = 0; o < nopt; o++) {
        E->nreq++; E->ntok += E->nc[o];
        if (E->print_ll) printf("ll %ld %d %.9g %d %d\n", E->nq, o, E->lls[o], E->nc[o], E->greedy[o]);
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
    const char *model = NULL, *task = NULL, *head = "exact";
    int threads = 1, n_ctx = 0, limit = 0, use_bos = 0, print_ll = 0;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR(0, "task", &task, "FILE.jsonl", "task file (scripts/convert_tasks.py writes them)"),
        OPT_INT(0, "limit", 0, 1 << 30, &limit, "N", "only the first N questions (0: all)"),
        OPT_INT('c', "ctx-size", 0, 1 << 20, &n_ctx, "CTX", "context; longer inputs are cut from the left (0: the model's)"),
        OPT_FLAG(0, "bos", &use_bos, "put BOS before every context (lm-eval's add_bos_token)"),
        OPT_CHOICE(0, "head", &head, "exact|q8|q4", "LM head representation"),
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
    S->m = m; S->threads = threads;
    if (scorer_seqs(S, 1)) goto done;
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
    free(E.cx.v); free(E.ct.v); free(E.lls); free(E.lens); free(E.nc); free(E.greedy);
    for (int o = 0; o < E.nopt_cap; o++) free(E.in[o].v);
    free(E.in);
    free(S->lg); free(S->cache.v); free(S->tok); free(S->pos); free(S->seq); free(S->flag);
    bitnet_ctx_free(S->c); bitnet_tokenizer_free(E.tok); bitnet_model_free(m);
    return rc;
}
