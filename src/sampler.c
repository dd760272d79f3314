/* sampler.c — picks the next token from logits: penalties (repeat, frequency, presence over
 * the last N accepted ids, llama.cpp semantics), then greedy (temperature 0) or
 * top-k -> top-p -> min-p -> temperature -> softmax -> draw, with a seeded RNG so the same seed
 * and settings give the same tokens. Not: grammar or beam search. */
#include "util.h"
#include <math.h>

struct bitnet_sampler {
    bitnet_sampler_params p;
    int vocab;
    uint64_t rng;
    int32_t *hist; int hist_n, hist_cap, hist_head; /* ring of the last penalty_last_n ids */
    int *count;      /* [vocab] occurrences in the window */
    struct cand { float logit; int id; } *cand; /* [vocab] */
};

void bitnet_sampler_params_default(bitnet_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f; p->top_k = 40; p->top_p = 0.95f; p->min_p = 0.05f;
    p->repeat_penalty = 1.0f; p->penalty_last_n = 64; p->seed = 42;
}

bitnet_status bitnet_sampler_new(const bitnet_sampler_params *p, int vocab, bitnet_sampler **out) {
    *out = NULL;
    if (vocab <= 0) return bn_err(BITNET_ERR_ARG, "sampler: vocab size %d", vocab);
    if (!(p->temperature >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->penalty_last_n < 0)
        return bn_err(BITNET_ERR_ARG, "sampler: parameter out of range (temp >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, repeat_penalty > 0)");
    bitnet_sampler *s = calloc(1, sizeof *s);
    if (!s) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    s->p = *p; s->vocab = vocab;
    s->rng = p->seed ^ 0x853c49e6748fea9bull;
    s->hist_cap = p->penalty_last_n ? p->penalty_last_n : 64;
    s->hist = calloc((size_t)s->hist_cap, sizeof *s->hist);
    s->count = calloc((size_t)vocab, sizeof *s->count);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    if (!s->hist || !s->count || !s->cand) { bitnet_sampler_free(s); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    *out = s;
    return BITNET_OK;
}

void bitnet_sampler_free(bitnet_sampler *s) {
    if (!s) return;
    free(s->hist); free(s->count); free(s->cand); free(s);
}

void bitnet_sampler_accept(bitnet_sampler *s, int id) {
    if (id < 0 || id >= s->vocab) return;
    if (s->hist_n == s->hist_cap) { s->count[s->hist[s->hist_head]]--; s->hist_n--; }
    s->hist[s->hist_head] = id; s->count[id]++;
    s->hist_head = (s->hist_head + 1) % s->hist_cap; s->hist_n++;
}

static double next_uniform(bitnet_sampler *s) { /* splitmix64 -> [0,1) */
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull; z ^= z >> 31;
    return (z >> 11) * (1.0 / 9007199254740992.0);
}

static int cand_cmp(const void *a, const void *b) {
    float x = ((const struct cand *)a)->logit, y = ((const struct cand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    return ((const struct cand *)a)->id - ((const struct cand *)b)->id;
}

int bitnet_sampler_sample(bitnet_sampler *s, float *logits) {
    const bitnet_sampler_params *p = &s->p;
    int V = s->vocab;
    if (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.f || p->presence_penalty != 0.f) {
        for (int i = 0, k = s->hist_head; i < s->hist_n; i++) {
            k = (k - 1 + s->hist_cap) % s->hist_cap;
            int id = s->hist[k];
            if (s->count[id] <= 0) continue;
            float *l = &logits[id];
            /* each distinct id once: mark by negating count, restore below */
            if (p->repeat_penalty != 1.0f) *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
            *l -= s->count[id] * p->frequency_penalty + p->presence_penalty;
            s->count[id] = -s->count[id];
        }
        for (int i = 0; i < s->hist_n; i++) { int id = s->hist[i]; if (s->count[id] < 0) s->count[id] = -s->count[id]; }
    }
    if (p->temperature <= 0.f) {
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        return best;
    }
    int n = 0;
    for (int v = 0; v < V; v++) if (isfinite(logits[v]) || logits[v] > 0) { s->cand[n].logit = logits[v]; s->cand[n].id = v; n++; }
    if (n == 0) return 0;
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (k < n) { /* partial selection: sort only what we keep */
        qsort(s->cand, (size_t)n, sizeof *s->cand, cand_cmp);
        n = k;
    } else qsort(s->cand, (size_t)n, sizeof *s->cand, cand_cmp);
    /* softmax at temperature 1 for top-p / min-p filtering (llama.cpp order: top-k, top-p, min-p, temp) */
    double mx = s->cand[0].logit, sum = 0;
    for (int i = 0; i < n; i++) sum += exp(s->cand[i].logit - mx);
    if (p->top_p < 1.0f) {
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
    for (int i = 0; i < n; i++) tot += exp((s->cand[i].logit - mx) / p->temperature);
    double r = next_uniform(s) * tot, acc = 0;
    for (int i = 0; i < n; i++) { acc += exp((s->cand[i].logit - mx) / p->temperature); if (r < acc) return s->cand[i].id; }
    return s->cand[n - 1].id;
}
