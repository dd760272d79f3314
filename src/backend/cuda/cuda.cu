/* cuda.cu — the CUDA backend (src/backend/backend.h) on the kernels of bn_cuda.h.
 * Ternary weights are uploaded once at load in the cu2 layout (2 bits per weight, device memory
 * only; no host or fp16 copy is kept). An execution state holds one stream, the KV cache
 * ([n_seq][n_layers][n_ctx][kv_dim] float32), RoPE tables made exactly as the CPU backend makes
 * them, scratch, and device mirrors of what the model keeps in host memory (norm weights, the
 * embedding and the head in the model's current head type). Ops are asynchronous on the stream;
 * finite() and head() wait for it. A failing op records its error for status() and turns the
 * later ops of the forward into no-ops, so the caller gets that error, never a crash.
 * Host arrays of positions / sequence ids are uploaded once per forward (compared with the last
 * upload). Forwards of up to GRAPH_MAX tokens run as CUDA graphs (below); add, glu and rope are fused
 * into the op after them, a one-token norm into the GEMV after it and an add into the GEMV
 * before it ("fusion" below: 5 launches per decode layer); greedy decoding takes the argmax on the GPU
 * (head_argmax). Kernels are launched with programmatic dependent launch on sm_90+ (kernels.cu). */
extern "C" {
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "model/model.h"
}
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bn_exec {
    const bitnet_model *m;
    int n_ctx, n_seq, nmax, dev;
    void *st;                        /* cudaStream_t */
    bitnet_status err;               /* first failure since the last status() */
    float *kc, *vc;                  /* [n_seq][n_layers][n_ctx][kvd] */
    size_t seq_stride, layer_stride; /* floats */
    float *rcos, *rsin;              /* [n_ctx][hd/2] */
    int8_t *xq; float *xs; int32_t *xsum;
    float *attws;
    int32_t *ids_d, *pos_d, *seq_d;
    int32_t *pos_h, *seq_h, *ids_h; int pos_n, seq_n; /* last uploaded (host copies) */
    void *up;                        /* stream for synchronous uploads in graph modes */
    int graphs, mode, cur, nrec, caprec, nrec_ok;
    struct oprec *rec;
    void *gexec;                     /* cudaGraphExec_t */
    const float *qt_ptr; int qt_n, qt_d; /* rows whose quantized form xq holds (fused norm) */
    /* ops held back to fuse with the next one (see "fusion" below) */
    float *pa_x; const float *pa_y; size_t pa_n;          /* add */
    float *pg_g; const float *pg_u; size_t pg_n; int pg_act; /* glu */
    float *pr_v[2]; int pr_n[2], pr_h[2], npr;             /* rope */
    struct oprec *pn; int pn_on;     /* a norm held back to run inside the next one-token GEMV (fusion) */
    struct oprec *pb; int pb_on;     /* a one-matrix BitLinear held back to take the residual add after it */
    int nfuse;                       /* that fusion on (env BITNET_CUDA_FUSE_NORM=0: off, for A/B runs) */
    unsigned *cnt_d;                 /* bn_cu_norm_tgemv's counter */
    float *logits_d;
    int *bad_d;                      /* [0]: non-finite flag, [1]: the decode program's barrier timed out */
    bn_cu_mega *mega;                /* the decode graph's one-kernel program (NULL: its kernels) */
    void *keys_d, *keys_h;           /* greedy: bn_cu_head_argmax keys of up to 256 rows (device, pinned host) */
    /* mirrors */
    void *embed_d; int embed_dt;
    void *head_d; int head_kind, head_type; int head_owned;
    const float **norm_h; float **norm_d; int n_norm;
};

enum { M_EAGER, M_CAPTURE, M_REPLAY };  /* how ops run (see "decode graphs" below) */
static void graph_drop(bn_exec *e);
static struct oprec *oprec_new(void);
static void note(bn_exec *e, bitnet_status s) { if (s && !e->err) e->err = s; }

/* ---- weights ---- */
static bitnet_status cu_tmat_new(const bitnet_model *m, const int8_t *q, int rows, int cols, float scale, bn_tmat *w) {
    w->rows = rows; w->cols = cols; w->scale = scale;
    w->device = BN_DEV_CUDA; w->layout = BN_LAYOUT_TERN_CU2;
    w->bytes = bn_cu_tern_bytes(rows, cols);
    w->data = NULL;
    uint8_t *h = (uint8_t *)malloc(w->bytes ? w->bytes : 1);
    if (!h) { w->bytes = 0; return bn_err(BITNET_ERR_NOMEM, "out of memory packing a %d x %d matrix", rows, cols); }
    bn_cu_tern_pack(q, rows, cols, h);
    void *d = NULL;
    char what[64];
    snprintf(what, sizeof what, "a %d x %d ternary matrix", rows, cols);
    bitnet_status s = cudaSetDevice(m->device_index) == cudaSuccess ? BITNET_OK : bn_err(BITNET_ERR_UNSUPPORTED, "cuda: cannot select device %d", m->device_index);
    if (!s) s = bn_cu_malloc(&d, w->bytes, what);
    if (!s) s = bn_cu_h2d(d, h, w->bytes, NULL);
    if (!s) s = bn_cu_sync(NULL);
    free(h);
    if (s) { bn_cu_free(d); w->bytes = 0; return s; }
    w->data = (uint8_t *)d;
    return BITNET_OK;
}
static void cu_tmat_free(bn_tmat *w) { bn_cu_free(w->data); w->data = NULL; }

/* ---- mirrors ---- */
static float *norm_dev(bn_exec *e, const float *h) {
    for (int i = 0; i < e->n_norm; i++) if (e->norm_h[i] == h) return e->norm_d[i];
    note(e, bn_err(BITNET_ERR_ARG, "cuda: a norm weight the backend has no device copy of"));
    return NULL;
}

