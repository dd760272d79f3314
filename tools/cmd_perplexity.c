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
 * What it is not: a batched evaluator yet — chunks run one after another through
 * bitnet_ctx_eval; the multi-sequence batch API (bitnet_ctx_decode) would put -b/CTX chunks in
 * one call (see eval_chunk). */
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
 * logits go to out[(n - from)][vocab] (tmp: float[nb][vocab]). 0 or 1 (message printed).
 * Batching plugs in here: with bitnet_ctx_decode several chunks would share one call. */
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
        OPT_INT('b', "batch-size", 1, 1 << 24, &nbatch, "N", "tokens per evaluation call (at most CTX used)"),
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

    int rc = 1;
    bitnet_model *m = NULL; bitnet_ctx *c = NULL; bitnet_tokenizer *tok = NULL;
    int32_t *toks = NULL, *kltoks = NULL, *buf = NULL;
    float *out = NULL, *tmp = NULL;
    double *kls = NULL;
    uint32_t *kids = NULL; float *klp = NULL;  /* one top-k row */
    klfile kf = {0};
    char *tmpname = NULL;
    int n_tok = 0, bos = -1;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.head = ht;
    if (bitnet_model_load_ex(model, &mp, &m)) { rc = cli_fail("cannot load the model"); goto done; }
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    const int V = info.vocab_size;
    bos = info.bos_id;
    if (file) {
        if (bitnet_tokenizer_load(model, &tok)) { rc = cli_fail("cannot load the tokenizer"); goto done; }
        if (bitnet_tokenizer_bos(tok) >= 0) bos = bitnet_tokenizer_bos(tok);
        size_t len = 0;
        char *text = read_all(file, &len);
        if (!text) { fprintf(stderr, "bitnet perplexity: %s: cannot read (%s)\n", file, strerror(errno)); goto done; }
        double t0 = cli_time();
        bitnet_status st = bitnet_tokenizer_encode(tok, text, len, bos >= 0, &toks, &n_tok);
        free(text);
        if (st) { rc = cli_fail("tokenize"); goto done; }
        fprintf(stderr, "perplexity: tokenized %s: %zu bytes -> %d tokens in %.2f s\n", file, len, n_tok, cli_time() - t0);
        for (int i = 0; i < n_tok; i++)
            if (toks[i] < 0 || toks[i] >= V) { fprintf(stderr, "bitnet perplexity: tokenizer id %d is outside the model's vocabulary of %d\n", toks[i], V); goto done; }
    } else if (tokfile) {
        n_tok = read_tokens(tokfile, V, &toks);
        if (n_tok < 0) goto done;
    }
    int n_chunk = 0, first = 0, nscore = 0;
    if (kl_in) {
        int fctx, fchunk, fbos;
        if (kl_open_read(&kf, kl_in, V, &fctx, &fchunk, &fbos, &kltoks)) goto done;
        if (ctx_set && fctx != n_ctx) { fprintf(stderr, "bitnet perplexity: --kl %s was made with -c %d, not %d\n", kl_in, fctx, n_ctx); goto done; }
        if (toks) {
            if (n_tok < fctx * fchunk || memcmp(toks, kltoks, (size_t)fctx * fchunk * sizeof *toks)) {
                fprintf(stderr, "bitnet perplexity: --kl %s was made from other tokens than %s gives; drop -f/--tokens or use the same text\n",
                        kl_in, file ? file : tokfile);
                goto done;
            }
        }
        if (fbos != bos) { fprintf(stderr, "bitnet perplexity: --kl %s: made with BOS %d, this model's is %d\n", kl_in, fbos, bos); goto done; }
        free(toks); toks = kltoks; kltoks = NULL;
        n_ctx = fctx; n_chunk = fchunk; n_tok = fctx * fchunk;
        if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
        topk = kf.topk;
    }
    if (n_ctx > info.max_seq_len) { fprintf(stderr, "bitnet perplexity: -c %d exceeds the model's context of %d\n", n_ctx, info.max_seq_len); goto done; }
    if (stride) {
        if (n_tok <= n_ctx) { fprintf(stderr, "bitnet perplexity: %d tokens are not enough for a window of %d (need more than -c)\n", n_tok, n_ctx); goto done; }
        n_chunk = 0;
        for (int b = 0, prev = 0; prev < n_tok; b += stride) { int e = b + n_ctx < n_tok ? b + n_ctx : n_tok; n_chunk++; prev = e; }
        first = 0; nscore = 0;
    } else {
        if (!kl_in && n_tok < 2 * n_ctx) {
            fprintf(stderr, "bitnet perplexity: you need at least %d tokens to evaluate perplexity with a context of %d; "
                    "the text gives only %d\n", 2 * n_ctx, n_ctx, n_tok);
            goto done;
        }
        if (!kl_in) n_chunk = n_tok / n_ctx;
        first = n_ctx / 2; nscore = n_ctx - first - 1;
    }
    if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    if (topk == 0 || topk > V) topk = V;
    int nb = nbatch < n_ctx ? nbatch : n_ctx;
    bitnet_ctx_params cp = {.n_ctx = n_ctx, .n_threads = threads};
    if (bitnet_ctx_new(m, &cp, &c)) { rc = cli_fail("context"); goto done; }
    out = malloc((size_t)n_ctx * V * sizeof *out);
    tmp = malloc((size_t)nb * V * sizeof *tmp);
    buf = malloc((size_t)n_ctx * sizeof *buf);
    kids = malloc((size_t)topk * sizeof *kids); klp = malloc((size_t)topk * sizeof *klp);
    if (!out || !tmp || !buf || !kids || !klp) { fprintf(stderr, "bitnet perplexity: out of memory for %d x %d logits\n", n_ctx, V); goto done; }
    if (kl_base) {
        kf.topk = topk; kf.rec_len = 8 + 8 * (size_t)topk; kf.path = kl_base;
        kf.rec = malloc(kf.rec_len);
        tmpname = malloc(strlen(kl_base) + 16);
        if (!kf.rec || !tmpname) { fprintf(stderr, "bitnet perplexity: out of memory\n"); goto done; }
        sprintf(tmpname, "%s.tmp%d", kl_base, (int)getpid());
        kf.f = fopen(tmpname, "wb");
        if (!kf.f) { fprintf(stderr, "bitnet perplexity: --kl-base %s: cannot write (%s)\n", tmpname, strerror(errno)); goto done; }
        unsigned char h[KL_HDR];
        memcpy(h, KL_MAGIC, 8);
        put32(h + 8, (uint32_t)V); put32(h + 12, (uint32_t)n_ctx); put32(h + 16, (uint32_t)n_chunk);
        put32(h + 20, (uint32_t)topk); put32(h + 24, (uint32_t)first); put32(h + 28, bos >= 0 ? (uint32_t)bos : 0xffffffffu);
        fwrite(h, 1, KL_HDR, kf.f);
        for (size_t i = 0; i < (size_t)n_chunk * n_ctx; i++) { unsigned char b4[4]; put32(b4, (uint32_t)toks[i]); fwrite(b4, 1, 4, kf.f); }
    }
    if (kl_in) {
        kls = malloc((size_t)n_chunk * nscore * sizeof *kls);
        if (!kls) { fprintf(stderr, "bitnet perplexity: out of memory\n"); goto done; }
    }
    fprintf(stderr, "perplexity: %s method, %d tokens, %d %s of %d, batch %d, head %s, %d thread%s\n",
            stride ? "sliding-window" : "chunked (llama-perplexity)", n_tok, n_chunk, stride ? "windows" : "chunks",
            n_ctx, nb, head, threads, threads > 1 ? "s" : "");

    acc_t A = {0};
    /* KL sums */
    double b_nll = 0, b_nll2 = 0, kl_sum = 0, kl_sum2 = 0, kl_max = 0;
    long same_top = 0, nkl = 0;
    int tty = isatty(2) && !isatty(1);
    double t0 = cli_time();
    long evaluated = 0;
    for (int ci = 0, prev_end = 0; ci < n_chunk; ci++) {
        int start, len, from, tstart;  /* window tokens [start, start+len); scored rows [from, len-1) */
        if (stride) {
            start = ci * stride;
            len = start + n_ctx < n_tok ? n_ctx : n_tok - start;
            int end = start + len;
            tstart = prev_end > start + 1 ? prev_end : start + 1;  /* first target (absolute) */
            from = tstart - 1 - start;
            prev_end = end;
            memcpy(buf, toks + start, (size_t)len * sizeof *buf);
        } else {
            start = ci * n_ctx; len = n_ctx; from = first;
            memcpy(buf, toks + start, (size_t)len * sizeof *buf);
            if (bos >= 0) buf[0] = bos;  /* llama-perplexity: BOS first in every chunk */
        }
        if (eval_chunk(c, buf, len, nb, from, V, out, tmp)) goto done;
        evaluated += len;
        for (int j = from; j < len - 1; j++) {
            const float *row = out + (size_t)(j - from) * V;
            int target = toks[start + j + 1];
            double lse = score_logsumexp(row, V);
            double v = score_nll(row, lse, target);
            if (!isfinite(v)) { fprintf(stderr, "bitnet perplexity: non-finite logits in chunk %d\n", ci + 1); goto done; }
            A.nll += v; A.nll2 += v * v; A.count++;
            if (kl_base) {
                memcpy(kf.rec, &v, 8);
                score_topk(row, V, lse, topk, kids, klp);
                for (int q = 0; q < topk; q++) put32(kf.rec + 8 + 4 * (size_t)q, kids[q]);
                memcpy(kf.rec + 8 + 4 * (size_t)topk, klp, 4 * (size_t)topk);
                if (fwrite(kf.rec, 1, kf.rec_len, kf.f) != kf.rec_len) { fprintf(stderr, "bitnet perplexity: --kl-base %s: write failed\n", tmpname); goto done; }
            }
            if (kl_in) {
                if (fread(kf.rec, 1, kf.rec_len, kf.f) != kf.rec_len) { fprintf(stderr, "bitnet perplexity: --kl %s: read failed\n", kl_in); goto done; }
                double bn; memcpy(&bn, kf.rec, 8);
                uint32_t *ids = kids; float *lp = klp;
                for (int q = 0; q < topk; q++) { ids[q] = get32(kf.rec + 8 + 4 * (size_t)q); if (ids[q] >= (uint32_t)V) { fprintf(stderr, "bitnet perplexity: --kl %s: corrupt record (id %u)\n", kl_in, ids[q]); goto done; } }
                memcpy(lp, kf.rec + 8 + 4 * (size_t)topk, 4 * (size_t)topk);
                if (!isfinite(bn)) { fprintf(stderr, "bitnet perplexity: --kl %s: corrupt record (nll)\n", kl_in); goto done; }
                double kl = score_kl_topk(ids, lp, topk, row, lse);
                b_nll += bn; b_nll2 += bn * bn;
                kl_sum += kl; kl_sum2 += kl * kl; if (kl > kl_max) kl_max = kl;
                kls[nkl++] = kl;
                same_top += score_argmax(row, V) == (int)ids[0];
            }
        }
        printf("[%d]%.4f,", ci + 1, exp(A.nll / A.count));
        fflush(stdout);
        double el = cli_time() - t0, per = el / (ci + 1);
        if (ci == 0) {
            int tot = (int)(per * n_chunk);
            fprintf(stderr, "perplexity: %.2f seconds per pass - ETA ", per);
            if (tot >= 3600) fprintf(stderr, "%d hours ", tot / 3600);
            fprintf(stderr, "%.2f minutes\n", (tot % 3600) / 60.0);
        }
        if (tty) fprintf(stderr, "\rperplexity: %d/%d, %.0f tokens/s, ETA %.0f s   ", ci + 1, n_chunk, evaluated / el, per * (n_chunk - ci - 1));
    }
    printf("\n");
    double el = cli_time() - t0;
    if (tty) fprintf(stderr, "\r%60s\r", "");
    double mean = A.nll / A.count, ppl = exp(mean), var = A.nll2 / A.count - mean * mean;
    if (A.count > 1 && var > 0) printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sqrt(var / (A.count - 1)) * ppl);
    else printf("Final estimate: PPL = %.4f +/- nan\n", ppl);
    fprintf(stderr, "perplexity: %ld tokens scored, %ld evaluated in %.2f s (%.1f tokens/s)\n", A.count, evaluated, el, evaluated / el);
    if (kl_in) {
        long n = nkl;
        double bm = b_nll / n, bppl = exp(bm);
        double km = kl_sum / n, kv = kl_sum2 / n - km * km;
        double ps = (double)same_top / n;
        /* ln(PPL(Q)/PPL(base)) = mean(nll_q - nll_base) */
        printf("KL divergence against %s (%ld tokens, base top-%d of %d):\n", kl_in, n, topk, V);
        printf("Mean PPL(Q)                  : %10.6f\n", ppl);
        printf("Mean PPL(base)               : %10.6f\n", bppl);
        printf("Delta PPL (Q - base)         : %10.6f\n", ppl - bppl);
        printf("Mean ln(PPL(Q)/PPL(base))    : %10.6f\n", mean - bm);
        printf("Mean    KLD                  : %12.8f +/- %12.8f\n", km, n > 1 && kv > 0 ? sqrt(kv / (n - 1)) : 0.0);
        printf("Maximum KLD                  : %12.8f\n", kl_max);
        printf("99.0%%   KLD                  : %12.8f\n", score_percentile(kls, (size_t)n, 0.99));
        printf("Median  KLD                  : %12.8f\n", score_percentile(kls, (size_t)n, 0.5));
        printf("Same top p                   : %7.3f +/- %5.3f %%\n", 100 * ps, n > 1 ? 100 * sqrt(ps * (1 - ps) / (n - 1)) : 0.0);
    }
    if (kl_base) {
        FILE *f = kf.f; kf.f = NULL;
        if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f)) { fprintf(stderr, "bitnet perplexity: --kl-base %s: write failed\n", tmpname); goto done; }
        if (rename(tmpname, kl_base)) { fprintf(stderr, "bitnet perplexity: --kl-base %s: cannot rename into place (%s)\n", kl_base, strerror(errno)); goto done; }
        free(tmpname); tmpname = NULL;
        fprintf(stderr, "perplexity: wrote the KL base (top-%d log-probs of %ld tokens) to %s\n", topk, A.count, kl_base);
    }
    rc = 0;
done:
    if (kf.f) fclose(kf.f);
    if (tmpname) { unlink(tmpname); free(tmpname); }
    free(kf.rec); free(kls); free(kids); free(klp); free(out); free(tmp); free(buf); free(toks); free(kltoks);
    bitnet_ctx_free(c); bitnet_tokenizer_free(tok); bitnet_model_free(m);
    return rc;
}
