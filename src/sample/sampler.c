/* sampler.c — the sampler chain (include/bitnet.h): logit bias, then penalties (repeat,
 * frequency, presence over the penalty window, llama.cpp semantics), then greedy (temperature 0)
 * or top-k -> top-p -> min-p -> temperature -> softmax -> draw, with a seeded RNG so the same seed
 * and settings give the same tokens. The seed can come from the OS (BITNET_SEED_RANDOM).
 * Candidates are ordered by a stable radix sort (descending logit, lowest id first on ties: the
 * order a comparison sort with that rule gives, which tests/test_sampler.c checks), and each
 * candidate's weight is computed once, so a draw over a whole vocabulary costs a few passes; with
 * top-k only the candidates up to the k-th's 22-bit key prefix are sorted.
 * Not: grammars, beam search, mirostat; no knowledge of the model or the context. */
#include "core/util.h"
#include "core/rng.h"
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

struct bitnet_sampler {
    bitnet_sampler_params p;
    int vocab;
    uint64_t seed, rng;
    bitnet_logit_bias *bias;  /* [p.n_logit_bias], our copy */
    int32_t *hist; int hist_n, hist_cap, hist_head; /* ring of the last penalty_last_n ids (N > 0) */
    int *count;      /* [vocab] occurrences in the window */
    int32_t *distinct; int n_distinct; /* ids with count > 0, in no order */
    int *slot;       /* [vocab] index of id in distinct, -1 if absent */
    struct cand { float logit; int id; } *cand, *tmp; /* [vocab] candidates; radix sort scratch */
    uint32_t *key, *ktmp;  /* [vocab] sort keys of cand / tmp */
    double *w;             /* [vocab] weight of each sorted candidate in the draw */
};

bitnet_sampler_params bitnet_sampler_default_params(void) {
    bitnet_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f; p.top_k = 40; p.top_p = 0.95f; p.min_p = 0.05f;
    p.repeat_penalty = 1.0f; p.penalty_last_n = 64; p.seed = BITNET_SEED_RANDOM;
    return p;
}

void bitnet_sampler_params_default(bitnet_sampler_params *p) { *p = bitnet_sampler_default_params(); }

/* A seed from the OS (/dev/urandom), else from the clock, pid and an address; never
 * BITNET_SEED_RANDOM itself. */
static uint64_t os_seed(void) {
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&s, sizeof s, 1, f) != 1) {
        struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&s;
    }
    if (f) fclose(f);
    return s == BITNET_SEED_RANDOM ? s - 1 : s;
}

bitnet_status bitnet_sampler_new(const bitnet_sampler_params *pp, int vocab, bitnet_sampler **out) {
    *out = NULL;
    bitnet_sampler_params p = pp ? *pp : bitnet_sampler_default_params();
    if (vocab <= 0) return bn_err(BITNET_ERR_ARG, "sampler: vocab size %d", vocab);
    if (!(p.temperature >= 0) || p.top_k < 0 || !(p.top_p > 0 && p.top_p <= 1) || !(p.min_p >= 0 && p.min_p <= 1) ||
        !(p.repeat_penalty > 0) || !isfinite(p.repeat_penalty) || !isfinite(p.frequency_penalty) ||
        !isfinite(p.presence_penalty) || p.penalty_last_n < -1)
        return bn_err(BITNET_ERR_ARG, "sampler: parameter out of range (temp >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, "
                      "repeat_penalty > 0, finite penalties, penalty_last_n >= -1)");
    if (p.n_logit_bias < 0 || (p.n_logit_bias > 0 && !p.logit_bias))
        return bn_err(BITNET_ERR_ARG, "sampler: %d logit bias entries at %p", p.n_logit_bias, (const void *)p.logit_bias);
    for (int i = 0; i < p.n_logit_bias; i++) {
        const bitnet_logit_bias *b = &p.logit_bias[i];
        if (b->token < 0 || b->token >= vocab)
            return bn_err(BITNET_ERR_ARG, "sampler: logit bias token %d is out of the vocabulary (%d)", (int)b->token, vocab);
        if (isnan(b->bias) || b->bias == INFINITY)
            return bn_err(BITNET_ERR_ARG, "sampler: logit bias for token %d is %g (must be finite or -inf)", (int)b->token, b->bias);
    }
    bitnet_sampler *s = calloc(1, sizeof *s);
    if (!s) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    s->p = p; s->vocab = vocab;
    s->seed = p.seed == BITNET_SEED_RANDOM ? os_seed() : p.seed;
    s->hist_cap = p.penalty_last_n > 0 ? p.penalty_last_n : 0;
    if (p.n_logit_bias) s->bias = malloc((size_t)p.n_logit_bias * sizeof *s->bias);
    if (s->hist_cap) s->hist = malloc((size_t)s->hist_cap * sizeof *s->hist);
    s->count = malloc((size_t)vocab * sizeof *s->count);
    s->slot = malloc((size_t)vocab * sizeof *s->slot);
    s->distinct = malloc((size_t)vocab * sizeof *s->distinct);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->tmp = malloc((size_t)vocab * sizeof *s->tmp);
    s->key = malloc((size_t)vocab * sizeof *s->key);
    s->ktmp = malloc((size_t)vocab * sizeof *s->ktmp);
    s->w = malloc((size_t)vocab * sizeof *s->w);
    if ((p.n_logit_bias && !s->bias) || (s->hist_cap && !s->hist) || !s->count || !s->slot || !s->distinct || !s->cand ||
        !s->tmp || !s->key || !s->ktmp || !s->w) {
        bitnet_sampler_free(s);
        return bn_err(BITNET_ERR_NOMEM, "out of memory");
    }
    if (p.n_logit_bias) memcpy(s->bias, p.logit_bias, (size_t)p.n_logit_bias * sizeof *s->bias);
    s->p.logit_bias = s->bias;
    bitnet_sampler_reset(s);
    *out = s;
    return BITNET_OK;
}

