/* model.c — inference contexts and the forward pass: embeddings, BitLinear layers, RoPE,
 * attention over per-sequence KV caches, and the LM head, as plain loops of backend ops
 * (src/backend/backend.h; see tests/golden/README.md for the math).
 * A context holds n_seq sequences; a batch mixes tokens of several of them, and each op serves
 * all tokens of a chunk of up to nmax batch entries at once (one weight pass), while attention
 * runs per sequence on its own cache. Prefill and decode are the same code.
 * Not: a sampler, a scheduler of requests, or code that touches weight or activation bytes
 * (only the backend does). */
#include "model/model.h"
#include "arch/arch.h"
#include "core/threads.h"
#include <math.h>

struct bitnet_ctx {
    const bitnet_model *m;
    const bn_backend *be;
    bn_exec *ex;
    int n_ctx, n_seq, nmax;
    int *seq_pos;   /* [n_seq] tokens in each sequence's cache */
    int *next, *end; /* [n_seq] scratch: positions while a batch runs, and where it ends */
    int32_t *cpos, *cseq, *cids; /* [nmax] positions, sequences and ids of one chunk (host) */
    /* activations, device buffers from be->buf_new, for nmax rows */
    float *x;     /* [nmax][dim]  residual stream */
    float *xb;    /* [nmax][max(dim, q_dim, ffn)]  normed input of a BitLinear */
    float *q;     /* [nmax][max(q_dim, dim)] queries, then BitLinear outputs */
    float *k, *v; /* [nmax][kv_dim] */
    float *att;   /* [nmax][q_dim] attention output */
    float *hg, *hu; /* [nmax][ffn] */
    float *glog; size_t glog_n; /* greedy without a backend argmax: host logits scratch */
};

