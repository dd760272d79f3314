/* score.h — the scoring math shared by `bitnet perplexity` and `bitnet eval`: log-softmax of one
 * logits row, the negative log-likelihood of a target, the top-k of a row, KL divergence of a row
 * against a stored top-k distribution, and percentiles. Pure functions over float rows; no I/O.
 * What it is not: part of the library API (tools/ only), or a sampler. */
#ifndef BITNET_SCORE_H
#define BITNET_SCORE_H
#include <stddef.h>
#include <stdint.h>

/* log(sum_i exp(row[i])) for row[vocab] (vocab >= 1), max-shifted, accumulated in double. */
double score_logsumexp(const float *row, int vocab);
/* -log softmax(row)[target] = lse - row[target], given lse = score_logsumexp(row). */
double score_nll(const float *row, double lse, int target);
/* Index of the largest value (the lowest index among equal maxima). */
int score_argmax(const float *row, int vocab);
/* The k (1 <= k <= vocab) largest entries of row: ids[k] and logp[k] = (float)(row[id] - lse),
 * ordered by descending value, equal values by ascending id (so ids[0] == score_argmax). */
void score_topk(const float *row, int vocab, double lse, int k, uint32_t *ids, float *logp);
/* KL(P || Q) where P is a stored top-k (ids, logp as from score_topk on the base row) and Q is
 * softmax(row) (lse = score_logsumexp(row)). The mass outside the k ids is one bucket on each
 * side, so with k < vocab this is a lower bound of the full KL (exact when k == vocab).
 * Q's log-probabilities are rounded to float exactly as score_topk rounds P's, so the same row
 * against its own top-k gives exactly 0. */
double score_kl_topk(const uint32_t *ids, const float *logp, int k, const float *row, double lse);
/* The q-quantile (0 <= q <= 1) of v[n] (n >= 1), linear between order statistics (numpy's
 * default). Sorts v in place. */
double score_percentile(double *v, size_t n, double q);
#endif
