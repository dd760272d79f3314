/* score.c — scoring math for `bitnet perplexity` / `bitnet eval` (see score.h). */
#include "score.h"
#include <math.h>
#include <stdlib.h>

double score_logsumexp(const float *row, int vocab) {
    float mx = row[0];
    for (int i = 1; i < vocab; i++) if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int i = 0; i < vocab; i++) s += exp((double)row[i] - mx);
    return mx + log(s);
}

double score_nll(const float *row, double lse, int target) { return lse - (double)row[target]; }

int score_argmax(const float *row, int vocab) {
    int b = 0;
    for (int i = 1; i < vocab; i++) if (row[i] > row[b]) b = i;
    return b;
}

/* a before b in top-k order: larger value first, then lower id */
static int before(float va, uint32_t ia, float vb, uint32_t ib) { return va > vb || (va == vb && ia < ib); }

void score_topk(const float *row, int vocab, double lse, int k, uint32_t *ids, float *logp) {
    /* min-heap (by `before` order: the root is the entry that comes last) of the best k so far */
    float *hv = logp; uint32_t *hi = ids; int n = 0;
    for (int i = 0; i < vocab; i++) {
        float v = row[i];
        if (n == k) {
            if (!before(v, (uint32_t)i, hv[0], hi[0])) continue;
            hv[0] = v; hi[0] = (uint32_t)i;
            for (int p = 0;;) { /* sift down */
                int l = 2 * p + 1, r = l + 1, w = p;
                if (l < n && before(hv[w], hi[w], hv[l], hi[l])) w = l;
                if (r < n && before(hv[w], hi[w], hv[r], hi[r])) w = r;
                if (w == p) break;
                float tv = hv[p]; hv[p] = hv[w]; hv[w] = tv;
                uint32_t ti = hi[p]; hi[p] = hi[w]; hi[w] = ti;
                p = w;
            }
        } else {
            int c = n++;
            hv[c] = v; hi[c] = (uint32_t)i;
            while (c > 0) { /* sift up */
                int p = (c - 1) / 2;
                if (!before(hv[p], hi[p], hv[c], hi[c])) break;
                float tv = hv[p]; hv[p] = hv[c]; hv[c] = tv;
                uint32_t ti = hi[p]; hi[p] = hi[c]; hi[c] = ti;
                c = p;
            }
        }
    }
    /* heap-sort in place: repeatedly move the root (the last in order) to the end */
    for (int end = n - 1; end > 0; end--) {
        float tv = hv[0]; hv[0] = hv[end]; hv[end] = tv;
        uint32_t ti = hi[0]; hi[0] = hi[end]; hi[end] = ti;
        for (int p = 0;;) {
            int l = 2 * p + 1, r = l + 1, w = p;
            if (l < end && before(hv[w], hi[w], hv[l], hi[l])) w = l;
            if (r < end && before(hv[w], hi[w], hv[r], hi[r])) w = r;
            if (w == p) break;
            float t2 = hv[p]; hv[p] = hv[w]; hv[w] = t2;
            uint32_t i2 = hi[p]; hi[p] = hi[w]; hi[w] = i2;
            p = w;
        }
    }
    for (int j = 0; j < n; j++) logp[j] = (float)((double)hv[j] - lse);
}

double score_kl_topk(const uint32_t *ids, const float *logp, int k, const float *row, double lse) {
    double kl = 0, sp = 0, sq = 0;
    for (int j = 0; j < k; j++) {
        double lp = logp[j], lq = (float)((double)row[ids[j]] - lse);
        double p = exp(lp);
        sp += p; sq += exp(lq);
        kl += p * (lp - lq);
    }
    double pr = 1 - sp, qr = 1 - sq;
    if (pr > 1e-12) kl += pr * (log(pr) - log(qr > 1e-300 ? qr : 1e-300));
    return kl;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double score_percentile(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmp_d);
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}