void bitnet_sampler_free(bitnet_sampler *s) {
    if (!s) return;
    free(s->bias); free(s->hist); free(s->count); free(s->slot); free(s->distinct); free(s->cand);
    free(s->tmp); free(s->key); free(s->ktmp); free(s->w); free(s);
}

void bitnet_sampler_reset(bitnet_sampler *s) {
    s->rng = s->seed ^ 0x853c49e6748fea9bull;
    s->hist_n = s->hist_head = 0;
    s->n_distinct = 0;
    memset(s->count, 0, (size_t)s->vocab * sizeof *s->count);
    for (int v = 0; v < s->vocab; v++) s->slot[v] = -1;
}

uint64_t bitnet_sampler_seed(const bitnet_sampler *s) { return s->seed; }

/* count[id] += d, keeping the distinct list in step. */
static void count_add(bitnet_sampler *s, int id, int d) {
    int c = s->count[id] += d;
    if (c == d && d > 0) { s->slot[id] = s->n_distinct; s->distinct[s->n_distinct++] = id; }
    else if (c == 0) {
        int k = s->slot[id], last = s->distinct[--s->n_distinct];
        s->distinct[k] = last; s->slot[last] = k; s->slot[id] = -1;
    }
}

void bitnet_sampler_accept(bitnet_sampler *s, int id) {
    if (id < 0 || id >= s->vocab || s->p.penalty_last_n == 0) return;
    if (s->hist_cap) { /* window of N: evict the oldest */
        if (s->hist_n == s->hist_cap) { count_add(s, s->hist[s->hist_head], -1); s->hist_n--; }
        s->hist[s->hist_head] = id;
        s->hist_head = (s->hist_head + 1) % s->hist_cap; s->hist_n++;
    }
    count_add(s, id, 1);
}

