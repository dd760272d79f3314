/* test_batch.c — multi-sequence contexts and bitnet_ctx_decode.
 * 1. Four sequences of different lengths decoded together (a mixed prefill with one contiguous
 *    run and three interleaved ones, then batched steps giving each sequence 0, 1 or 2 tokens in
 *    rotating, interleaved order) give the same logits as four separate single-sequence runs
 *    through bitnet_ctx_eval, and the same argmax ids, on every kernel set (chosen through
 *    bitnet_model_params.kernels) and 1 and 2 threads, for a GQA relu^2 model and a silu model.
 *    Bound: max|d| <= 1e-3 std of the reference logits. Batched and separate runs quantize and
 *    multiply exactly the same rows (int8 quantization and ternary products are exact and per
 *    row); what differs is float summation order (attention via GEMM or per token, head rows
 *    blocked differently), ~1e-6 relative, far inside this bound and 250x inside the golden
 *    tolerance (max|d| <= 0.25 std) that the separate runs themselves meet (test_model.c).
 * 2. Bad batches (sequence id out of range, position gap or repeat, id out of vocab, overflow,
 *    empty) fail with BITNET_ERR_ARG and leave every sequence's position and cache unchanged.
 * 3. seq_truncate and the single-sequence wrappers act on sequence 0 / the named sequence.
 * 4. A model whose weights are poisoned in memory (huge scale) gives BITNET_ERR_NUMERIC, not
 *    NaN logits with BITNET_OK, and leaves the positions unchanged. */
#include "t.h"
#include "bitnet.h"
#include "model/model.h"

#define NS 4
#define DEC 6       /* decode tokens per sequence */
#define MAXT 32     /* tokens per sequence */
static const int LEN[NS] = {12, 3, 5, 9};
/* tokens given to sequence s at decode step d (each row sums to DEC) */
static const int CNT[NS][DEC] = {{1, 1, 1, 1, 1, 1}, {2, 0, 1, 1, 2, 0}, {1, 2, 0, 2, 1, 0}, {0, 1, 1, 1, 1, 2}};

static int argmax(const float *v, int n) { int b = 0; for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i; return b; }

typedef struct {
    int V;
    int32_t tok[NS][MAXT];        /* prompt, then greedy ids of the separate run */
    float *ref[NS];               /* [LEN+DEC][V] separate-run logits after each token */
    double sd;                    /* std of all reference logits */
} refs;

/* Separate single-sequence runs: prompt through eval (all logits), then greedy token by token. */
static int make_refs(bitnet_model *m, const int32_t *pool, int npool, int threads, refs *r) {
    bitnet_model_info info; bitnet_model_get_info(m, &info);
    r->V = info.vocab_size;
    double s = 0, q = 0; size_t cnt = 0;
    for (int k = 0; k < NS; k++) {
        bitnet_ctx *c = NULL;
        bitnet_ctx_params p = bitnet_ctx_default_params();
        p.n_ctx = MAXT; p.n_threads = threads;
        if (bitnet_ctx_new(m, &p, &c)) return 0;
        for (int i = 0; i < LEN[k]; i++) r->tok[k][i] = pool[(3 * k + 5 * i) % npool];
        r->ref[k] = malloc((size_t)(LEN[k] + DEC) * r->V * 4);
        int ok = bitnet_ctx_eval(c, r->tok[k], LEN[k], r->ref[k], 1) == BITNET_OK;
        for (int i = LEN[k]; i < LEN[k] + DEC && ok; i++) {
            r->tok[k][i] = argmax(r->ref[k] + (size_t)(i - 1) * r->V, r->V);
            ok = bitnet_ctx_eval(c, &r->tok[k][i], 1, r->ref[k] + (size_t)i * r->V, 0) == BITNET_OK;
        }
        bitnet_ctx_free(c);
        if (!ok) return 0;
        for (size_t i = 0; i < (size_t)(LEN[k] + DEC) * r->V; i++) { s += r->ref[k][i]; q += (double)r->ref[k][i] * r->ref[k][i]; cnt++; }
    }
    r->sd = sqrt(q / cnt - (s / cnt) * (s / cnt));
    return 1;
}