/* First index of the largest of v[0..n) (v finite). */
static int32_t argmax_row(const float *v, int n) { int32_t b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

/* Forward the n (<= nmax) tokens c->cids of sequences c->cseq at positions c->cpos; k/v go into
 * the caches. nl rows of logits (host, [nl][vocab]) for the entries listed in lrow[nl], or none
 * when logits is NULL; with greedy non-NULL, their argmax ids greedy[nl] instead (logits unused).
 * Returns BITNET_ERR_NUMERIC if the hidden state or logits are not finite. */
static bitnet_status forward(bitnet_ctx *c, int n, const int *lrow, int nl, float *logits, int32_t *greedy) {
    const bitnet_model *m = c->m;
    const bn_backend *be = c->be;
    bn_exec *ex = c->ex;
    const bn_config *cf = &m->cfg;
    int dim = cf->hidden_size, qd = cf->n_heads * cf->head_dim, ffn = cf->intermediate_size;
    float eps = cf->norm_eps;
    be->embed(ex, c->cids, n, c->x);
    for (int l = 0; l < cf->n_layers; l++) {
        const bn_layer *L = &m->layers[l];
        /* attention block */
        be->rmsnorm(ex, c->xb, c->x, L->attn_norm, n, dim, eps);
        const bn_tmat *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *yqkv[3] = {c->q, c->k, c->v};
        be->bitlinear(ex, c->xb, n, 3, wqkv, yqkv);
        if (m->lora) bn_lora_after(m, l, (const int[]){BN_S_Q, BN_S_K, BN_S_V}, 3, c->xb, n, yqkv);   /* LoRA: q, k, v */
        be->rope(ex, c->q, n, cf->n_heads, c->cpos);
        be->rope(ex, c->k, n, cf->n_kv_heads, c->cpos);
        be->attention(ex, l, c->q, c->k, c->v, n, c->cseq, c->cpos, c->att);
        be->rmsnorm(ex, c->att, c->att, L->attn_sub_norm, n, qd, eps);
        const bn_tmat *wo[1] = {&L->wo};
        be->bitlinear(ex, c->att, n, 1, wo, &c->q);
        if (m->lora) bn_lora_after(m, l, (const int[]){BN_S_O}, 1, c->att, n, &c->q);       /* o */
        be->add(ex, c->x, c->q, (size_t)n * dim);
        /* feed-forward block */
        be->rmsnorm(ex, c->xb, c->x, L->ffn_norm, n, dim, eps);
        const bn_tmat *wgu[2] = {&L->wgate, &L->wup};
        float *ygu[2] = {c->hg, c->hu};
        be->bitlinear(ex, c->xb, n, 2, wgu, ygu);
        if (m->lora) bn_lora_after(m, l, (const int[]){BN_S_GATE, BN_S_UP}, 2, c->xb, n, ygu);       /* gate, up */
        be->glu(ex, c->hg, c->hu, (size_t)n * ffn, cf->act);
        be->rmsnorm(ex, c->hg, c->hg, L->ffn_sub_norm, n, ffn, eps);
        const bn_tmat *wd[1] = {&L->wdown};
        be->bitlinear(ex, c->hg, n, 1, wd, &c->q);
        if (m->lora) bn_lora_after(m, l, (const int[]){BN_S_DOWN}, 1, c->hg, n, &c->q);       /* down */
        be->add(ex, c->x, c->q, (size_t)n * dim);
    }
    bitnet_status bs = be->status ? be->status(ex) : BITNET_OK;
    if (bs) return bs;
    if (!be->finite(ex, c->x, (size_t)n * dim)) return bn_err(BITNET_ERR_NUMERIC, "the hidden state became non-finite (NaN or inf)");
    if ((!logits && !greedy) || !nl) return BITNET_OK;
    for (int r = 0; r < nl; r++) be->rmsnorm(ex, c->xb + (size_t)r * dim, c->x + (size_t)lrow[r] * dim, m->final_norm, 1, dim, eps);
    if (greedy && be->head_argmax) {
        int fin = be->head_argmax(ex, c->xb, nl, greedy);
        if (be->status && (bs = be->status(ex))) return bs;
        return fin ? BITNET_OK : bn_err(BITNET_ERR_NUMERIC, "the logits became non-finite (NaN or inf)");
    }
    if (greedy) {  /* host logits, then the argmax below */
        size_t need = (size_t)nl * cf->vocab_size;
        if (need > c->glog_n) {
            float *g = realloc(c->glog, need * sizeof(float));
            if (!g) return bn_err(BITNET_ERR_NOMEM, "out of memory");
            c->glog = g; c->glog_n = need;
        }
        logits = c->glog;
    }
    be->head(ex, c->xb, nl, logits);
    if (be->status && (bs = be->status(ex))) return bs;
    /* logits are host memory: check them here */
    size_t cnt = (size_t)nl * cf->vocab_size;
    float z = 0.f;
#pragma omp simd reduction(+ : z)
    for (size_t i = 0; i < cnt; i++) z += logits[i] * 0.f;
    if (z != 0.f) return bn_err(BITNET_ERR_NUMERIC, "the logits became non-finite (NaN or inf)");
    if (greedy) for (int r = 0; r < nl; r++) greedy[r] = argmax_row(logits + (size_t)r * cf->vocab_size, cf->vocab_size);
    return BITNET_OK;
}

bitnet_ctx_params bitnet_ctx_default_params(void) {
    bitnet_ctx_params p = {.n_ctx = 0, .n_threads = 0, .n_seq_max = 0, .kv_type = BITNET_KV_F16};
    return p;
}

bitnet_status bitnet_ctx_new(const bitnet_model *m, const bitnet_ctx_params *p, bitnet_ctx **out) {
    *out = NULL;
    const bn_config *cf = &m->cfg;
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (cf->max_pos < 4096 ? cf->max_pos : 4096);
    int nt = p && p->n_threads > 0 ? p->n_threads : bn_physical_cores();
    int ns = p && p->n_seq_max > 0 ? p->n_seq_max : 1;
    if (n_ctx > cf->max_pos) return bn_err(BITNET_ERR_ARG, "context %d exceeds the model's max_position_embeddings %d", n_ctx, cf->max_pos);
    if (ns > 65536) return bn_err(BITNET_ERR_ARG, "n_seq_max %d is more than 65536 sequences", ns);
    int kvt = p ? p->kv_type : BITNET_KV_F16;
    if (kvt != BITNET_KV_F16 && kvt != BITNET_KV_F32) return bn_err(BITNET_ERR_ARG, "unknown KV cache type %d (BITNET_KV_F16 or BITNET_KV_F32)", kvt);
    bitnet_ctx *c = calloc(1, sizeof *c);
    if (!c) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    c->m = m; c->be = m->be; c->n_ctx = n_ctx; c->n_seq = ns;
    long long tot = (long long)n_ctx * ns; /* a batch can hold at most this many entries */
    c->nmax = tot < 256 ? (int)tot : 256;
    bn_exec_shape sh = {n_ctx, ns, c->nmax, nt, kvt};
    bitnet_status s = c->be->exec_new(m, &sh, &c->ex);
    if (s) { free(c); return s; }
    int dim = cf->hidden_size, hd = cf->head_dim, qd = cf->n_heads * hd, kvd = cf->n_kv_heads * hd, ffn = cf->intermediate_size;
    int wide = dim > qd ? dim : qd; if (ffn > wide) wide = ffn;
    size_t N = (size_t)c->nmax;
    c->seq_pos = calloc((size_t)ns, sizeof(int)); c->next = calloc((size_t)ns, sizeof(int)); c->end = calloc((size_t)ns, sizeof(int));
    c->cpos = calloc(N, 4); c->cseq = calloc(N, 4); c->cids = calloc(N, 4);
    c->x = c->be->buf_new(c->ex, N * dim); c->xb = c->be->buf_new(c->ex, N * wide);
    c->q = c->be->buf_new(c->ex, N * (qd > dim ? qd : dim)); c->att = c->be->buf_new(c->ex, N * qd);
    c->k = c->be->buf_new(c->ex, N * kvd); c->v = c->be->buf_new(c->ex, N * kvd);
    c->hg = c->be->buf_new(c->ex, N * ffn); c->hu = c->be->buf_new(c->ex, N * ffn);
    if (!c->seq_pos || !c->next || !c->end || !c->cpos || !c->cseq || !c->cids || !c->x || !c->xb || !c->q || !c->att ||
        !c->k || !c->v || !c->hg || !c->hu) {
        bitnet_ctx_free(c);
        return bn_err(BITNET_ERR_NOMEM, "out of memory for a context of %d x %d tokens", ns, n_ctx);
    }
    *out = c;
    return BITNET_OK;
}

void bitnet_ctx_free(bitnet_ctx *c) {
    if (!c) return;
    float *bufs[] = {c->x, c->xb, c->q, c->att, c->k, c->v, c->hg, c->hu};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) c->be->buf_free(c->ex, bufs[i]);
    c->be->exec_free(c->ex);
    free(c->glog);
    free(c->seq_pos); free(c->next); free(c->end); free(c->cpos); free(c->cseq); free(c->cids);
    free(c);
}

