/* test_sampler.c — the sampler chain: greedy, top-k, top-p, min-p, temperature, penalties and
 * their window (N, 0 = off, -1 = everything since reset), logit bias (copied at new, applied
 * first), random and reused seeds, reset; the draws equal a comparison-sort reference (the
 * sampler's original qsort code, kept here) on vocabularies with ties, +-0, +-inf. */
#include "t.h"
#include "bitnet.h"
#include "core/rng.h"

/* ---- the reference: candidates qsorted (descending logit, lowest id first), weights recomputed ---- */
struct rcand { float logit; int id; };
static int rcmp(const void *a, const void *b) {
    float x = ((const struct rcand *)a)->logit, y = ((const struct rcand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    return ((const struct rcand *)a)->id - ((const struct rcand *)b)->id;
}
/* One draw at temperature > 0 without penalties or bias; *rng is the sampler's RNG state
 * (seed ^ 0x853c49e6748fea9b after new/reset, as sampler.c seeds it). */
static int ref_sample(const bitnet_sampler_params *p, const float *logits, int V, uint64_t *rng, struct rcand *c) {
    int n = 0;
    for (int v = 0; v < V; v++) if (logits[v] > -INFINITY) { c[n].logit = logits[v]; c[n].id = v; n++; }
    if (n == 0) return -1;
    qsort(c, (size_t)n, sizeof *c, rcmp);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    double mx = c[0].logit, sum = 0;
    if (isinf(mx)) { int k = 1; while (k < n && c[k].logit == mx) k++; return c[(int)((bn_splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * k)].id; }
    for (int i = 0; i < n; i++) sum += exp(c[i].logit - mx);
    if (p->top_p < 1.0f) {
        double cum = 0; int keep = n;
        for (int i = 0; i < n; i++) { cum += exp(c[i].logit - mx) / sum; if (cum >= p->top_p) { keep = i + 1; break; } }
        n = keep;
    }
    if (p->min_p > 0.f) { double thr = log(p->min_p); int keep = 1; while (keep < n && c[keep].logit - mx >= thr) keep++; n = keep; }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += exp((c[i].logit - mx) / p->temperature);
    double r = (bn_splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * tot, acc = 0;
    for (int i = 0; i < n; i++) { acc += exp((c[i].logit - mx) / p->temperature); if (r < acc) return c[i].id; }
    return c[n - 1].id;
}

/* 200 draws per setting on vocabularies of 3, 2048 and 5000 ids whose logits are quantized to
 * 1/8 (many ties), with +-0, a few -inf (banned) and, in some rounds, +inf: same ids as ref. */
static int same_as_reference(void) {
    const struct { float temp, top_p, min_p; int top_k; } set[] = {
        {1, 1, 0, 0}, {0.7f, 0.9f, 0, 0}, {1.3f, 1, 0.05f, 0}, {0.8f, 0.95f, 0.05f, 40}, {2, 0.5f, 0, 3}, {1, 1, 0, 1}};
    const int vs[] = {3, 2048, 5000};
    uint64_t g = 12345;
    int ok = 1;
    for (int vi = 0; vi < 3; vi++) for (size_t si = 0; si < sizeof set / sizeof set[0]; si++) for (int round = 0; round < 3; round++) {
        int V = vs[vi];
        float *lg = malloc(V * 4), *l = malloc(V * 4);
        struct rcand *c = malloc(V * sizeof *c);
        for (int v = 0; v < V; v++) lg[v] = (float)((int)(bn_splitmix64(&g) % 97) - 48) / 8.0f;
        for (int v = 0; v < V; v += 7) lg[v] = (bn_splitmix64(&g) & 1) ? -0.0f : 0.0f;
        for (int v = 3; v < V; v += 11) lg[v] = -INFINITY;
        if (round == 2) { lg[V / 2] = INFINITY; lg[V - 1] = INFINITY; }
        bitnet_sampler_params p = bitnet_sampler_default_params();
        p.temperature = set[si].temp; p.top_p = set[si].top_p; p.min_p = set[si].min_p; p.top_k = set[si].top_k;
        p.seed = 1000 + (uint64_t)si * 10 + (uint64_t)round;
        bitnet_sampler *s; bitnet_sampler_new(&p, V, &s);
        uint64_t rng = p.seed ^ 0x853c49e6748fea9bull;
        for (int i = 0; i < 200 && ok; i++) {
            memcpy(l, lg, V * 4);
            int a = bitnet_sampler_sample(s, l), b = ref_sample(&p, lg, V, &rng, c);
            if (a != b) { fprintf(stderr, "  V %d setting %zu round %d draw %d: %d, reference %d\n", V, si, round, i, a, b); ok = 0; }
        }
        bitnet_sampler_free(s); free(lg); free(l); free(c);
    }
    return ok;
}

static int draw(bitnet_sampler_params *p, const float *lg, int V) {
    bitnet_sampler *s; bitnet_sampler_new(p, V, &s);
    float *l = malloc(V * 4); memcpy(l, lg, V * 4);
    int id = bitnet_sampler_sample(s, l);
    free(l); bitnet_sampler_free(s);
    return id;
}

int main(void) {
    bitnet_sampler_params p;
    float lg[5] = {1.0f, 3.0f, 2.9f, -1.0f, 0.5f};
    bitnet_sampler_params_default(&p); p.temperature = 0;
    CHECK("greedy = argmax", draw(&p, lg, 5) == 1, "");
    bitnet_sampler_params_default(&p); p.temperature = 5; p.top_k = 1; p.min_p = 0; p.top_p = 1;
    int ok = 1; for (uint64_t s = 0; s < 50; s++) { p.seed = s; ok &= draw(&p, lg, 5) == 1; }
    CHECK("top-k 1 is greedy at any temperature", ok, "");
    bitnet_sampler_params_default(&p); p.temperature = 5; p.top_k = 0; p.min_p = 0; p.top_p = 0.01f;
    ok = 1; for (uint64_t s = 0; s < 50; s++) { p.seed = s; ok &= draw(&p, lg, 5) == 1; }
    CHECK("tiny top-p keeps only the top token", ok, "");
    bitnet_sampler_params_default(&p); p.temperature = 5; p.top_k = 0; p.top_p = 1; p.min_p = 0.95f;
    ok = 1; for (uint64_t s = 0; s < 50; s++) { p.seed = s; ok &= draw(&p, lg, 5) == 1; }
    CHECK("min-p 0.95 drops id 2 (p2/p1 = e^-0.1 = 0.905 < 0.95)", ok, "");
    /* sampling frequencies follow softmax at temperature 1 */
    float l3[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    bitnet_sampler_params_default(&p); p.temperature = 1; p.top_k = 0; p.top_p = 1; p.min_p = 0; p.seed = 7;
    bitnet_sampler *s; bitnet_sampler_new(&p, 3, &s);
    int cnt[3] = {0};
    for (int i = 0; i < 20000; i++) { float l[3]; memcpy(l, l3, 12); cnt[bitnet_sampler_sample(s, l)]++; }
    bitnet_sampler_free(s);
    CHECK("frequencies match softmax (5 sigma)", fabs(cnt[0] / 20000.0 - 0.5) < 0.018 && fabs(cnt[1] / 20000.0 - 0.3) < 0.017 && fabs(cnt[2] / 20000.0 - 0.2) < 0.015,
          "%d %d %d", cnt[0], cnt[1], cnt[2]);
    /* temperature 0.5 sharpens: p ~ q^2 normalised -> 0.658, 0.237, 0.105 */
    p.temperature = 0.5f; bitnet_sampler_new(&p, 3, &s); memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < 20000; i++) { float l[3]; memcpy(l, l3, 12); cnt[bitnet_sampler_sample(s, l)]++; }
    bitnet_sampler_free(s);
    CHECK("temperature 0.5 squares the odds", fabs(cnt[0] / 20000.0 - 0.658) < 0.017 && fabs(cnt[2] / 20000.0 - 0.105) < 0.011, "%d %d %d", cnt[0], cnt[1], cnt[2]);
    /* same seed, same sequence; other seed, other sequence */
    bitnet_sampler_params_default(&p); p.temperature = 1; p.top_k = 0; p.top_p = 1; p.min_p = 0;
    int seqs[3][64];
    for (int r = 0; r < 3; r++) {
        p.seed = r < 2 ? 99 : 100;
        bitnet_sampler_new(&p, 3, &s);
        for (int i = 0; i < 64; i++) { float l[3]; memcpy(l, l3, 12); seqs[r][i] = bitnet_sampler_sample(s, l); }
        bitnet_sampler_free(s);
    }
    CHECK("same seed -> same draws", !memcmp(seqs[0], seqs[1], sizeof seqs[0]), "");
    CHECK("other seed -> other draws", memcmp(seqs[0], seqs[2], sizeof seqs[0]), "");
    /* repetition penalty (llama.cpp): positive logits divided, negative multiplied */
    bitnet_sampler_params_default(&p); p.temperature = 0; p.repeat_penalty = 2.0f;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1);
    float l5[5]; memcpy(l5, lg, 20);
    int id = bitnet_sampler_sample(s, l5);
    CHECK("repeat penalty: 3.0/2 = 1.5 < 2.9 -> picks 2", id == 2 && l5[1] == 1.5f, "id=%d l=%g", id, l5[1]);
    bitnet_sampler_free(s);
    bitnet_sampler_params_default(&p); p.temperature = 0; p.frequency_penalty = 0.1f; p.presence_penalty = 0.0f;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1); bitnet_sampler_accept(s, 1);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("frequency penalty: 3.0 - 2*0.1 = 2.8 < 2.9 -> picks 2", id == 2 && fabsf(l5[1] - 2.8f) < 1e-6f, "id=%d", id);
    bitnet_sampler_free(s);
    bitnet_sampler_params_default(&p); p.temperature = 0; p.presence_penalty = 0.05f;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1); bitnet_sampler_accept(s, 1);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("presence penalty counts once: 3.0 - 0.05 > 2.9 -> still 1", id == 1, "id=%d", id);
    bitnet_sampler_free(s);
    /* penalty window: after penalty_last_n other tokens, the old one is forgotten */
    bitnet_sampler_params_default(&p); p.temperature = 0; p.repeat_penalty = 2.0f; p.penalty_last_n = 2;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1); bitnet_sampler_accept(s, 3); bitnet_sampler_accept(s, 4);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("penalty window forgets old tokens", id == 1, "id=%d", id);
    bitnet_sampler_free(s);
    bitnet_sampler_params_default(&p); p.top_p = 0;
    CHECK("bad params rejected", bitnet_sampler_new(&p, 5, &s) == BITNET_ERR_ARG, "");
    p = bitnet_sampler_default_params(); p.penalty_last_n = -2;
    CHECK("penalty_last_n < -1 rejected", bitnet_sampler_new(&p, 5, &s) == BITNET_ERR_ARG, "");

    /* penalty window 0 = no penalties, -1 = every id since reset (llama.cpp) */
    p = bitnet_sampler_default_params(); p.temperature = 0; p.repeat_penalty = 2.0f; p.penalty_last_n = 0;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("penalty_last_n 0 disables the penalties", id == 1 && l5[1] == 3.0f, "id=%d l=%g", id, l5[1]);
    bitnet_sampler_free(s);
    p.penalty_last_n = -1;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1);
    for (int i = 0; i < 1000; i++) bitnet_sampler_accept(s, i % 2 ? 3 : 4);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("penalty_last_n -1 remembers every id (1000 later)", id == 2 && l5[1] == 1.5f, "id=%d l=%g", id, l5[1]);
    bitnet_sampler_reset(s);
    memcpy(l5, lg, 20); id = bitnet_sampler_sample(s, l5);
    CHECK("reset forgets the accepted ids", id == 1 && l5[1] == 3.0f, "id=%d l=%g", id, l5[1]);
    bitnet_sampler_free(s);

    /* logit bias: first in the chain, copied at new, validated */
    bitnet_logit_bias bias[2] = {{3, 10.0f}, {1, -INFINITY}};
    p = bitnet_sampler_default_params(); p.temperature = 0; p.logit_bias = bias; p.n_logit_bias = 1;
    CHECK("bias +10 on id 3 makes it the argmax", draw(&p, lg, 5) == 3, "");
    p.logit_bias = bias + 1;
    CHECK("bias -inf bans the argmax", draw(&p, lg, 5) == 2, "");
    p = bitnet_sampler_default_params(); p.temperature = 5; p.top_k = 1; p.logit_bias = bias; p.n_logit_bias = 1;
    bitnet_sampler_new(&p, 5, &s);
    bias[0].token = 0; /* the sampler keeps its own copy */
    ok = 1; for (int i = 0; i < 50; i++) { memcpy(l5, lg, 20); ok &= bitnet_sampler_sample(s, l5) == 3; }
    CHECK("bias comes before top-k, and is copied at new", ok, "");
    bitnet_sampler_free(s);
    bias[0].token = 3;
    /* order: bias, then penalties: (3.0 - 2) / 2 = 0.5; penalties first would give 1.5 - 2 = -0.5 */
    bitnet_logit_bias b2 = {1, -2.0f};
    p = bitnet_sampler_default_params(); p.temperature = 0; p.repeat_penalty = 2.0f; p.logit_bias = &b2; p.n_logit_bias = 1;
    bitnet_sampler_new(&p, 5, &s);
    bitnet_sampler_accept(s, 1);
    memcpy(l5, lg, 20); bitnet_sampler_sample(s, l5);
    CHECK("chain order: bias before penalties", l5[1] == 0.5f, "l=%g", l5[1]);
    bitnet_sampler_free(s);
    bitnet_logit_bias bad[3] = {{5, 1.0f}, {-1, 1.0f}, {2, NAN}};
    int rej = 1;
    for (int i = 0; i < 3; i++) { p.logit_bias = bad + i; p.n_logit_bias = 1; rej &= bitnet_sampler_new(&p, 5, &s) == BITNET_ERR_ARG; }
    p.logit_bias = NULL; p.n_logit_bias = 2; rej &= bitnet_sampler_new(&p, 5, &s) == BITNET_ERR_ARG;
    CHECK("bias out of vocab, negative, NaN or missing rejected", rej, "");
    bitnet_logit_bias all[5] = {{0, -INFINITY}, {1, -INFINITY}, {2, -INFINITY}, {3, -INFINITY}, {4, -INFINITY}};
    p = bitnet_sampler_default_params(); p.logit_bias = all; p.n_logit_bias = 5;
    int g0 = (p.temperature = 0, draw(&p, lg, 5)), g1 = (p.temperature = 1, draw(&p, lg, 5));
    CHECK("every token banned -> -1", g0 == -1 && g1 == -1, "%d %d", g0, g1);

    /* seeds: BITNET_SEED_RANDOM draws one from the OS (reported), and reusing it reproduces */
    p = bitnet_sampler_default_params(); p.temperature = 1; p.top_k = 0; p.top_p = 1; p.min_p = 0;
    CHECK("default seed is random", p.seed == BITNET_SEED_RANDOM, "");
    bitnet_sampler *r1, *r2, *r3;
    bitnet_sampler_new(&p, 3, &r1); bitnet_sampler_new(&p, 3, &r2);
    uint64_t s1 = bitnet_sampler_seed(r1), s2 = bitnet_sampler_seed(r2);
    CHECK("two random seeds differ", s1 != s2 && s1 != BITNET_SEED_RANDOM && s2 != BITNET_SEED_RANDOM, "%llx %llx",
          (unsigned long long)s1, (unsigned long long)s2);
    p.seed = s1; bitnet_sampler_new(&p, 3, &r3);
    int same = bitnet_sampler_seed(r3) == s1, diff = 0, again = 1, d1[64];
    for (int i = 0; i < 64; i++) {
        float a[3], b[3], c[3]; memcpy(a, l3, 12); memcpy(b, l3, 12); memcpy(c, l3, 12);
        d1[i] = bitnet_sampler_sample(r1, a);
        same &= d1[i] == bitnet_sampler_sample(r3, b);
        diff |= d1[i] != bitnet_sampler_sample(r2, c);
    }
    bitnet_sampler_reset(r1);
    for (int i = 0; i < 64; i++) { float a[3]; memcpy(a, l3, 12); again &= bitnet_sampler_sample(r1, a) == d1[i]; }
    CHECK("reusing the reported seed reproduces the draws", same, "");
    CHECK("another random seed gives other draws", diff, "");
    CHECK("reset restarts the RNG from the seed", again, "");
    bitnet_sampler_free(r1); bitnet_sampler_free(r2); bitnet_sampler_free(r3);
    CHECK("draws equal the qsort reference (ties, +-0, +-inf, top-k/p, min-p)", same_as_reference(), "");
    T_DONE();
}