typedef struct { int n; int32_t tok[NS * MAXT], pos[NS * MAXT], seq[NS * MAXT]; int8_t lg[NS * MAXT]; int idx[NS * MAXT]; } bbuf;
static void add(bbuf *b, const refs *r, int s, int i, int want) {
    b->tok[b->n] = r->tok[s][i]; b->pos[b->n] = i; b->seq[b->n] = s; b->lg[b->n] = (int8_t)want; b->idx[b->n] = i; b->n++;
}

/* Decode b; compare the logits rows of the flagged entries (all_flags NULL: last of each seq). */
static void run_and_compare(bitnet_ctx *c, const refs *r, bbuf *b, int use_pos, int use_flags, const char *name, double *worst, int *ids_ok, int *st_ok) {
    int want[NS * MAXT], nw = 0;
    for (int i = 0; i < b->n; i++) {
        int w = b->lg[i];
        if (!use_flags) { w = 1; for (int j = i + 1; j < b->n; j++) if (b->seq[j] == b->seq[i]) w = 0; }
        if (w) want[nw++] = i;
    }
    float *lg = malloc((size_t)(nw ? nw : 1) * r->V * 4);
    bitnet_batch bt = {b->n, b->tok, use_pos ? b->pos : NULL, b->seq, use_flags ? b->lg : NULL};
    bitnet_status s = bitnet_ctx_decode(c, &bt, lg);
    if (s) { *st_ok = 0; printf("# %s: %s\n", name, bitnet_last_error()); free(lg); return; }
    for (int w = 0; w < nw; w++) {
        int e = want[w];
        const float *ref = r->ref[b->seq[e]] + (size_t)b->idx[e] * r->V, *got = lg + (size_t)w * r->V;
        for (int v = 0; v < r->V; v++) { double d = fabs(got[v] - ref[v]); if (!(d <= *worst)) *worst = d != d ? INFINITY : d; }
        if (argmax(got, r->V) != argmax(ref, r->V)) *ids_ok = 0;
    }
    free(lg);
}