void bitnet_ctx_reset(bitnet_ctx *c) { memset(c->seq_pos, 0, (size_t)c->n_seq * sizeof(int)); }
int bitnet_ctx_pos(const bitnet_ctx *c) { return c->seq_pos[0]; }
int bitnet_ctx_seq_pos(const bitnet_ctx *c, int seq) { return seq >= 0 && seq < c->n_seq ? c->seq_pos[seq] : -1; }

bitnet_status bitnet_ctx_seq_truncate(bitnet_ctx *c, int seq, int pos) {
    if (seq < 0 || seq >= c->n_seq) return bn_err(BITNET_ERR_ARG, "sequence %d outside [0, %d)", seq, c->n_seq);
    if (pos < 0 || pos > c->seq_pos[seq]) return bn_err(BITNET_ERR_ARG, "truncate sequence %d to %d outside [0, %d]", seq, pos, c->seq_pos[seq]);
    c->seq_pos[seq] = pos;
    return BITNET_OK;
}

bitnet_status bitnet_ctx_seq_copy(bitnet_ctx *c, int src, int dst) {
    if (src < 0 || src >= c->n_seq || dst < 0 || dst >= c->n_seq)
        return bn_err(BITNET_ERR_ARG, "copy sequence %d to %d: sequences are [0, %d)", src, dst, c->n_seq);
    if (src == dst) return BITNET_OK;
    if (!c->be->kv_copy) return bn_err(BITNET_ERR_UNSUPPORTED, "the %s backend cannot copy a sequence", c->be->name);
    if (c->seq_pos[src] > 0) c->be->kv_copy(c->ex, src, dst, c->seq_pos[src]);
    c->seq_pos[dst] = c->seq_pos[src];
    return c->be->status ? c->be->status(c->ex) : BITNET_OK;
}

bitnet_status bitnet_ctx_truncate(bitnet_ctx *c, int pos) { return bitnet_ctx_seq_truncate(c, 0, pos); }

