/* cmd_perplexity.c — `bitnet perplexity`: perplexity of a model on a text, by llama.cpp's
 * llama-perplexity method (default) or Hugging Face's sliding window (--stride), and the
 * KL-divergence mode that compares a run against a saved base run (--kl-base / --kl).
 *
 * Chunked method (llama-perplexity): the text is tokenized with BOS; it is cut into
 * n_chunk = n_tokens / CTX chunks of CTX tokens (the remainder is dropped; at least 2*CTX tokens
 * are needed); each chunk is evaluated from an empty cache with its first token replaced by BOS
 * (when the model has one); positions j = CTX/2 .. CTX-2 of the chunk are scored, i.e. the logits
 * at j predict token j+1, CTX - CTX/2 - 1 tokens per chunk. After each chunk "[i]PPL," is printed
 * (the running estimate), and at the end "Final estimate: PPL = X +/- Y" with
 * Y = PPL * sqrt((mean(nll^2) - mean(nll)^2) / (N - 1)) over the N scored tokens.
 * Sliding window (--stride S, Hugging Face's "perplexity of fixed-length models"): windows
 * ids[b : b+CTX] for b = 0, S, 2S, ... (the last one ending at the end of the text); each window
 * scores only the tokens after the previous window's end; no BOS is inserted (the text starts
 * with one).
 *
 * KL base file (--kl-base FILE writes it, --kl FILE reads it; llama.cpp's --kl-divergence-base FILE
 * [--kl-divergence] also work), little-endian:
 *   char magic[8] = "BNKLBAS1"
 *   u32 vocab, n_ctx, n_chunk, topk, first (= n_ctx/2), bos (0xffffffff = none)
 *   u32 tokens[n_chunk * n_ctx]          the text's tokens as read (before the BOS replacement)
 *   per scored token (n_chunk * (n_ctx - first - 1) records, in order):
 *     f64 nll (of the actual next token), u32 ids[topk], f32 logp[topk]  (descending logp)
 * The second run uses the file's tokens and chunking (-f is optional; if given it must tokenize
 * to the same tokens). KL per token is KL(base || this run) over the base's top-k plus one bucket
 * for the remaining mass (a lower bound of the full KL; exact when topk == vocab).
 *
 * Batching (-b N, llama-perplexity's n_batch, default 2048): N < CTX evaluates each chunk in
 * calls of N tokens; N >= CTX puts N/CTX chunks (or windows) in one bitnet_ctx_decode call as
 * sequences of one context, one weight pass for all (eval_group), as llama-perplexity does.
 * What it is not: a packer of partial chunks into one call (N/CTX rounds down). */
#include "cli.h"
#include "score.h"
#include "args.h"
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KL_MAGIC "BNKLBAS1"
#define KL_HDR (8 + 6 * 4)

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) { char *q = realloc(b, cap *= 2); if (!q) { free(b); b = NULL; } else b = q; }
    }
    if (b && ferror(f)) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[len] = 0; *n = len; }
    return b;
}

/* A uint32 little-endian token file (as `bitnet tokenize-file` writes) into ids; -1 on error
 * (message printed). */
static int read_tokens(const char *path, int vocab, int32_t **ids) {
    size_t n = 0;
    unsigned char *b = (unsigned char *)read_all(path, &n);
    if (!b) { fprintf(stderr, "bitnet perplexity: %s: cannot read (%s)\n", path, strerror(errno)); return -1; }
    if (n % 4 || n / 4 > INT32_MAX) { fprintf(stderr, "bitnet perplexity: %s: %zu bytes is not a uint32 token file\n", path, n); free(b); return -1; }
    int32_t *v = malloc((n / 4 + 1) * sizeof *v);
    if (!v) { free(b); fprintf(stderr, "bitnet perplexity: out of memory\n"); return -1; }
    for (size_t i = 0; i < n / 4; i++) {
        uint32_t x = b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        if (x >= (uint32_t)vocab) {
            fprintf(stderr, "bitnet perplexity: %s: token %u at index %zu is outside the model's vocabulary of %d\n", path, x, i, vocab);
            free(b); free(v); return -1;
        }
        v[i] = (int32_t)x;
    }
    free(b);
    *ids = v;
    return (int)(n / 4);
}

/* Evaluate toks[0..n) from an empty cache in calls of at most nb tokens; rows [from, n) of the
 * logits go to out[(n - from)][vocab] (tmp: float[nb][vocab]). 0 or 1 (message printed). */