static size_t dt_size(int dt) { return dt == BN_W_F32 ? 4 : 2; }

/* Mirror the head in the model's current type (re-done when bitnet_model_set_head changed it). */
static bitnet_status mirror_head(bn_exec *e) {
    const bitnet_model *m = e->m;
    size_t V = (size_t)m->cfg.vocab_size, D = (size_t)m->cfg.hidden_size;
    if (e->head_owned) bn_cu_free(e->head_d);
    e->head_d = NULL; e->head_owned = 0;
    e->head_type = m->head_type;
    if (m->head_type == BITNET_HEAD_Q8 || m->head_type == BITNET_HEAD_Q4) {
        e->head_kind = m->head_type == BITNET_HEAD_Q8 ? BN_CU_HEAD_Q8 : BN_CU_HEAD_Q4;
        bitnet_status s = bn_cu_malloc(&e->head_d, m->head_q_bytes, "the quantized LM head");
        if (!s) s = bn_cu_h2d(e->head_d, m->head_q, m->head_q_bytes, e->st);
        e->head_owned = 1;
        return s;
    }
    e->head_kind = m->head_dt;
    if (m->head == m->embed && e->embed_d) { e->head_d = e->embed_d; return BITNET_OK; }
    bitnet_status s = bn_cu_malloc(&e->head_d, V * D * dt_size(m->head_dt), "the LM head");
    if (!s) s = bn_cu_h2d(e->head_d, m->head, V * D * dt_size(m->head_dt), e->st);
    e->head_owned = 1;
    return s;
}

/* ---- execution state ---- */
static void cu_exec_free(bn_exec *e) {
    if (!e) return;
    if (e->st) bn_cu_sync(e->st);
    void *d[] = {e->kc, e->vc, e->rcos, e->rsin, e->xq, e->xs, e->xsum, e->attws, e->ids_d, e->pos_d, e->seq_d, e->logits_d, e->bad_d, e->embed_d,
                 e->keys_d, e->cnt_d};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) bn_cu_free(d[i]);
    if (e->head_owned) bn_cu_free(e->head_d);
    for (int i = 0; i < e->n_norm; i++) bn_cu_free(e->norm_d[i]);
    bn_cu_host_free(e->keys_h);
    free(e->norm_h); free(e->norm_d); free(e->pos_h); free(e->seq_h); free(e->ids_h);
    if (e->mode == M_CAPTURE) { cudaGraph_t g = NULL; cudaStreamEndCapture((cudaStream_t)e->st, &g); if (g) cudaGraphDestroy(g); cudaGetLastError(); }
    graph_drop(e); free(e->rec); free(e->pn); free(e->pb);
    bn_cu_stream_free(e->st); bn_cu_stream_free(e->up);
    free(e);
}