static void batch_equals_separate(const char *dir, const char *ks, int threads) {
    char path[512], name[256];
    snprintf(path, sizeof path, "%s/%s", t_golden(), dir);
    bitnet_model_params mp = bitnet_model_default_params();
    mp.kernels = ks;
    bitnet_model *m = NULL;
    snprintf(name, sizeof name, "%s[%s,t%d] load", dir, ks, threads);
    bitnet_status st = bitnet_model_load_ex(path, &mp, &m);
    CHECK(name, st == BITNET_OK, "%s", bitnet_last_error());
    if (st) return;
    snprintf(name, sizeof name, "%s[%s] weights record their layout and device", dir, ks);
    const bn_tmat *w = &m->layers[0].wq;
    CHECK(name, w->device == BN_DEV_CPU && w->layout == (!strcmp(ks, "ref") ? BN_LAYOUT_TERN_REF : strstr(ks, "-b3") ? BN_LAYOUT_TERN_B3 : BN_LAYOUT_TERN_I16) &&
          w->bytes == m->k->packed_size(w->rows, w->cols), "layout %d device %d bytes %zu", w->layout, w->device, w->bytes);
    int32_t pool[64]; int np = 0;
    for (int i = 0; i < 64; i++) pool[np++] = (int32_t)((i * 37 + 11) % m->cfg.vocab_size);
    refs r;
    snprintf(name, sizeof name, "%s[%s,t%d] separate runs", dir, ks, threads);
    int ok = make_refs(m, pool, np, threads, &r);
    CHECK(name, ok, "%s", bitnet_last_error());
    if (!ok) { bitnet_model_free(m); return; }
    bitnet_ctx *c = NULL;
    bitnet_ctx_params p = bitnet_ctx_default_params();
    p.n_ctx = MAXT; p.n_threads = threads; p.n_seq_max = NS;
    bitnet_ctx_new(m, &p, &c);
    double worst = 0; int ids_ok = 1, st_ok = 1;
    /* prefill: sequence 0 contiguous (GEMM attention path), 1..3 interleaved round-robin */
    bbuf b = {0};
    for (int i = 0; i < LEN[0]; i++) add(&b, &r, 0, i, 1);
    for (int i = 0; i < LEN[3]; i++) for (int s = 1; s < NS; s++) if (i < LEN[s]) add(&b, &r, s, i, 1);
    run_and_compare(c, &r, &b, 1, 1, "prefill", &worst, &ids_ok, &st_ok);
    int fed[NS]; for (int s = 0; s < NS; s++) fed[s] = LEN[s];
    for (int d = 0; d < DEC; d++) {
        bbuf bd = {0};
        for (int j = 0; j < 2; j++)          /* first tokens of each sequence, then second ones */
            for (int k = 0; k < NS; k++) {
                int s = (k + d) % NS;
                if (j < CNT[s][d]) add(&bd, &r, s, fed[s] + j, 1);
            }
        for (int s = 0; s < NS; s++) fed[s] += CNT[s][d];
        run_and_compare(c, &r, &bd, d % 2, d % 3 != 2, "decode", &worst, &ids_ok, &st_ok);
    }
    snprintf(name, sizeof name, "%s[%s,t%d] batched decode runs", dir, ks, threads);
    CHECK(name, st_ok, "a decode call failed");
    for (int s = 0; s < NS; s++) if (bitnet_ctx_seq_pos(c, s) != LEN[s] + DEC) st_ok = 0;
    snprintf(name, sizeof name, "%s[%s,t%d] sequence positions after the batches", dir, ks, threads);
    CHECK(name, st_ok, "positions %d %d %d %d", bitnet_ctx_seq_pos(c, 0), bitnet_ctx_seq_pos(c, 1), bitnet_ctx_seq_pos(c, 2), bitnet_ctx_seq_pos(c, 3));
    snprintf(name, sizeof name, "%s[%s,t%d] batched logits == separate logits", dir, ks, threads);
    CHECK(name, worst <= 1e-3 * r.sd, "max|d|/std=%.3g", worst / r.sd);
    printf("# %s: max|d|/std=%.2e\n", name, worst / r.sd);
    snprintf(name, sizeof name, "%s[%s,t%d] batched argmax ids == separate", dir, ks, threads);
    CHECK(name, ids_ok, "an argmax differs");
    bitnet_ctx_free(c);
    for (int s = 0; s < NS; s++) free(r.ref[s]);
    bitnet_model_free(m);
}

/* Positions of all sequences as one comparable value. */
static void positions(bitnet_ctx *c, int *p) { for (int s = 0; s < NS; s++) p[s] = bitnet_ctx_seq_pos(c, s); }