static int eval_chunk(bitnet_ctx *c, const int32_t *toks, int n, int nb, int from, int vocab, float *out, float *tmp) {
    bitnet_ctx_reset(c);
    for (int s = 0; s < n; s += nb) {
        int len = n - s < nb ? n - s : nb;
        if (s + len <= from) { /* no scored rows here: no logits needed */
            if (bitnet_ctx_eval(c, toks + s, len, NULL, 0)) return cli_fail("perplexity: eval");
            continue;
        }
        if (bitnet_ctx_eval(c, toks + s, len, tmp, 1)) return cli_fail("perplexity: eval");
        int r0 = s < from ? from - s : 0;
        memcpy(out + (size_t)(s + r0 - from) * vocab, tmp + (size_t)r0 * vocab, (size_t)(len - r0) * vocab * sizeof(float));
    }
    return 0;
}

/* The batch arrays of eval_group, sized for nseq * n_ctx entries. */
typedef struct { int32_t *tok, *pos, *seq; int8_t *logits; } ppl_batch;

/* Evaluate ng chunks in one bitnet_ctx_decode call: chunk g (toks[g * stride_tok ..], len[g]
 * tokens, logits for rows [from[g], len[g])) is sequence g from an empty cache. The logits rows
 * go to out in chunk order, each chunk's (len - from) rows after the previous chunk's.
 * 0 or 1 (message printed). */
static int eval_group(bitnet_ctx *c, int ng, const int32_t *toks, int stride_tok, const int *len, const int *from,
                      ppl_batch *b, float *out) {
    int k = 0;
    for (int g = 0; g < ng; g++) {
        if (bitnet_ctx_seq_truncate(c, g, 0)) return cli_fail("perplexity: truncate");
        for (int i = 0; i < len[g]; i++, k++) {
            b->tok[k] = toks[(size_t)g * stride_tok + i]; b->pos[k] = i; b->seq[k] = g; b->logits[k] = i >= from[g];
        }
    }
    bitnet_batch bb = {k, b->tok, b->pos, b->seq, b->logits};
    if (bitnet_ctx_decode(c, &bb, out)) return cli_fail("perplexity: eval");
    return 0;
}

/* Chunk or window ci of n_tok tokens: tokens [start, start + len), scored rows [from, len - 1).
 * Chunked method (stride 0): chunks of n_ctx, scored from `first`; sliding windows every
 * `stride` tokens, each scoring the targets after the previous window's end. */
static void chunk_geom(int ci, int stride, int n_ctx, int n_tok, int first, int *start, int *len, int *from) {
    if (stride) {
        *start = ci * stride;
        *len = *start + n_ctx < n_tok ? n_ctx : n_tok - *start;
        int ps = (ci - 1) * stride;
        int prev_end = ci ? ps + (ps + n_ctx < n_tok ? n_ctx : n_tok - ps) : 0;
        int tstart = prev_end > *start + 1 ? prev_end : *start + 1;  /* first target (absolute) */
        *from = tstart - 1 - *start;
    } else {
        *start = ci * n_ctx; *len = n_ctx; *from = first;
    }
}