static bitnet_status cu_exec_new(const bitnet_model *m, const bn_exec_shape *sh, bn_exec **out) {
    *out = NULL;
    const bn_config *cf = &m->cfg;
    bn_exec *e = (bn_exec *)calloc(1, sizeof *e);
    if (!e) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    e->m = m; e->n_ctx = sh->n_ctx; e->n_seq = sh->n_seq; e->nmax = sh->nmax; e->dev = m->device_index;
    int dim = cf->hidden_size, hd = cf->head_dim, nh = cf->n_heads, qd = nh * hd, kvd = cf->n_kv_heads * hd, ffn = cf->intermediate_size;
    int wide = dim > qd ? dim : qd; if (ffn > wide) wide = ffn;
    size_t N = (size_t)e->nmax;
    bitnet_status s = cudaSetDevice(e->dev) == cudaSuccess ? BITNET_OK : bn_err(BITNET_ERR_UNSUPPORTED, "cuda: cannot select device %d", e->dev);
    if (!s) s = bn_cu_stream_new(&e->st);
    e->layer_stride = (size_t)e->n_ctx * kvd;
    e->seq_stride = (size_t)cf->n_layers * e->layer_stride;
    size_t cache = (size_t)e->n_seq * e->seq_stride * 4;
    if (!s) s = bn_cu_malloc((void **)&e->kc, cache, "the KV cache (keys)");
    if (!s) s = bn_cu_malloc((void **)&e->vc, cache, "the KV cache (values)");
    if (!s) s = bn_cu_malloc((void **)&e->rcos, (size_t)e->n_ctx * (hd / 2) * 4 + 4, "RoPE tables");
    if (!s) s = bn_cu_malloc((void **)&e->rsin, (size_t)e->n_ctx * (hd / 2) * 4 + 4, "RoPE tables");
    if (!s) s = bn_cu_malloc((void **)&e->xq, N * bn_kpad(wide), "activations");
    if (!s) s = bn_cu_malloc((void **)&e->xs, N * 4, "activations");
    if (!s) s = bn_cu_malloc((void **)&e->xsum, N * 4, "activations");
    if (!s) s = bn_cu_malloc((void **)&e->attws, bn_cu_attention_ws((int)N, nh, hd) * 4, "the attention workspace");
    if (!s) s = bn_cu_memset(e->attws, 0, bn_cu_attention_ws((int)N, nh, hd) * 4, e->st);
    if (!s) s = bn_cu_malloc((void **)&e->ids_d, N * 4, "token ids");
    if (!s) s = bn_cu_malloc((void **)&e->pos_d, N * 4, "positions");
    if (!s) s = bn_cu_malloc((void **)&e->seq_d, N * 4, "sequence ids");
    if (!s) s = bn_cu_malloc((void **)&e->logits_d, N * cf->vocab_size * 4, "logits");
    if (!s) s = bn_cu_malloc((void **)&e->bad_d, 8, "a flag");
    if (!s) s = bn_cu_memset(e->bad_d, 0, 8, e->st);
    if (!s) s = bn_cu_malloc((void **)&e->cnt_d, 16, "a counter");
    if (!s) s = bn_cu_memset(e->cnt_d, 0, 16, e->st);
    if (!s && (!(e->pn = oprec_new()) || !(e->pb = oprec_new()))) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    { const char *nf = getenv("BITNET_CUDA_FUSE_NORM"); e->nfuse = !(nf && !strcmp(nf, "0")); }
    if (!s) s = bn_cu_malloc(&e->keys_d, bn_cu_head_argmax_bytes(N < 256 ? (int)N : 256), "argmax keys");
    if (!s && !(e->keys_h = bn_cu_host_alloc(bn_cu_head_argmax_bytes(N < 256 ? (int)N : 256)))) s = bn_err(BITNET_ERR_NOMEM, "cuda: out of pinned host memory");
    e->pos_h = (int32_t *)calloc(N, 4); e->seq_h = (int32_t *)calloc(N, 4); e->ids_h = (int32_t *)calloc(N, 4);
    if (!s && (!e->pos_h || !e->seq_h || !e->ids_h)) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    if (!s) s = bn_cu_stream_new(&e->up);
    e->graphs = 1;
    /* RoPE tables exactly as the CPU backend computes them */
    if (!s) {
        float *c = (float *)malloc((size_t)e->n_ctx * (hd / 2) * 4 + 4), *sn = (float *)malloc((size_t)e->n_ctx * (hd / 2) * 4 + 4);
        if (!c || !sn) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
        for (int i = 0; !s && i < hd / 2; i++) {
            float inv = 1.0f / powf(cf->rope_theta, (float)(2 * i) / (float)hd);
            for (int p2 = 0; p2 < e->n_ctx; p2++) {
                float ang = (float)p2 * inv;
                c[(size_t)p2 * (hd / 2) + i] = cosf(ang);
                sn[(size_t)p2 * (hd / 2) + i] = sinf(ang);
            }
        }
        if (!s) s = bn_cu_h2d(e->rcos, c, (size_t)e->n_ctx * (hd / 2) * 4, e->st);
        if (!s) s = bn_cu_h2d(e->rsin, sn, (size_t)e->n_ctx * (hd / 2) * 4, e->st);
        if (!s) s = bn_cu_sync(e->st);
        free(c); free(sn);
    }
    /* norms */
    int nn = cf->n_layers * 4 + 1;
    e->norm_h = (const float **)calloc((size_t)nn, sizeof *e->norm_h);
    e->norm_d = (float **)calloc((size_t)nn, sizeof *e->norm_d);
    if (!s && (!e->norm_h || !e->norm_d)) s = bn_err(BITNET_ERR_NOMEM, "out of memory");
    for (int l = 0; !s && l <= cf->n_layers; l++) {
        const float *v[4]; int d[4], k = 0;
        if (l < cf->n_layers) {
            const bn_layer *L = &m->layers[l];
            v[0] = L->attn_norm; d[0] = dim; v[1] = L->attn_sub_norm; d[1] = qd; v[2] = L->ffn_norm; d[2] = dim; v[3] = L->ffn_sub_norm; d[3] = ffn; k = 4;
        } else { v[0] = m->final_norm; d[0] = dim; k = 1; }
        for (int i = 0; !s && i < k; i++) {
            float *dp = NULL;
            s = bn_cu_malloc((void **)&dp, (size_t)d[i] * 4, "norm weights");
            if (!s) { e->norm_h[e->n_norm] = v[i]; e->norm_d[e->n_norm++] = dp; s = bn_cu_h2d(dp, v[i], (size_t)d[i] * 4, e->st); }
        }
    }
    /* embedding (and the head, shared when tied) */
    size_t ebytes = (size_t)cf->vocab_size * dim * dt_size(m->embed_dt);
    e->embed_dt = m->embed_dt;
    if (!s) s = bn_cu_malloc(&e->embed_d, ebytes, "the embedding table");
    if (!s) s = bn_cu_h2d(e->embed_d, m->embed, ebytes, e->st);
    if (!s) s = mirror_head(e);
    if (!s) s = bn_cu_sync(e->st);
    if (s) { cu_exec_free(e); return s; }
    *out = e;
    return BITNET_OK;
}

static float *cu_buf_new(bn_exec *e, size_t n) {
    void *p = NULL;
    if (bn_cu_malloc(&p, n * sizeof(float), "an activation buffer")) return NULL;
    return (float *)p;
}
static void cu_buf_free(bn_exec *e, float *p) { bn_cu_free(p); }

/* ---- decode graphs ----
 * Every op becomes a record (kind + arguments). A forward of at most GRAPH_MAX tokens is
 * captured into a CUDA graph while its ops are recorded (embed, the first op, begins the
 * capture; finite, which follows the last layer, ends it and launches the graph). The next
 * forward whose ops repeat the records exactly (same buffers and sizes: decode steps do) only
 * compares them and relaunches the graph: one launch per token instead of ~20 per layer. On
 * the first difference the ops matched so far run eagerly from their records and the forward
 * goes on eagerly. Token ids, positions and sequence ids are device arrays the kernels read,
 * uploaded synchronously before the launch (the previous forward has finished: finite and
 * head wait for the stream). Attention in a graph uses the grid for the whole context (blocks
 * past a token's position exit at once), so it does not depend on the position. */