static void bad_batches(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/bitnet-b158-packed", t_golden());
    bitnet_model *m = NULL;
    if (bitnet_model_load(path, &m)) { CHECK("bad batches: load", 0, "%s", bitnet_last_error()); return; }
    int V = m->cfg.vocab_size;
    bitnet_ctx *c = NULL;
    bitnet_ctx_params p = bitnet_ctx_default_params();
    p.n_ctx = 16; p.n_seq_max = NS;
    CHECK("ctx with 4 sequences", bitnet_ctx_new(m, &p, &c) == BITNET_OK, "%s", bitnet_last_error());
    int32_t tok[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    int32_t seq[20] = {0, 1, 1, 2, 0};
    bitnet_batch ok = {5, tok, NULL, seq, NULL};
    float *lg = malloc((size_t)20 * V * 4), *lg2 = malloc((size_t)20 * V * 4);
    CHECK("valid 3-sequence batch", bitnet_ctx_decode(c, &ok, lg) == BITNET_OK, "%s", bitnet_last_error());
    int before[NS], after[NS];
    positions(c, before);
    CHECK("positions after it", before[0] == 2 && before[1] == 2 && before[2] == 1 && before[3] == 0, "%d %d %d %d", before[0], before[1], before[2], before[3]);
    /* the next valid step, from a copy of this state: the reference for "cache unchanged" */
    int32_t nt[2] = {21, 22}, ns[2] = {0, 3};
    bitnet_batch step = {2, nt, NULL, ns, NULL};
    CHECK("valid step", bitnet_ctx_decode(c, &step, lg) == BITNET_OK, "%s", bitnet_last_error());
    bitnet_ctx_seq_truncate(c, 0, 2); bitnet_ctx_seq_truncate(c, 3, 0);
    struct { const char *name; int n; int32_t tok[4], pos[4], seq[4]; int use_pos; } bad[] = {
        {"sequence id == n_seq_max", 2, {1, 2}, {0}, {0, 4}, 0},
        {"sequence id -1", 2, {1, 2}, {0}, {1, -1}, 0},
        {"position gap", 2, {1, 2}, {2, 3}, {0, 1}, 1},
        {"position repeated", 2, {1, 2}, {2, 2}, {0, 0}, 1},
        {"position behind", 1, {1}, {1}, {0}, 1},
        {"token id == vocab", 2, {1, 0}, {0}, {0, 2}, 0},
        {"token id -1", 2, {1, -1}, {0}, {0, 2}, 0},
    };
    bad[5].tok[1] = V;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bitnet_batch bb = {bad[i].n, bad[i].tok, bad[i].use_pos ? bad[i].pos : NULL, bad[i].seq, NULL};
        bitnet_status s = bitnet_ctx_decode(c, &bb, lg2);
        positions(c, after);
        char name[128]; snprintf(name, sizeof name, "bad batch: %s -> BITNET_ERR_ARG, positions unchanged", bad[i].name);
        CHECK(name, s == BITNET_ERR_ARG && !memcmp(before, after, sizeof before), "status %d (%s)", (int)s, bitnet_last_error());
    }
    /* overflow: sequence 1 holds 2 of 16; a valid entry first, then 15 for sequence 1 */
    int32_t os[16]; os[0] = 2; for (int i = 1; i < 16; i++) os[i] = 1;
    bitnet_batch ov = {16, tok, NULL, os, NULL};
    bitnet_status s = bitnet_ctx_decode(c, &ov, lg2);
    positions(c, after);
    CHECK("bad batch: overflow of one sequence -> BITNET_ERR_ARG, positions unchanged", s == BITNET_ERR_ARG && !memcmp(before, after, sizeof before), "status %d", (int)s);
    bitnet_batch empty = {0, tok, NULL, NULL, NULL};
    CHECK("bad batch: empty", bitnet_ctx_decode(c, &empty, lg2) == BITNET_ERR_ARG, "accepted");
    CHECK("bad batch: NULL", bitnet_ctx_decode(c, NULL, lg2) == BITNET_ERR_ARG, "accepted");
    /* exactly full is fine: 14 more for sequence 1 */
    bitnet_batch full = {14, tok, NULL, os + 2, NULL};
    for (int i = 0; i < 14; i++) os[2 + i] = 1;
    CHECK("a batch filling one sequence exactly", bitnet_ctx_decode(c, &full, NULL) == BITNET_OK, "%s", bitnet_last_error());
    CHECK("its position", bitnet_ctx_seq_pos(c, 1) == 16, "%d", bitnet_ctx_seq_pos(c, 1));
    /* after all that, the same step gives the same logits: the caches of 0 and 3 are intact */
    CHECK("valid step after the bad batches", bitnet_ctx_decode(c, &step, lg2) == BITNET_OK, "%s", bitnet_last_error());
    CHECK("same logits as before the bad batches", !memcmp(lg, lg2, (size_t)2 * V * 4), "differ");
    /* truncate / positions API */
    CHECK("seq_pos of a bad id is -1", bitnet_ctx_seq_pos(c, NS) == -1 && bitnet_ctx_seq_pos(c, -1) == -1, "not -1");
    CHECK("seq_truncate bad sequence", bitnet_ctx_seq_truncate(c, NS, 0) == BITNET_ERR_ARG, "accepted");
    CHECK("seq_truncate past the end", bitnet_ctx_seq_truncate(c, 2, 2) == BITNET_ERR_ARG, "accepted");
    CHECK("seq_truncate to 0 clears", bitnet_ctx_seq_truncate(c, 2, 0) == BITNET_OK && bitnet_ctx_seq_pos(c, 2) == 0, "no");
    CHECK("ctx_pos is sequence 0", bitnet_ctx_pos(c) == bitnet_ctx_seq_pos(c, 0), "%d vs %d", bitnet_ctx_pos(c), bitnet_ctx_seq_pos(c, 0));
    CHECK("ctx_truncate acts on sequence 0", bitnet_ctx_truncate(c, 1) == BITNET_OK && bitnet_ctx_seq_pos(c, 0) == 1 && bitnet_ctx_seq_pos(c, 3) == 1, "no");
    bitnet_ctx_reset(c);
    positions(c, after);
    CHECK("reset clears every sequence", !after[0] && !after[1] && !after[2] && !after[3], "no");
    bitnet_ctx_free(c);
    free(lg); free(lg2);
    bitnet_model_free(m);
}