static void put32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
static uint32_t get32(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

typedef struct {
    FILE *f; const char *path;     /* open base file (reading or writing) */
    int topk;
    unsigned char *rec;            /* one record */
    size_t rec_len;
} klfile;

/* Open FILE and check its header against the model; reads its tokens into *toks. 0 or 1. */
static int kl_open_read(klfile *k, const char *path, int vocab, int *n_ctx, int *n_chunk, int *bos, int32_t **toks) {
    k->path = path;
    k->f = fopen(path, "rb");
    if (!k->f) { fprintf(stderr, "bitnet perplexity: --kl %s: cannot open (%s)\n", path, strerror(errno)); return 1; }
    unsigned char h[KL_HDR];
    struct stat st;
    if (fstat(fileno(k->f), &st) || fread(h, 1, KL_HDR, k->f) != KL_HDR || memcmp(h, KL_MAGIC, 8)) {
        fprintf(stderr, "bitnet perplexity: --kl %s: not a KL base file (no \"%s\" header; make one with --kl-base)\n", path, KL_MAGIC);
        return 1;
    }
    uint32_t fv = get32(h + 8), fc = get32(h + 12), fn = get32(h + 16), tk = get32(h + 20), first = get32(h + 24), fb = get32(h + 28);
    if (fv != (uint32_t)vocab) { fprintf(stderr, "bitnet perplexity: --kl %s: made with a vocabulary of %u, this model has %d\n", path, fv, vocab); return 1; }
    if (fc < 4 || fc > (1u << 20) || fn < 1 || fn > (1u << 20) || tk < 1 || tk > fv || first != fc / 2 || (fb != 0xffffffffu && fb >= fv)) {
        fprintf(stderr, "bitnet perplexity: --kl %s: inconsistent header (ctx %u, chunks %u, top-k %u, first %u)\n", path, fc, fn, tk, first);
        return 1;
    }
    k->topk = (int)tk;
    k->rec_len = 8 + 8 * (size_t)tk;
    uint64_t want = KL_HDR + 4ull * fc * fn + (uint64_t)fn * (fc - first - 1) * k->rec_len;
    if ((uint64_t)st.st_size != want) {
        fprintf(stderr, "bitnet perplexity: --kl %s: %lld bytes, but its header (ctx %u, %u chunks, top-k %u) needs %llu: truncated or not a KL base file\n",
                path, (long long)st.st_size, fc, fn, tk, (unsigned long long)want);
        return 1;
    }
    size_t nt = (size_t)fc * fn;
    unsigned char *tb = malloc(nt * 4);
    int32_t *t = malloc(nt * sizeof *t);
    k->rec = malloc(k->rec_len);
    if (!tb || !t || !k->rec || fread(tb, 4, nt, k->f) != nt) { fprintf(stderr, "bitnet perplexity: --kl %s: cannot read\n", path); free(tb); free(t); return 1; }
    for (size_t i = 0; i < nt; i++) {
        uint32_t x = get32(tb + 4 * i);
        if (x >= fv) { fprintf(stderr, "bitnet perplexity: --kl %s: token %u at %zu outside the vocabulary\n", path, x, i); free(tb); free(t); return 1; }
        t[i] = (int32_t)x;
    }
    free(tb);
    *n_ctx = (int)fc; *n_chunk = (int)fn; *bos = fb == 0xffffffffu ? -1 : (int)fb; *toks = t;
    return 0;
}

typedef struct {
    double nll, nll2;   /* sums over scored tokens */
    long count;
} acc_t;

/* One perplexity run: the options, what was loaded, and the running sums. */
typedef struct {
    const char *model, *file, *tokfile, *kl_base, *kl_in, *head;
    int n_ctx, ctx_set, stride, nbatch, threads, max_chunks, topk;
    bitnet_model *m; bitnet_ctx *c; bitnet_tokenizer *tok;
    int32_t *toks, *kltoks, *buf;  /* buf: [nseq][n_ctx] the chunks of one call */
    float *out, *tmp;              /* out: [nseq * n_ctx][V] their scored rows' logits */
    ppl_batch batch;               /* nseq > 1 */
    int nseq, *glen, *gfrom;       /* chunks per call; each one's length and first scored row */
    double *kls;
    uint32_t *kids; float *klp;  /* one top-k row */
    klfile kf;
    char *tmpname;
    int n_tok, bos, V, n_chunk, first, nscore, nb;
    acc_t A;
    double b_nll, b_nll2, kl_sum, kl_sum2, kl_max;  /* KL sums */
    long same_top, nkl, evaluated;
} ppl_run;

/* Load the model and the tokens (-f, --tokens or the --kl base's), and check the --kl base
 * against them. 0 on success, else the exit status (the message printed). */
static int ppl_load(ppl_run *P, bitnet_head_type ht) {
    bitnet_model_params mp = bitnet_model_default_params();
    mp.head = ht;
    if (bitnet_model_load_ex(P->model, &mp, &P->m)) return cli_fail("cannot load the model");
    bitnet_model_info info; bitnet_model_get_info(P->m, &info);
    const int V = P->V = info.vocab_size;
    P->bos = info.bos_id;
    if (P->file) {
        if (cli_load_tokenizer(P->model, &P->tok)) return cli_fail("cannot load the tokenizer");
        if (bitnet_tokenizer_bos(P->tok) >= 0) P->bos = bitnet_tokenizer_bos(P->tok);
        size_t len = 0;
        char *text = read_all(P->file, &len);
        if (!text) { fprintf(stderr, "bitnet perplexity: %s: cannot read (%s)\n", P->file, strerror(errno)); return 1; }
        double t0 = cli_time();
        bitnet_status st = bitnet_tokenizer_encode(P->tok, text, len, P->bos >= 0, &P->toks, &P->n_tok);
        free(text);
        if (st) return cli_fail("tokenize");
        fprintf(stderr, "perplexity: tokenized %s: %zu bytes -> %d tokens in %.2f s\n", P->file, len, P->n_tok, cli_time() - t0);
        for (int i = 0; i < P->n_tok; i++)
            if (P->toks[i] < 0 || P->toks[i] >= V) { fprintf(stderr, "bitnet perplexity: tokenizer id %d is outside the model's vocabulary of %d\n", P->toks[i], V); return 1; }
    } else if (P->tokfile) {
        P->n_tok = read_tokens(P->tokfile, V, &P->toks);
        if (P->n_tok < 0) return 1;
    }
    if (P->kl_in) {
        int fctx, fchunk, fbos;
        const char *kl_in = P->kl_in;
        if (kl_open_read(&P->kf, kl_in, V, &fctx, &fchunk, &fbos, &P->kltoks)) return 1;
        if (P->ctx_set && fctx != P->n_ctx) { fprintf(stderr, "bitnet perplexity: --kl %s was made with -c %d, not %d\n", kl_in, fctx, P->n_ctx); return 1; }
        if (P->toks) {
            if (P->n_tok < fctx * fchunk || memcmp(P->toks, P->kltoks, (size_t)fctx * fchunk * sizeof *P->toks)) {
                fprintf(stderr, "bitnet perplexity: --kl %s was made from other tokens than %s gives; drop -f/--tokens or use the same text\n",
                        kl_in, P->file ? P->file : P->tokfile);
                return 1;
            }
        }
        if (fbos != P->bos) { fprintf(stderr, "bitnet perplexity: --kl %s: made with BOS %d, this model's is %d\n", kl_in, fbos, P->bos); return 1; }
        free(P->toks); P->toks = P->kltoks; P->kltoks = NULL;
        P->n_ctx = fctx; P->n_chunk = fchunk; P->n_tok = fctx * fchunk;
        if (P->max_chunks > 0 && P->max_chunks < P->n_chunk) P->n_chunk = P->max_chunks;
        P->topk = P->kf.topk;
    }
    if (P->n_ctx > info.max_seq_len) { fprintf(stderr, "bitnet perplexity: -c %d exceeds the model's context of %d\n", P->n_ctx, info.max_seq_len); return 1; }
    return 0;
}

/* The chunks or windows to score, the context and buffers, and the --kl-base file's header and
 * tokens (into a temporary file). 0 on success, else the exit status (the message printed). */
static int ppl_plan(ppl_run *P) {
    const int V = P->V, n_ctx = P->n_ctx, n_tok = P->n_tok;
    if (P->stride) {
        if (n_tok <= n_ctx) { fprintf(stderr, "bitnet perplexity: %d tokens are not enough for a window of %d (need more than -c)\n", n_tok, n_ctx); return 1; }
        P->n_chunk = 0;
        for (int b = 0, prev = 0; prev < n_tok; b += P->stride) { int e = b + n_ctx < n_tok ? b + n_ctx : n_tok; P->n_chunk++; prev = e; }
        P->first = 0; P->nscore = 0;
    } else {
        if (!P->kl_in && n_tok < 2 * n_ctx) {
            fprintf(stderr, "bitnet perplexity: you need at least %d tokens to evaluate perplexity with a context of %d; "
                    "the text gives only %d\n", 2 * n_ctx, n_ctx, n_tok);
            return 1;
        }
        if (!P->kl_in) P->n_chunk = n_tok / n_ctx;
        P->first = n_ctx / 2; P->nscore = n_ctx - P->first - 1;
    }
    if (P->max_chunks > 0 && P->max_chunks < P->n_chunk) P->n_chunk = P->max_chunks;
    if (P->topk == 0 || P->topk > V) P->topk = V;
    int nb = P->nb = P->nbatch < n_ctx ? P->nbatch : n_ctx, topk = P->topk;
    /* llama-perplexity: n_batch / n_ctx chunks per call (at least one) */
    int nseq = P->nseq = P->nbatch / n_ctx > 1 ? (P->nbatch / n_ctx < P->n_chunk ? P->nbatch / n_ctx : P->n_chunk) : 1;
    bitnet_ctx_params cp = {.n_ctx = n_ctx, .n_threads = P->threads, .n_seq_max = nseq};
    if (bitnet_ctx_new(P->m, &cp, &P->c)) return cli_fail("context");
    size_t nt = (size_t)nseq * n_ctx;
    P->out = malloc(nt * V * sizeof *P->out);
    P->tmp = malloc((size_t)nb * V * sizeof *P->tmp);
    P->buf = malloc(nt * sizeof *P->buf);
    P->kids = malloc((size_t)topk * sizeof *P->kids); P->klp = malloc((size_t)topk * sizeof *P->klp);
    if (!P->out || !P->tmp || !P->buf || !P->kids || !P->klp) { fprintf(stderr, "bitnet perplexity: out of memory for %zu x %d logits\n", nt, V); return 1; }
    if (nseq > 1) {
        ppl_batch *b = &P->batch;
        b->tok = malloc(nt * sizeof *b->tok); b->pos = malloc(nt * sizeof *b->pos); b->seq = malloc(nt * sizeof *b->seq); b->logits = malloc(nt);
        P->glen = malloc((size_t)nseq * sizeof *P->glen); P->gfrom = malloc((size_t)nseq * sizeof *P->gfrom);
        if (!b->tok || !b->pos || !b->seq || !b->logits || !P->glen || !P->gfrom) { fprintf(stderr, "bitnet perplexity: out of memory\n"); return 1; }
    }
    if (P->kl_base) {
        klfile *kf = &P->kf;
        kf->topk = topk; kf->rec_len = 8 + 8 * (size_t)topk; kf->path = P->kl_base;
        kf->rec = malloc(kf->rec_len);
        P->tmpname = malloc(strlen(P->kl_base) + 16);
        if (!kf->rec || !P->tmpname) { fprintf(stderr, "bitnet perplexity: out of memory\n"); return 1; }
        sprintf(P->tmpname, "%s.tmp%d", P->kl_base, (int)getpid());
        kf->f = fopen(P->tmpname, "wb");
        if (!kf->f) { fprintf(stderr, "bitnet perplexity: --kl-base %s: cannot write (%s)\n", P->tmpname, strerror(errno)); return 1; }
        unsigned char h[KL_HDR];
        memcpy(h, KL_MAGIC, 8);
        put32(h + 8, (uint32_t)V); put32(h + 12, (uint32_t)n_ctx); put32(h + 16, (uint32_t)P->n_chunk);
        put32(h + 20, (uint32_t)topk); put32(h + 24, (uint32_t)P->first); put32(h + 28, P->bos >= 0 ? (uint32_t)P->bos : 0xffffffffu);
        fwrite(h, 1, KL_HDR, kf->f);
        for (size_t i = 0; i < (size_t)P->n_chunk * n_ctx; i++) { unsigned char b4[4]; put32(b4, (uint32_t)P->toks[i]); fwrite(b4, 1, 4, kf->f); }
    }
    if (P->kl_in) {
        P->kls = malloc((size_t)P->n_chunk * P->nscore * sizeof *P->kls);
        if (!P->kls) { fprintf(stderr, "bitnet perplexity: out of memory\n"); return 1; }
    }
    return 0;
}

/* Score one logits row against target (chunk ci): the NLL sums, and the --kl-base record
 * written or the --kl record read and compared. 0 on success, else 1 (the message printed). */
static int ppl_score_row(ppl_run *P, const float *row, int target, int ci) {
    const int V = P->V, topk = P->topk;
    klfile *kf = &P->kf;
    double lse = score_logsumexp(row, V);
    double v = score_nll(row, lse, target);
    if (!isfinite(v)) { fprintf(stderr, "bitnet perplexity: non-finite logits in chunk %d\n", ci + 1); return 1; }
    P->A.nll += v; P->A.nll2 += v * v; P->A.count++;
    if (P->kl_base) {
        memcpy(kf->rec, &v, 8);
        score_topk(row, V, lse, topk, P->kids, P->klp);
        for (int q = 0; q < topk; q++) put32(kf->rec + 8 + 4 * (size_t)q, P->kids[q]);
        memcpy(kf->rec + 8 + 4 * (size_t)topk, P->klp, 4 * (size_t)topk);
        if (fwrite(kf->rec, 1, kf->rec_len, kf->f) != kf->rec_len) { fprintf(stderr, "bitnet perplexity: --kl-base %s: write failed\n", P->tmpname); return 1; }
    }
    if (P->kl_in) {
        const char *kl_in = P->kl_in;
        if (fread(kf->rec, 1, kf->rec_len, kf->f) != kf->rec_len) { fprintf(stderr, "bitnet perplexity: --kl %s: read failed\n", kl_in); return 1; }
        double bn; memcpy(&bn, kf->rec, 8);
        uint32_t *ids = P->kids; float *lp = P->klp;
        for (int q = 0; q < topk; q++) { ids[q] = get32(kf->rec + 8 + 4 * (size_t)q); if (ids[q] >= (uint32_t)V) { fprintf(stderr, "bitnet perplexity: --kl %s: corrupt record (id %u)\n", kl_in, ids[q]); return 1; } }
        memcpy(lp, kf->rec + 8 + 4 * (size_t)topk, 4 * (size_t)topk);
        if (!isfinite(bn)) { fprintf(stderr, "bitnet perplexity: --kl %s: corrupt record (nll)\n", kl_in); return 1; }
        double kl = score_kl_topk(ids, lp, topk, row, lse);
        P->b_nll += bn; P->b_nll2 += bn * bn;
        P->kl_sum += kl; P->kl_sum2 += kl * kl; if (kl > P->kl_max) P->kl_max = kl;
        P->kls[P->nkl++] = kl;
        P->same_top += score_argmax(row, V) == (int)ids[0];
    }
    return 0;
}

/* Evaluate and score every chunk or window, printing [i]PPL as each ends and the progress.
 * 0 on success, else 1 (the message printed). */
static int ppl_chunks(ppl_run *P, double t0) {
    const int V = P->V, n_ctx = P->n_ctx, n_tok = P->n_tok, n_chunk = P->n_chunk;
    int tty = isatty(2) && !isatty(1);
    const float *orow = P->out;  /* chunk ci's first scored logits row */
    for (int ci = 0; ci < n_chunk; ci++) {
        int start = 0, len = 0, from = 0;  /* window tokens [start, start+len); scored rows [from, len-1) */
        if (ci % P->nseq == 0) {  /* evaluate chunks ci .. ci + nseq - 1 in one call */
            int ng = n_chunk - ci < P->nseq ? n_chunk - ci : P->nseq;
            for (int g = 0; g < ng; g++) {
                chunk_geom(ci + g, P->stride, n_ctx, n_tok, P->first, &start, &len, &from);
                int32_t *bg = P->buf + (size_t)g * n_ctx;
                memcpy(bg, P->toks + start, (size_t)len * sizeof *bg);
                if (!P->stride && P->bos >= 0) bg[0] = P->bos;  /* llama-perplexity: BOS first in every chunk */
                if (P->nseq > 1) { P->glen[g] = len; P->gfrom[g] = from; }
            }
            if (P->nseq > 1 ? eval_group(P->c, ng, P->buf, n_ctx, P->glen, P->gfrom, &P->batch, P->out)
                            : eval_chunk(P->c, P->buf, len, P->nb, from, V, P->out, P->tmp)) return 1;
            orow = P->out;
        }
        chunk_geom(ci, P->stride, n_ctx, n_tok, P->first, &start, &len, &from);
        P->evaluated += len;
        for (int j = from; j < len - 1; j++)
            if (ppl_score_row(P, orow + (size_t)(j - from) * V, P->toks[start + j + 1], ci)) return 1;
        orow += (size_t)(len - from) * V;
        printf("[%d]%.4f,", ci + 1, exp(P->A.nll / P->A.count));
        fflush(stdout);
        double el = cli_time() - t0, per = el / (ci + 1);
        if (ci == 0) {
            int tot = (int)(per * n_chunk);
            fprintf(stderr, "perplexity: %.2f seconds per pass - ETA ", per);
            if (tot >= 3600) fprintf(stderr, "%d hours ", tot / 3600);
            fprintf(stderr, "%.2f minutes\n", (tot % 3600) / 60.0);
        }
        if (tty) fprintf(stderr, "\rperplexity: %d/%d, %.0f tokens/s, ETA %.0f s   ", ci + 1, n_chunk, P->evaluated / el, per * (n_chunk - ci - 1));
    }
    printf("\n");
    if (tty) fprintf(stderr, "\r%60s\r", "");
    return 0;
}

/* The final estimate, the KL report (--kl) and the --kl-base file moved into place.
 * 0 on success, else 1 (the message printed). */
static int ppl_report(ppl_run *P, double el) {
    const acc_t A = P->A;
    double mean = A.nll / A.count, ppl = exp(mean), var = A.nll2 / A.count - mean * mean;
    if (A.count > 1 && var > 0) printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sqrt(var / (A.count - 1)) * ppl);
    else printf("Final estimate: PPL = %.4f +/- nan\n", ppl);
    fprintf(stderr, "perplexity: %ld tokens scored, %ld evaluated in %.2f s (%.1f tokens/s)\n", A.count, P->evaluated, el, P->evaluated / el);
    if (P->kl_in) {
        long n = P->nkl;
        double bm = P->b_nll / n, bppl = exp(bm);
        double km = P->kl_sum / n, kv = P->kl_sum2 / n - km * km;
        double ps = (double)P->same_top / n;
        /* ln(PPL(Q)/PPL(base)) = mean(nll_q - nll_base) */
        printf("KL divergence against %s (%ld tokens, base top-%d of %d):\n", P->kl_in, n, P->topk, P->V);
        printf("Mean PPL(Q)                  : %10.6f\n", ppl);
        printf("Mean PPL(base)               : %10.6f\n", bppl);
        printf("Delta PPL (Q - base)         : %10.6f\n", ppl - bppl);
        printf("Mean ln(PPL(Q)/PPL(base))    : %10.6f\n", mean - bm);
        printf("Mean    KLD                  : %12.8f +/- %12.8f\n", km, n > 1 && kv > 0 ? sqrt(kv / (n - 1)) : 0.0);
        printf("Maximum KLD                  : %12.8f\n", P->kl_max);
        printf("99.0%%   KLD                  : %12.8f\n", score_percentile(P->kls, (size_t)n, 0.99));
        printf("Median  KLD                  : %12.8f\n", score_percentile(P->kls, (size_t)n, 0.5));
        printf("Same top p                   : %7.3f +/- %5.3f %%\n", 100 * ps, n > 1 ? 100 * sqrt(ps * (1 - ps) / (n - 1)) : 0.0);
    }
    if (P->kl_base) {
        FILE *f = P->kf.f; P->kf.f = NULL;
        if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f)) { fprintf(stderr, "bitnet perplexity: --kl-base %s: write failed\n", P->tmpname); return 1; }
        if (rename(P->tmpname, P->kl_base)) { fprintf(stderr, "bitnet perplexity: --kl-base %s: cannot rename into place (%s)\n", P->kl_base, strerror(errno)); return 1; }
        free(P->tmpname); P->tmpname = NULL;
        fprintf(stderr, "perplexity: wrote the KL base (top-%d log-probs of %ld tokens) to %s\n", P->topk, A.count, P->kl_base);
    }
    return 0;
}