/* Check the whole batch against the caches (see bitnet.h); touches only c->next (left holding
 * each sequence's position after the batch). */
static bitnet_status check_batch(bitnet_ctx *c, const bitnet_batch *b) {
    const bn_config *cf = &c->m->cfg;
    if (!b || b->n <= 0 || !b->token) return bn_err(BITNET_ERR_ARG, "empty batch (no tokens to evaluate)");
    memcpy(c->next, c->seq_pos, (size_t)c->n_seq * sizeof(int));
    for (int i = 0; i < b->n; i++) {
        int id = b->token[i], s = b->seq_id ? b->seq_id[i] : 0;
        if (id < 0 || id >= cf->vocab_size)
            return bn_err(BITNET_ERR_ARG, "token id %d at index %d is out of the vocabulary [0, %d)", id, i, cf->vocab_size);
        if (s < 0 || s >= c->n_seq)
            return bn_err(BITNET_ERR_ARG, "sequence id %d at index %d is outside [0, %d)", s, i, c->n_seq);
        if (b->pos && b->pos[i] != c->next[s])
            return bn_err(BITNET_ERR_ARG, "position %d at index %d: sequence %d continues at position %d", b->pos[i], i, s, c->next[s]);
        if (c->next[s] >= c->n_ctx)
            return bn_err(BITNET_ERR_ARG, "context full: sequence %d holds %d tokens, the batch adds %d more, the context is %d",
                          s, c->seq_pos[s], c->next[s] - c->seq_pos[s] + 1, c->n_ctx);
        c->next[s]++;
    }
    return BITNET_OK;
}

/* Run a batch that check_batch accepted (c->next holds each sequence's end) in chunks of nmax
 * entries. Logits rows: every entry when all, else those flagged (b->logits), else the last
 * entry of each sequence. Positions are committed only when every chunk succeeded. */
static bitnet_status run_batch(bitnet_ctx *c, const bitnet_batch *b, float *logits, int all, int32_t *greedy) {
    size_t V = (size_t)c->m->cfg.vocab_size;
    int lrow[256]; /* nmax <= 256 */
    memcpy(c->end, c->next, (size_t)c->n_seq * sizeof(int));
    memcpy(c->next, c->seq_pos, (size_t)c->n_seq * sizeof(int));
    size_t row = 0;
    for (int done = 0; done < b->n; ) {
        int n = b->n - done < c->nmax ? b->n - done : c->nmax, nl = 0;
        for (int t = 0; t < n; t++) {
            int i = done + t, s = b->seq_id ? b->seq_id[i] : 0;
            c->cids[t] = b->token[i]; c->cseq[t] = s; c->cpos[t] = c->next[s]++;
            int want = all || (b->logits ? b->logits[i] != 0 : c->next[s] == c->end[s]);
            if ((logits || greedy) && want) lrow[nl++] = t;
        }
        bitnet_status st = forward(c, n, lrow, nl, logits ? logits + row * V : NULL, greedy ? greedy + row : NULL);
        if (st) return st;
        row += (size_t)nl;
        done += n;
    }
    memcpy(c->seq_pos, c->next, (size_t)c->n_seq * sizeof(int));
    return BITNET_OK;
}

bitnet_status bitnet_ctx_decode(bitnet_ctx *c, const bitnet_batch *b, float *logits) {
    bitnet_status s = check_batch(c, b);
    return s ? s : run_batch(c, b, logits, 0, NULL);
}

bitnet_status bitnet_ctx_decode_greedy(bitnet_ctx *c, const bitnet_batch *b, int32_t *next) {
    bitnet_status s = check_batch(c, b);
    return s ? s : run_batch(c, b, NULL, 0, next);
}

bitnet_status bitnet_ctx_eval(bitnet_ctx *c, const int32_t *ids, int n, float *logits, int all_logits) {
    bitnet_batch b = {n, ids, NULL, NULL, NULL};
    bitnet_status s = check_batch(c, &b);
    return s ? s : run_batch(c, &b, logits, all_logits, NULL);
}

bitnet_status bitnet_ctx_eval_greedy(bitnet_ctx *c, const int32_t *ids, int n, int32_t *next) {
    bitnet_batch b = {n, ids, NULL, NULL, NULL};
    bitnet_status s = check_batch(c, &b);
    return s ? s : run_batch(c, &b, NULL, 0, next);
}