/* seq_copy: a prompt of 9 tokens (more than half of n_ctx 16) decoded once in sequence 0 and
 * copied into 1 and 2 continues in each exactly as the prompt decoded in a fresh context would,
 * and sequence 3 (other tokens, next to 2 in the cache) is untouched by the copies: a copy that
 * moves more rows than the prompt has (e.g. f32-sized rows of an f16 cache) spills into it. */
static void seq_copy(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/bitnet-b158-packed", t_golden());
    bitnet_model *m = NULL;
    if (bitnet_model_load(path, &m)) { CHECK("seq_copy: load", 0, "%s", bitnet_last_error()); return; }
    int V = m->cfg.vocab_size;
    bitnet_ctx *c = NULL, *one = NULL;
    bitnet_ctx_params p = bitnet_ctx_default_params();
    p.n_ctx = 16; p.n_seq_max = 4; p.n_threads = 1;
    bitnet_ctx_new(m, &p, &c);
    p.n_seq_max = 1;
    bitnet_ctx_new(m, &p, &one);
    enum { NP = 9 };
    int32_t prompt[NP] = {5, 17, 3, 99, 42, 7, 8, 61, 13}, other[4] = {1, 2, 3, 4}, next[4] = {11, 23, 31, 19}, s3[4] = {3, 3, 3, 3};
    float *lg = malloc((size_t)4 * V * 4), *ref = malloc((size_t)V * 4);
    bitnet_batch ob = {4, other, NULL, s3, NULL};
    CHECK("seq_copy: sequence 3 holds other tokens", bitnet_ctx_decode(c, &ob, NULL) == BITNET_OK, "%s", bitnet_last_error());
    CHECK("seq_copy: the prompt in sequence 0", bitnet_ctx_eval(c, prompt, NP, NULL, 0) == BITNET_OK, "%s", bitnet_last_error());
    CHECK("seq_copy 0 -> 1, 0 -> 2", bitnet_ctx_seq_copy(c, 0, 1) == BITNET_OK && bitnet_ctx_seq_copy(c, 0, 2) == BITNET_OK, "%s", bitnet_last_error());
    CHECK("seq_copy: positions follow the source", bitnet_ctx_seq_pos(c, 1) == NP && bitnet_ctx_seq_pos(c, 2) == NP && bitnet_ctx_seq_pos(c, 3) == 4,
          "%d %d %d", bitnet_ctx_seq_pos(c, 1), bitnet_ctx_seq_pos(c, 2), bitnet_ctx_seq_pos(c, 3));
    CHECK("seq_copy onto itself is nothing", bitnet_ctx_seq_copy(c, 1, 1) == BITNET_OK && bitnet_ctx_seq_pos(c, 1) == NP, "no");
    CHECK("seq_copy bad ids -> BITNET_ERR_ARG", bitnet_ctx_seq_copy(c, 0, 4) == BITNET_ERR_ARG && bitnet_ctx_seq_copy(c, -1, 0) == BITNET_ERR_ARG, "accepted");
    int32_t sq[4] = {0, 1, 2, 3};
    bitnet_batch nb = {4, next, NULL, sq, NULL};
    CHECK("seq_copy: one token in each sequence", bitnet_ctx_decode(c, &nb, lg) == BITNET_OK, "%s", bitnet_last_error());
    double worst = 0, worst3 = 0; int same = 1;
    for (int s = 0; s < 4; s++) {
        bitnet_ctx_reset(one);
        int32_t seqtoks[NP + 1];
        int n = s < 3 ? NP : 4;
        memcpy(seqtoks, s < 3 ? prompt : other, (size_t)n * sizeof *seqtoks); seqtoks[n] = next[s];
        bitnet_ctx_eval(one, seqtoks, n + 1, ref, 0);
        double *w = s < 3 ? &worst : &worst3;
        for (int i = 0; i < V; i++) { double d = fabs(lg[(size_t)s * V + i] - ref[i]); if (d > *w) *w = d; }
        same &= argmax(lg + (size_t)s * V, V) == argmax(ref, V);
    }
    CHECK("seq_copy: each copy continues like the prompt alone (max |d| <= 1e-4, same argmax)", worst <= 1e-4 && same, "max |d| %g, argmax same %d", worst, same);
    CHECK("seq_copy: the neighbouring sequence is untouched (max |d| <= 1e-4)", worst3 <= 1e-4, "max |d| %g", worst3);
    free(lg); free(ref);
    bitnet_ctx_free(c); bitnet_ctx_free(one);
    bitnet_model_free(m);
}