static void ppl_free(ppl_run *P) {
    if (P->kf.f) fclose(P->kf.f);
    if (P->tmpname) { unlink(P->tmpname); free(P->tmpname); }
    free(P->kf.rec); free(P->kls); free(P->kids); free(P->klp); free(P->out); free(P->tmp); free(P->buf);
    free(P->batch.tok); free(P->batch.pos); free(P->batch.seq); free(P->batch.logits); free(P->glen); free(P->gfrom); free(P->toks); free(P->kltoks);
    bitnet_ctx_free(P->c); bitnet_tokenizer_free(P->tok); bitnet_model_free(P->m);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *tokfile = NULL, *kl_base = NULL, *kl_in = NULL, *head = "exact";
    const char *kl_llama = NULL;
    int kl_cmp = 0;
    int n_ctx = 0, stride = 0, nbatch = 2048, threads = 1, max_chunks = 0, topk = 64, force = 0;
    const arg_opt opts[] = {
        OPT_STR('m', "model", &model, "DIR", "model folder"),
        OPT_STR('f', "file", &file, "TEXT", "text file, tokenized with the model's tokenizer (BOS first)"),
        OPT_STR(0, "tokens", &tokfile, "FILE.u32", "uint32 token file (bitnet tokenize-file), used as is"),
        OPT_INT('c', "ctx-size", 0, 1 << 20, &n_ctx, "CTX", "chunk / window length in tokens, default 512"),
        OPT_INT(0, "stride|ppl-stride", 0, 1 << 20, &stride, "S", "Hugging Face's sliding window every S tokens (0: chunked method)"),
        OPT_INT('b', "batch-size", 1, 1 << 24, &nbatch, "N", "tokens per call: below CTX a chunk takes several calls; N >= CTX puts N/CTX chunks in one call"),
        OPT_INT(0, "chunks", 0, 1 << 24, &max_chunks, "N", "only the first N chunks or windows (0: all)"),
        OPT_CHOICE(0, "head", &head, "exact|q8|q4", "LM head representation"),
        OPT_INT('t', "threads", 1, 512, &threads, "N", "threads"),
        OPT_END,
    };
    const arg_opt klopts[] = {
        OPT_STR(0, "kl-base", &kl_base, "OUT", "save this run's top-K log-probs of every scored token"),
        OPT_INT(0, "kl-topk", 0, 1 << 24, &topk, "K", "K for --kl-base (0: the whole vocabulary)"),
        OPT_FLAG(0, "force", &force, "overwrite an existing --kl-base file"),
        OPT_STR(0, "kl", &kl_in, "BASE", "compare this run against BASE: KL, top-1 agreement, PPL difference"),
        OPT_STR(0, "kl-divergence-base", &kl_llama, "FILE", "llama.cpp's spelling: alone = --kl-base FILE"),
        OPT_FLAG(0, "kl-divergence", &kl_cmp, "llama.cpp's spelling: with --kl-divergence-base FILE = --kl FILE"),
        OPT_END,
    };
    args_spec spec = {"perplexity",
        "usage: bitnet perplexity -m MODEL (-f TEXT | --tokens FILE.u32) [-c CTX] [--stride S] [-b BATCH]\n"
        "                         [--chunks N] [--head exact|q8|q4] [-t N]\n"
        "                         [--kl-base OUT [--kl-topk K] [--force] | --kl BASE]\n"
        "  Perplexity by llama-perplexity's method: chunks of CTX tokens from BOS, the second half of each\n"
        "  scored; prints [i]PPL per chunk and 'Final estimate: PPL = X +/- Y'. --stride: Hugging Face's\n"
        "  sliding window instead. --kl BASE carries its tokens, so -f is optional there.\n",
        {opts, klopts}, {"options", "KL divergence"}, 0};
    int r = args_parse(&spec, argc, argv, NULL, NULL);
    if (r != ARGS_OK) return r == ARGS_HELP ? 0 : 2;
    int ctx_set = n_ctx != 0;
    if (!n_ctx) n_ctx = 512;
    if (n_ctx < 4) return args_error(&spec, "-c needs at least 4 tokens"), 2;
    if (kl_cmp && !kl_llama) { fprintf(stderr, "bitnet perplexity: --kl-divergence needs --kl-divergence-base FILE (or use --kl FILE)\n"); return 2; }
    if (kl_llama) { if (kl_cmp) kl_in = kl_llama; else kl_base = kl_llama; }
    bitnet_head_type ht = BITNET_HEAD_EXACT;
    if (!strcmp(head, "q8")) ht = BITNET_HEAD_Q8;
    else if (!strcmp(head, "q4")) ht = BITNET_HEAD_Q4;
    if (!model) { fprintf(stderr, "bitnet perplexity: need -m MODEL\n"); return 2; }
    if (!file && !tokfile && !kl_in) { fprintf(stderr, "bitnet perplexity: need -f TEXT or --tokens FILE.u32 (or --kl BASE)\n"); return 2; }
    if (file && tokfile) { fprintf(stderr, "bitnet perplexity: give -f or --tokens, not both\n"); return 2; }
    if (kl_base && kl_in) { fprintf(stderr, "bitnet perplexity: give --kl-base or --kl, not both\n"); return 2; }
    if (stride && (kl_base || kl_in)) { fprintf(stderr, "bitnet perplexity: the KL mode uses the chunked method; drop --stride\n"); return 2; }
    if (kl_base && !force && access(kl_base, F_OK) == 0) {
        fprintf(stderr, "bitnet perplexity: --kl-base %s exists; pass --force to overwrite it\n", kl_base); return 1; }

    ppl_run P = {.model = model, .file = file, .tokfile = tokfile, .kl_base = kl_base, .kl_in = kl_in, .head = head,
                 .n_ctx = n_ctx, .ctx_set = ctx_set, .stride = stride, .nbatch = nbatch, .threads = threads,
                 .max_chunks = max_chunks, .topk = topk, .bos = -1};
    int rc = ppl_load(&P, ht);
    if (!rc) rc = ppl_plan(&P);
    if (!rc) {
        fprintf(stderr, "perplexity: %s method, %d tokens, %d %s of %d, batch %d (%d per call), head %s, %d thread%s\n",
                stride ? "sliding-window" : "chunked (llama-perplexity)", P.n_tok, P.n_chunk, stride ? "windows" : "chunks",
                P.n_ctx, P.nseq > 1 ? P.nseq * P.n_ctx : P.nb, P.nseq, head, threads, threads > 1 ? "s" : "");
        double t0 = cli_time();
        rc = ppl_chunks(&P, t0);
        if (!rc) rc = ppl_report(&P, cli_time() - t0);
    }
    ppl_free(&P);
    return rc;
}