enum { OP_EMBED, OP_NORM, OP_BITLIN, OP_ROPE, OP_ATT, OP_GLU, OP_ADD, OP_ADDNORM, OP_GLUNORM, OP_NORMLIN };
struct oprec {
    int kind, n, a, b, c;         /* kind-specific ints */
    float f[3];                    /* eps; scales */
    const void *p[7];              /* pointers */
    size_t z;
    /* OP_NORMLIN (an OP_BITLIN of one token with the norm of its input inside): the norm's
     * pre-op (0 none, 1 add, 2 glu), act, eps, input x, y, weights; the normed row is p[0] */
    int pre, act; float eps; const void *np[3];
    const void *ax;                /* OP_BITLIN / OP_NORMLIN of one matrix: the residual x += y done by the GEMV */
};
#define GRAPH_MAX 64

static oprec *oprec_new(void) { return (oprec *)calloc(1, sizeof(oprec)); }
static bool same(const oprec &x, const oprec &y) { return !memcmp(&x, &y, sizeof x); }

static void run_op(bn_exec *e, const oprec &r) {
    const bn_config *cf = &e->m->cfg;
    switch (r.kind) {
    case OP_EMBED: note(e, bn_cu_embed(e->embed_d, e->embed_dt, cf->hidden_size, e->ids_d, r.n, (float *)r.p[0], e->st)); break;
    case OP_NORM: note(e, bn_cu_rmsnorm_quant((float *)r.p[0], (const float *)r.p[1], (const float *)r.p[2], r.n, r.a, r.f[0],
                                              e->xq, bn_kpad(r.a), e->xs, e->xsum, e->st)); break;
    case OP_BITLIN: case OP_NORMLIN: {
        int cols = r.b, kp = bn_kpad(cols);
        bn_cu_tmm mm[3];
        for (int i = 0; i < r.a; i++) mm[i] = bn_cu_tmm{(const uint8_t *)r.p[1 + i], (int)((r.z >> (20 * i)) & 0xfffff), r.f[i], (float *)r.p[4 + i], NULL,
                                                         i ? NULL : (float *)r.ax};
        if (r.kind == OP_NORMLIN) {
            note(e, bn_cu_norm_tgemv(mm, r.a, cols, r.pre, r.act, (float *)r.np[0], (const float *)r.np[1], (const float *)r.np[2], r.eps,
                                     (float *)r.p[0], e->cnt_d, e->st));
            break;
        }
        if (!r.c) note(e, bn_cu_quant((const float *)r.p[0], r.n, cols, cols, e->xq, kp, e->xs, e->xsum, e->st));
        note(e, bn_cu_tgemm(mm, r.a, cols, e->xq, e->xs, e->xsum, r.n, e->st));
        break;
    }
    case OP_ROPE: note(e, bn_cu_rope((float *)r.p[0], r.n, r.a, cf->head_dim, e->pos_d, e->rcos, e->rsin, e->st)); break;
    case OP_ATT: {  /* r.c: bit 0 = RoPE of q and k fused in, bit 1 = k/v stored inside the attention kernel, bit 2 = tiled prefill */
        int layer = r.a;
        float *kc = e->kc + (size_t)layer * e->layer_stride, *vc = e->vc + (size_t)layer * e->layer_stride;
        const float *cs = (r.c & 1) ? e->rcos : NULL, *sn = (r.c & 1) ? e->rsin : NULL;
        const float *k = (const float *)r.p[1], *v = (const float *)r.p[2];
        if (!(r.c & 2)) {
            note(e, bn_cu_rope_kv_store(kc, vc, e->seq_stride, k, v, r.n, cf->n_kv_heads, cf->head_dim, e->seq_d, e->pos_d, cs, sn, e->st));
            k = v = NULL;
        }
        if (r.c & 4) { /* tiled prefill: every tile of tokens in one sequence (checked in cu_attention) */
            note(e, bn_cu_attention_prefill((const float *)r.p[0], kc, vc, e->seq_stride, r.n, cf->n_heads, cf->n_kv_heads, cf->head_dim,
                                            e->seq_d, e->pos_d, cs, sn, (float *)r.p[3], e->st));
            break;
        }
        note(e, bn_cu_attention_fused((const float *)r.p[0], k, v, kc, vc, e->seq_stride, r.n, cf->n_heads, cf->n_kv_heads, cf->head_dim,
                                      e->seq_d, e->pos_d, r.b, cs, sn, e->attws, (float *)r.p[3], e->st));
        break;
    }
    case OP_ADDNORM: note(e, bn_cu_add_rmsnorm_quant((float *)r.p[0], (float *)r.p[1], (const float *)r.p[3], (const float *)r.p[2], r.n, r.a, r.f[0],
                                                     e->xq, bn_kpad(r.a), e->xs, e->xsum, e->st)); break;
    case OP_GLUNORM: note(e, bn_cu_glu_rmsnorm_quant((float *)r.p[0], (const float *)r.p[3], r.b, (const float *)r.p[2], r.n, r.a, r.f[0],
                                                     e->xq, bn_kpad(r.a), e->xs, e->xsum, e->st)); break;
    case OP_GLU: note(e, bn_cu_glu((float *)r.p[0], (const float *)r.p[1], r.z, r.a, e->st)); break;
    case OP_ADD: note(e, bn_cu_add((float *)r.p[0], (const float *)r.p[1], r.z, e->st)); break;
    }
}

static void graph_drop(bn_exec *e) {
    if (e->gexec) cudaGraphExecDestroy((cudaGraphExec_t)e->gexec);
    e->gexec = NULL; e->nrec_ok = 0;
    if (e->mega) { cudaStreamSynchronize((cudaStream_t)e->st); bn_cu_mega_free(e->mega); e->mega = NULL; }
}

/* The records of a one-token forward as a one-kernel program (bn_cu_mega), or NULL when an op
 * has no step form or the device / shapes do not fit (then the captured kernels run). */