static void numeric(void) {
    bn_config cf;
    memset(&cf, 0, sizeof cf);
    cf.family = BN_FAM_BITNET; cf.vocab_size = 64; cf.hidden_size = 64; cf.intermediate_size = 128;
    cf.n_layers = 2; cf.n_heads = 2; cf.n_kv_heads = 1; cf.head_dim = 32; cf.max_pos = 64;
    cf.rope_theta = 10000.f; cf.norm_eps = 1e-5f; cf.act = BN_ACT_RELU2; cf.tied = 1; cf.bos_id = cf.eos_id = -1;
    bitnet_model *m = NULL;
    CHECK("synthetic model", bn_model_synthetic(&cf, NULL, 7, &m) == BITNET_OK, "%s", bitnet_last_error());
    if (!m) return;
    bitnet_ctx *c = NULL;
    bitnet_ctx_params p = bitnet_ctx_default_params();
    p.n_ctx = 16; p.n_seq_max = 2;
    bitnet_ctx_new(m, &p, &c);
    int32_t ids[3] = {1, 2, 3}, seq[3] = {0, 1, 1};
    float *lg = malloc((size_t)3 * 64 * 4);
    CHECK("healthy model evaluates", bitnet_ctx_eval(c, ids, 2, lg, 1) == BITNET_OK, "%s", bitnet_last_error());
    m->layers[1].wdown.scale = 3e38f; /* poison: the residual stream overflows to inf */
    bitnet_status s = bitnet_ctx_eval(c, ids, 1, lg, 0);
    CHECK("poisoned model: eval -> BITNET_ERR_NUMERIC", s == BITNET_ERR_NUMERIC, "status %d, logit[0] %g", (int)s, lg[0]);
    CHECK("its message", strstr(bitnet_last_error(), "non-finite") != NULL, "%s", bitnet_last_error());
    CHECK("poisoned model: position unchanged", bitnet_ctx_pos(c) == 2, "%d", bitnet_ctx_pos(c));
    bitnet_batch b = {3, ids, NULL, seq, NULL};
    s = bitnet_ctx_decode(c, &b, lg);
    CHECK("poisoned model: decode -> BITNET_ERR_NUMERIC", s == BITNET_ERR_NUMERIC, "status %d", (int)s);
    s = bitnet_ctx_decode(c, &b, NULL);
    CHECK("poisoned model, no logits asked: decode -> BITNET_ERR_NUMERIC", s == BITNET_ERR_NUMERIC, "status %d", (int)s);
    CHECK("poisoned model: positions unchanged", bitnet_ctx_seq_pos(c, 0) == 2 && bitnet_ctx_seq_pos(c, 1) == 0, "%d %d", bitnet_ctx_seq_pos(c, 0), bitnet_ctx_seq_pos(c, 1));
    free(lg);
    bitnet_ctx_free(c);
    bitnet_model_free(m);
}

int main(void) {
    const char *const *ks = bitnet_kernel_sets();
    for (int k = 0; ks[k]; k++)
        for (int t = 1; t <= 2; t++) {
            batch_equals_separate("bitnet-b158-packed", ks[k], t);
            batch_equals_separate("bitnet-1bitllm", ks[k], t);
        }
    bad_batches();
    seq_copy();
    numeric();
    T_DONE();
}