static double next_uniform(bitnet_sampler *s) { /* splitmix64 -> [0,1) */
    return (bn_splitmix64(&s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* A key whose ascending order is the descending order of the (non-NaN) logit f, -0 equal to +0. */
static uint32_t desc_key(float f) {
    if (f == 0.f) f = 0.f;
    uint32_t u; memcpy(&u, &f, 4);
    u = u & 0x80000000u ? ~u : u | 0x80000000u;   /* ascending with f */
    return ~u;
}

/* Sort s->cand[0..n) (in id order on entry) by descending logit, ties in id order: a stable LSD
 * radix sort on desc_key, digits of 11 bits (the three histograms from one pass; a digit that
 * is the same for every candidate is skipped). */
static void sort_cands(bitnet_sampler *s, int n) {
    struct cand *a = s->cand, *b = s->tmp;
    uint32_t *ka = s->key, *kb = s->ktmp;
    int cnt[3][2048] = {{0}};
    for (int i = 0; i < n; i++) {
        uint32_t k = ka[i] = desc_key(a[i].logit);
        cnt[0][k & 2047]++; cnt[1][(k >> 11) & 2047]++; cnt[2][k >> 22]++;
    }
    for (int d = 0; d < 3; d++) {
        int shift = 11 * d, *c = cnt[d];
        if (c[(ka[0] >> shift) & 2047] == n) continue;   /* one digit value: the order stays */
        for (int v = 0, o = 0; v < 2048; v++) { int x = c[v]; c[v] = o; o += x; }
        for (int i = 0; i < n; i++) { int o = c[(ka[i] >> shift) & 2047]++; b[o] = a[i]; kb[o] = ka[i]; }
        struct cand *t = a; a = b; b = t;
        uint32_t *kt = ka; ka = kb; kb = kt;
    }
    if (a != s->cand) memcpy(s->cand, a, (size_t)n * sizeof *a);
}

/* With top-k (0 < k < n): keep in s->cand[0..n) (id order kept) only the candidates whose key
 * is, in its top 22 bits (two 11-bit digits, counted in two passes), at most the k-th's in
 * sorted order: a superset of the k that the full sort would put first, in the same relative
 * order after sort_cands (stable, same keys), so the draw is unchanged. Returns the new n
 * (>= k); two counting passes and a compaction instead of sorting the whole vocabulary. */
static int select_top(bitnet_sampler *s, int n, int k) {
    int cnt[2048] = {0}, cnt2[2048] = {0};
    uint32_t *key = s->key;
    for (int i = 0; i < n; i++) cnt[(key[i] = desc_key(s->cand[i].logit)) >> 21]++;
    uint32_t b = 0; int below = 0;
    while (below + cnt[b] < k) below += cnt[b++];
    for (int i = 0; i < n; i++) if (key[i] >> 21 == b) cnt2[(key[i] >> 10) & 2047]++;
    uint32_t b2 = 0;
    while (below + cnt2[b2] < k) below += cnt2[b2++];
    uint32_t lim = b << 11 | b2;   /* keep key >> 10 <= lim */
    int m = 0;
    for (int i = 0; i < n; i++) if (key[i] >> 10 <= lim) s->cand[m++] = s->cand[i];
    return m;
}

/* Penalties on logits, each distinct id in the window once (llama.cpp order: repeat, then
 * frequency * count + presence). */
static void apply_penalties(const bitnet_sampler *s, float *logits) {
    const bitnet_sampler_params *p = &s->p;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.f && p->presence_penalty == 0.f) return;
    for (int i = 0; i < s->n_distinct; i++) {
        int id = s->distinct[i];
        float *l = &logits[id];
        if (p->repeat_penalty != 1.0f) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= s->count[id] * p->frequency_penalty + p->presence_penalty;
    }
}

int bitnet_sampler_sample(bitnet_sampler *s, float *logits) {
    const bitnet_sampler_params *p = &s->p;
    int V = s->vocab;
    for (int i = 0; i < p->n_logit_bias; i++) logits[s->bias[i].token] += s->bias[i].bias;
    apply_penalties(s, logits);
    if (p->temperature <= 0.f) { /* argmax over pickable logits, lowest id on ties */
        int best = -1;
        for (int v = 0; v < V; v++)
            if (logits[v] > -INFINITY && (best < 0 || logits[v] > logits[best])) best = v;
        return best;
    }
    int n = 0;
    for (int v = 0; v < V; v++) if (logits[v] > -INFINITY) { s->cand[n].logit = logits[v]; s->cand[n].id = v; n++; }
    if (n == 0) return -1;
    if (p->top_k > 0 && p->top_k < n) n = select_top(s, n, p->top_k);
    sort_cands(s, n);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    /* softmax at temperature 1 for top-p / min-p filtering (llama.cpp order: top-k, top-p, min-p, temp) */
    double mx = s->cand[0].logit, sum = 0;
    if (isinf(mx)) { /* +inf logits: they share the draw, nothing else can be picked */
        int k = 1; while (k < n && s->cand[k].logit == mx) k++;
        return s->cand[(int)(next_uniform(s) * k)].id;
    }
    if (p->top_p < 1.0f) {
        for (int i = 0; i < n; i++) sum += exp(s->cand[i].logit - mx);
        double cum = 0; int keep = n;
        for (int i = 0; i < n; i++) { cum += exp(s->cand[i].logit - mx) / sum; if (cum >= p->top_p) { keep = i + 1; break; } }
        n = keep;
    }
    if (p->min_p > 0.f) {
        double thr = log(p->min_p); int keep = 1;
        while (keep < n && s->cand[keep].logit - mx >= thr) keep++;
        n = keep;
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += s->w[i] = exp((s->cand[i].logit - mx) / p->temperature);
    double r = next_uniform(s) * tot, acc = 0;
    for (int i = 0; i < n; i++) { acc += s->w[i]; if (r < acc) return s->cand[i].id; }
    return s->cand[n - 1].id;
}