static bn_cu_mega *mega_build(bn_exec *e) {
    const bn_config *cf = &e->m->cfg;
    if (!bn_cu_get_mega() || e->nrec < 2) return NULL;
    bn_cu_mstep *st = (bn_cu_mstep *)calloc((size_t)e->nrec, sizeof *st);
    if (!st) return NULL;
    int ok = 1;
    for (int i = 0; ok && i < e->nrec; i++) {
        const oprec &r = e->rec[i];
        bn_cu_mstep &S = st[i];
        if (r.n != 1) { ok = 0; break; }
        switch (r.kind) {
        case OP_EMBED:
            S.kind = BN_CU_MS_EMBED; S.table = e->embed_d; S.dt = e->embed_dt; S.dim = cf->hidden_size; S.x = (float *)r.p[0];
            break;
        case OP_NORMLIN:
            S.kind = BN_CU_MS_NORMLIN; S.nw = r.a; S.cols = r.b;
            for (int j = 0; j < r.a; j++) S.mm[j] = bn_cu_tmm{(const uint8_t *)r.p[1 + j], (int)((r.z >> (20 * j)) & 0xfffff), r.f[j], (float *)r.p[4 + j], NULL,
                                                              j ? NULL : (float *)r.ax};
            S.pre = r.pre; S.act = r.act; S.eps = r.eps; S.nx = (float *)r.np[0]; S.ny = (const float *)r.np[1]; S.nwt = (const float *)r.np[2];
            S.out = (float *)r.p[0];
            break;
        case OP_ATT:
            if ((r.c & 7) != 3) { ok = 0; break; }  /* RoPE and the store inside, not the tiled prefill */
            S.kind = BN_CU_MS_ATT; S.q = (const float *)r.p[0]; S.k = (const float *)r.p[1]; S.v = (const float *)r.p[2]; S.ao = (float *)r.p[3];
            S.kc = e->kc + (size_t)r.a * e->layer_stride; S.vc = e->vc + (size_t)r.a * e->layer_stride; S.sstr = e->seq_stride;
            S.nh = cf->n_heads; S.nkv = cf->n_kv_heads; S.hd = cf->head_dim; S.maxpos = r.b; S.cs = e->rcos; S.sn = e->rsin; S.ws = e->attws;
            break;
        default: ok = 0;
        }
    }
    bn_cu_mega *g = NULL;
    if (ok && bn_cu_mega_new(st, e->nrec, e->ids_d, e->pos_d, e->seq_d, &g) != BITNET_OK) g = NULL;  /* the kernels then */
    free(st);
    return g;
}

static void dispatch(bn_exec *e, const oprec &r) {
    if (e->err) return;
    if (e->mode == M_REPLAY) {
        if (e->cur < e->nrec && same(e->rec[e->cur], r)) { e->cur++; return; }
        /* differs: run what matched, then this forward is eager */
        e->mode = M_EAGER;
        for (int i = 0; i < e->cur; i++) run_op(e, e->rec[i]);
        graph_drop(e);
    } else if (e->mode == M_CAPTURE) {
        if (e->nrec == e->caprec) {
            int nc = e->caprec ? 2 * e->caprec : 1024;
            oprec *nr = (oprec *)realloc(e->rec, (size_t)nc * sizeof *nr);
            if (!nr) { note(e, bn_err(BITNET_ERR_NOMEM, "out of memory")); return; }
            e->rec = nr; e->caprec = nc;
        }
        e->rec[e->nrec++] = r;
    }
    run_op(e, r);
}

/* host arrays -> device, once per distinct content. Eager: async on the stream (a pageable
 * source is staged before the call returns); graph modes: synchronous, before the launch. */
static void upload(bn_exec *e, const int32_t *h, int n, int32_t *shadow, int *sn, int32_t *dst, int force) {
    if (!force && *sn == n && !memcmp(shadow, h, (size_t)n * 4)) return;
    if (e->mode == M_EAGER) note(e, bn_cu_h2d(dst, h, (size_t)n * 4, e->st));
    else {
        cudaError_t ce = cudaMemcpyAsync(dst, h, (size_t)n * 4, cudaMemcpyHostToDevice, (cudaStream_t)e->up);
        if (ce == cudaSuccess) ce = cudaStreamSynchronize((cudaStream_t)e->up);
        if (ce != cudaSuccess) note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: upload: %s", cudaGetErrorString(ce)));
    }
    memcpy(shadow, h, (size_t)n * 4); *sn = n;
}

/* ---- fusion ----
 * add, glu and rope are held back (at most one add or glu, two ropes) and fused into the op
 * that follows when it can take them: add + the rmsnorm of its sum -> one add+norm+quant
 * kernel; glu + the in-place rmsnorm of its output -> one glu+norm+quant kernel; the ropes of
 * q and k + the attention that reads them -> RoPE applied inside the attention and KV-store
 * kernels. Anything else first issues the held ops unfused (flush), in call order, so results
 * are those of the unfused sequence (the fused kernels use the same float operations). The
 * buffers handed to a fused rope are left unroped (the model never reads q or k again). */
/* A norm is held back (pn) until the next op: a one-token BitLinear of its output takes it inside
 * its GEMV (OP_NORMLIN, bn_cu_norm_tgemv: the same bits); anything else issues it first. */
static void dispatch_norm(bn_exec *e, int kind, float *out, float *x, const float *y, const float *wd, int n, int d, float eps, int act) {
    oprec r; memset(&r, 0, sizeof r);
    r.kind = kind; r.n = n; r.a = d; r.b = act; r.f[0] = eps; r.p[0] = out; r.p[1] = x; r.p[2] = wd; r.p[3] = y;
    if (e->nfuse && n == 1 && d <= 32 * 1024) { *e->pn = r; e->pn_on = 1; return; }
    dispatch(e, r);
}
static void flush_norm(bn_exec *e) {
    if (!e->pn_on) return;
    e->pn_on = 0;
    dispatch(e, *e->pn);
}
/* A BitLinear of one matrix is held back (pb) until the next op: an add of its output into x
 * goes into its GEMV (bn_cu_tmm.add_d, the same operation); anything else issues it first. So
 * the norm after the add reads x only (no GEMV output aliases a fused norm's input). pb is
 * always older than any other held op. */
static void flush_pb(bn_exec *e) {
    if (!e->pb_on) return;
    e->pb_on = 0;
    dispatch(e, *e->pb);
}
static void flush_held(bn_exec *e) { flush_pb(e); flush_norm(e); }
static bool overlap(const void *a, size_t na, const void *b, size_t nb) {  /* float ranges */
    const float *x = (const float *)a, *y = (const float *)b;
    return x && y && x < y + nb && y < x + na;
}
static void flush(bn_exec *e) {
    flush_held(e);
    if (e->pa_x) {
        oprec r; memset(&r, 0, sizeof r);
        r.kind = OP_ADD; r.z = e->pa_n; r.p[0] = e->pa_x; r.p[1] = e->pa_y;
        e->pa_x = NULL;
        dispatch(e, r);
    }
    if (e->pg_g) {
        oprec r; memset(&r, 0, sizeof r);
        r.kind = OP_GLU; r.a = e->pg_act; r.z = e->pg_n; r.p[0] = e->pg_g; r.p[1] = e->pg_u;
        e->pg_g = NULL;
        dispatch(e, r);
    }
    for (int i = 0; i < e->npr; i++) {
        oprec r; memset(&r, 0, sizeof r);
        r.kind = OP_ROPE; r.n = e->pr_n[i]; r.a = e->pr_h[i]; r.p[0] = e->pr_v[i];
        dispatch(e, r);
    }
    e->npr = 0;
}

/* ---- ops ---- */
static void cu_embed(bn_exec *e, const int32_t *ids, int n, float *x) {
    flush(e);
    e->qt_ptr = NULL;
    if (e->err) return;
    oprec r; memset(&r, 0, sizeof r);
    r.kind = OP_EMBED; r.n = n; r.p[0] = x; r.a = bn_cu_get_pdl() | bn_cu_get_mega() << 1;  /* a graph is re-captured when PDL or mega is switched */
    e->mode = M_EAGER;
    if (n <= GRAPH_MAX && e->graphs) {
        if (e->gexec && e->nrec_ok && same(e->rec[0], r)) { e->mode = M_REPLAY; e->cur = 1; }
        else {
            graph_drop(e);
            cudaError_t ce = cudaStreamBeginCapture((cudaStream_t)e->st, cudaStreamCaptureModeRelaxed);
            if (ce == cudaSuccess) { e->mode = M_CAPTURE; e->nrec = 0; }
            else cudaGetLastError();
        }
    }
    int32_t dummy;
    upload(e, ids, n, e->ids_h, &dummy, e->ids_d, 1);
    if (e->mode == M_REPLAY) return;
    dispatch(e, r);
}
static void cu_rmsnorm(bn_exec *e, float *out, const float *x, const float *w, int n, int d, float eps) {
    flush_held(e);
    if (e->err) return;
    float *wd = norm_dev(e, w);
    if (!wd) return;
    size_t cnt = (size_t)n * d;
    if (e->pa_x == x && e->pa_n == cnt && !e->pg_g && !e->npr && out != x) {
        const float *y = e->pa_y;
        e->pa_x = NULL;
        dispatch_norm(e, OP_ADDNORM, out, (float *)x, y, wd, n, d, eps, 0);
    } else if (e->pg_g == x && out == x && e->pg_n == cnt && !e->pa_x && !e->npr) {
        const float *u = e->pg_u;
        e->pg_g = NULL;
        dispatch_norm(e, OP_GLUNORM, out, out, u, wd, n, d, eps, e->pg_act);
    } else {
        flush(e);
        dispatch_norm(e, OP_NORM, out, (float *)x, NULL, wd, n, d, eps, 0);
    }
    e->qt_ptr = out; e->qt_n = n; e->qt_d = d;  /* the next BitLinear of out can skip its quantizer */
}
static void cu_bitlinear(bn_exec *e, const float *x, int n, int nw, const bn_tmat *const *w, float *const *y) {
    oprec r; memset(&r, 0, sizeof r);
    const oprec &pn = *e->pn;
    flush_pb(e);
    bool fuse = e->pn_on && n == 1 && pn.n == 1 && pn.p[0] == x && pn.a == w[0]->cols;
    for (int i = 0; fuse && i < nw; i++)  /* no output may overlap the norm's inputs (other blocks still read them) */
        fuse = !overlap(y[i], (size_t)w[i]->rows, pn.p[1], (size_t)pn.a) && !(pn.p[3] && overlap(y[i], (size_t)w[i]->rows, pn.p[3], (size_t)pn.a));
    if (fuse) {  /* the held norm goes inside this GEMV */
        r.pre = pn.kind == OP_ADDNORM ? 1 : pn.kind == OP_GLUNORM ? 2 : 0;
        r.act = pn.b; r.eps = pn.f[0]; r.np[0] = pn.p[1]; r.np[1] = pn.p[3]; r.np[2] = pn.p[2];
        e->pn_on = 0;
        r.kind = OP_NORMLIN;
    } else r.kind = OP_BITLIN;
    flush(e);
    r.n = n; r.a = nw; r.b = w[0]->cols; r.p[0] = x;
    r.c = x == e->qt_ptr && n == e->qt_n && w[0]->cols == e->qt_d;  /* xq already holds x quantized */
    e->qt_ptr = NULL;
    for (int i = 0; i < nw; i++) { r.p[1 + i] = w[i]->data; r.p[4 + i] = y[i]; r.f[i] = w[i]->scale; r.z |= (size_t)w[i]->rows << (20 * i); }
    if (nw == 1 && !e->err) { *e->pb = r; e->pb_on = 1; return; }  /* may take the add after it */
    dispatch(e, r);
}
static void cu_rope(bn_exec *e, float *v, int n, int n_heads, const int32_t *pos) {
    flush_held(e);
    e->qt_ptr = NULL;
    if (e->err) return;
    if (e->pa_x || e->pg_g || e->npr == 2) flush(e);
    upload(e, pos, n, e->pos_h, &e->pos_n, e->pos_d, 0);
    e->pr_v[e->npr] = v; e->pr_n[e->npr] = n; e->pr_h[e->npr] = n_heads; e->npr++;
}
static void cu_attention(bn_exec *e, int layer, const float *q, const float *k, const float *v, int n,
                         const int32_t *seq, const int32_t *pos, float *out) {
    flush_held(e);
    e->qt_ptr = NULL;
    if (e->err) return;
    const bn_config *cf = &e->m->cfg;
    int fused = e->npr == 2 && !e->pa_x && !e->pg_g && e->pr_n[0] == n && e->pr_n[1] == n &&
                ((e->pr_v[0] == q && e->pr_h[0] == cf->n_heads && e->pr_v[1] == k && e->pr_h[1] == cf->n_kv_heads) ||
                 (e->pr_v[1] == q && e->pr_h[1] == cf->n_heads && e->pr_v[0] == k && e->pr_h[0] == cf->n_kv_heads));
    if (fused) e->npr = 0; else flush(e);
    upload(e, pos, n, e->pos_h, &e->pos_n, e->pos_d, 0);
    upload(e, seq, n, e->seq_h, &e->seq_n, e->seq_d, 0);
    int maxpos = 0, distinct = n <= 64;
    for (int t = 0; t < n; t++) if (pos[t] > maxpos) maxpos = pos[t];
    for (int t = 0; distinct && t < n; t++) for (int u = 0; u < t; u++) if (seq[u] == seq[t]) { distinct = 0; break; }
    int tq = n > 8 && !distinct ? bn_cu_attention_tile(cf->n_heads, cf->n_kv_heads, cf->head_dim) : 0, tiled = tq > 0;
    for (int t = 0; tiled && t < n; t++) if (seq[t] != seq[t - t % tq]) tiled = 0;  /* each tile of tq tokens in one sequence */
    oprec r; memset(&r, 0, sizeof r);
    r.kind = OP_ATT; r.n = n; r.a = layer; r.b = e->mode == M_EAGER ? maxpos : e->n_ctx - 1;
    r.c = (fused ? 1 : 0) | (distinct ? 2 : 0) | (tiled ? 4 : 0);
    r.p[0] = q; r.p[1] = k; r.p[2] = v; r.p[3] = out;
    dispatch(e, r);
}
static void cu_glu(bn_exec *e, float *g, const float *u, size_t n, int act) {
    flush(e);
    e->qt_ptr = NULL;
    e->pg_g = g; e->pg_u = u; e->pg_n = n; e->pg_act = act;
}
static void cu_add(bn_exec *e, float *x, const float *y, size_t n) {
    const oprec &pb = *e->pb;
    size_t rows = pb.z & 0xfffff, nin = (size_t)pb.n * pb.b;
    if (e->pb_on && pb.p[4] == y && n == rows * pb.n && !overlap(x, n, y, n) && !overlap(x, n, pb.p[0], nin) &&
        !overlap(x, n, pb.np[0], nin) && !overlap(x, n, pb.np[1], nin)) {  /* the add goes into the held GEMV */
        e->pb->ax = x;
        flush_pb(e);
        e->qt_ptr = NULL;
        return;
    }
    flush(e);
    e->qt_ptr = NULL;
    e->pa_x = x; e->pa_y = y; e->pa_n = n;
}

/* End a capture or a replay: launch the graph (or run the matched prefix); then eager. */
static void graph_finish(bn_exec *e) {
    if (e->mode == M_CAPTURE) {
        cudaGraph_t g = NULL;
        cudaError_t ce = cudaStreamEndCapture((cudaStream_t)e->st, &g);
        e->mode = M_EAGER;
        if (ce != cudaSuccess || e->err) {
            cudaGetLastError();
            if (g) cudaGraphDestroy(g);
            graph_drop(e);
            if (!e->err) note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: graph capture: %s", cudaGetErrorString(ce)));
            return;
        }
        if ((e->mega = mega_build(e))) {  /* one kernel instead of the captured ones */
            cudaGraph_t gk = g;  /* the kernels' graph, kept until the program's capture succeeds */
            g = NULL;
            ce = cudaStreamBeginCapture((cudaStream_t)e->st, cudaStreamCaptureModeRelaxed);
            if (ce == cudaSuccess) {
                bitnet_status ls = bn_cu_mega_launch(e->mega, e->bad_d + 1, e->st);
                ce = cudaStreamEndCapture((cudaStream_t)e->st, &g);
                if (ls && ce == cudaSuccess) ce = cudaErrorLaunchFailure;
            }
            if (ce != cudaSuccess) {  /* refused (a cooperative launch can be, e.g. under MPS): the kernels, from now on */
                cudaGetLastError();
                if (g) cudaGraphDestroy(g);
                g = gk;
                graph_drop(e);  /* frees the program */
                bn_cu_set_mega(0);
            } else cudaGraphDestroy(gk);
        }
        cudaGraphExec_t x = NULL;
        ce = cudaGraphInstantiate(&x, g, 0);
        cudaGraphDestroy(g);
        if (ce != cudaSuccess) { cudaGetLastError(); note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: graph instantiate: %s", cudaGetErrorString(ce))); return; }
        e->gexec = x; e->nrec_ok = e->nrec;
        e->nrec = e->nrec_ok;
    } else if (e->mode == M_REPLAY) {
        e->mode = M_EAGER;
        if (e->cur != e->nrec) {  /* fewer ops than recorded */
            for (int i = 0; i < e->cur; i++) run_op(e, e->rec[i]);
            graph_drop(e);
            return;
        }
    } else return;
    cudaError_t ce = cudaGraphLaunch((cudaGraphExec_t)e->gexec, (cudaStream_t)e->st);
    if (ce != cudaSuccess) { cudaGetLastError(); note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: graph launch: %s", cudaGetErrorString(ce))); graph_drop(e); }
}

static void cu_head(bn_exec *e, const float *x, int n, float *logits) {
    flush(e);
    e->qt_ptr = NULL;
    graph_finish(e);
    if (e->err) return;
    const bitnet_model *m = e->m;
    if (m->head_type != e->head_type) { note(e, mirror_head(e)); if (e->err) return; }
    int V = m->cfg.vocab_size;
    for (int t0 = 0; t0 < n && !e->err; t0 += e->nmax) {
        int nn = n - t0 < e->nmax ? n - t0 : e->nmax;
        note(e, bn_cu_head(e->head_d, e->head_kind, V, m->cfg.hidden_size, x + (size_t)t0 * m->cfg.hidden_size, nn, e->logits_d, e->st));
        if (!e->err) note(e, bn_cu_d2h(logits + (size_t)t0 * V, e->logits_d, (size_t)nn * V * 4, e->st));
    }
}

/* Greedy head: the head kernel folds its logits into argmax keys (bn_cu_head_argmax); only the
 * keys (a few hundred bytes per row) come back. */
static int cu_head_argmax(bn_exec *e, const float *x, int n, int32_t *ids) {
    flush(e);
    e->qt_ptr = NULL;
    graph_finish(e);
    if (e->err) return 1;  /* status() reports it */
    const bitnet_model *m = e->m;
    if (m->head_type != e->head_type) { note(e, mirror_head(e)); if (e->err) return 1; }
    int V = m->cfg.vocab_size, fin = 1;
    int step = e->nmax < 256 ? e->nmax : 256;
    for (int t0 = 0; t0 < n && !e->err; t0 += step) {
        int nn = n - t0 < step ? n - t0 : step;
        note(e, bn_cu_head_argmax(e->head_d, e->head_kind, V, m->cfg.hidden_size, x + (size_t)t0 * m->cfg.hidden_size, nn, e->keys_d, e->st));
        if (!e->err) note(e, bn_cu_d2h(e->keys_h, e->keys_d, bn_cu_head_argmax_bytes(nn), e->st));
        if (e->err) break;
        if (!bn_cu_head_argmax_read(e->keys_h, nn, ids + t0)) fin = 0;
    }
    return fin;
}

static int cu_finite(bn_exec *e, const float *x, size_t n) {
    flush(e);
    graph_finish(e);
    if (e->err) return 1; /* status() reports the real failure */
    int bad[2] = {0, 0};
    note(e, bn_cu_memset(e->bad_d, 0, 4, e->st));
    note(e, bn_cu_nonfinite(x, n, e->bad_d, e->st));
    if (!e->err) note(e, bn_cu_d2h(bad, e->bad_d, 8, e->st));
    if (bad[1]) {  /* the decode program's blocks were not all resident: drop it (the kernels from now on) */
        note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: the one-kernel decode step timed out at a grid barrier (is another process using the GPU?); "
                                               "decoding goes on with separate kernels; set BITNET_CUDA_MEGA=0 to skip it"));
        if (e->mega) bn_cu_mega_reset(e->mega, e->st);
        bn_cu_memset(e->bad_d, 0, 8, e->st);
        graph_drop(e);
        bn_cu_set_mega(0);
        return 1;
    }
    return !bad[0];
}

static bitnet_status cu_status(bn_exec *e) {
    flush(e);
    if (e->err) { e->pa_x = NULL; e->pg_g = NULL; e->npr = 0; graph_finish(e); }  /* never leave a capture open */
    bitnet_status s = e->err;
    e->err = BITNET_OK;
    if (s) { e->pos_n = e->seq_n = -1; graph_drop(e); e->mode = M_EAGER; } /* re-upload, re-capture after a failure */
    return s;
}

/* The cache is [n_seq][n_layers][n_ctx][kvd]: per layer, n * kvd floats at layer_stride apart. */
static void cu_kv_copy(bn_exec *e, int src, int dst, int n) {
    flush(e);
    const bn_config *cf = &e->m->cfg;
    size_t w = (size_t)n * cf->n_kv_heads * cf->head_dim * sizeof(float), pitch = e->layer_stride * sizeof(float);
    for (int i = 0; i < 2; i++) {
        float *c = i ? e->vc : e->kc;
        cudaError_t r = cudaMemcpy2DAsync(c + (size_t)dst * e->seq_stride, pitch, c + (size_t)src * e->seq_stride, pitch, w,
                                          (size_t)cf->n_layers, cudaMemcpyDeviceToDevice, (cudaStream_t)e->st);
        if (r != cudaSuccess) note(e, bn_err(BITNET_ERR_UNSUPPORTED, "cuda: KV cache copy: %s", cudaGetErrorString(r)));
    }
}

static const bn_backend CUDA_BE = {
    "cuda", BN_DEV_CUDA, cu_tmat_new, cu_tmat_free, cu_exec_new, cu_exec_free, cu_buf_new, cu_buf_free,
    cu_embed, cu_rmsnorm, cu_bitlinear, cu_rope, cu_attention, cu_glu, cu_add, cu_head, cu_finite, cu_status, cu_kv_copy, cu_head_argmax,
};
extern "C" const bn_backend *bn_backend_cuda(void) { return &CUDA_BE; }
