/* data.h — llm.c-style token file reader for training.
 * A token file is raw uint32 little-endian ids, mmap'd read-only (never copied). A window is
 * T+1 consecutive tokens starting at a multiple of T (window w covers tokens w*T .. w*T+T);
 * a row's inputs are the first T of its window, its targets the same shifted by one.
 * Two orders:
 *   sequential (the default; validation): a batch is B*T+1 consecutive tokens from the current
 *     token position pos, which then advances by B*T; when fewer than B*T+1 tokens remain it
 *     wraps to 0.
 *   shuffled (bn_data_shuffle; training): each row is one window, taken in the order of a
 *     seeded permutation of all windows, a fresh permutation per epoch. pos counts the windows
 *     consumed, so (seed, pos) alone determine every later batch: a resume that restores them
 *     continues bit-exactly.
 * Data-parallel shards (bn_data_set_shard): rank r of W reads, of each global batch of W*B rows,
 *   rows r*B .. r*B+B-1 (sequential: the tokens from pos + r*B*T; shuffled: the windows
 *   pos + r*B ..), and pos advances by the whole global batch, so the W ranks together read
 *   exactly what one reader with batch W*B reads, and pos means the same for any W.
 * A loss mask (bn_data_from_tokens; chat SFT data, sft.h): mask[i] = 0 says token i is not a
 * training target, so a row position whose target is token i gets target BN_TARGET_IGNORE (-1,
 * train.h: no loss, no gradient); its input is still token i-1 as usual.
 * Not: a multi-file loader. Never prints. */
#ifndef BITNET_DATA_H
#define BITNET_DATA_H
#include "core/util.h"

typedef struct bn_data {
    char *path;
    const uint8_t *raw;     /* mmap of the file (or own): n uint32 LE ids */
    size_t map_len;
    uint8_t *own;           /* bn_data_from_tokens: the ids (raw points here), owned; else NULL */
    uint8_t *mask;          /* [n] 1 = a training target, 0 = ignored; NULL: every token counts */
    size_t n;
    size_t pos;             /* sequential: token start of the next batch; shuffled: windows consumed */
    int B, T;               /* B: this reader's rows per batch (one rank's share) */
    int rank, world;        /* data-parallel shard: rank in [0, world); 0 and 1 when alone */
    int shuffled;
    uint64_t seed;
    size_t nw;              /* windows in the file: (n - 1) / T */
    uint32_t *perm;         /* shuffled: permutation of [0, nw) for epoch perm_epoch */
    int64_t perm_epoch;
} bn_data;

/* Map path; checks every id < vocab (error names the file, the position and the id) and that
 * the file holds at least B*T+1 tokens. A file that looks like text (not a multiple of 4 bytes,
 * or ids out of range and mostly printable bytes) gets an error suggesting `bitnet tokenize-file`. */
bitnet_status bn_data_open(const char *path, int vocab, int B, int T, bn_data **out);
/* The same over n ids in memory (copied; name labels errors), with an optional loss mask[n]
 * (copied; NULL = every token is a target). Checks as bn_data_open, and that some target in
 * the data counts. */
bitnet_status bn_data_from_tokens(const char *name, const int32_t *ids, const uint8_t *mask, size_t n,
                                  int vocab, int B, int T, bn_data **out);
void bn_data_free(bn_data *d);
/* Switch d to the shuffled order with this seed, starting at window 0 (pos = 0). */
bitnet_status bn_data_shuffle(bn_data *d, uint64_t seed);
/* Make d rank's shard of world readers (see above); d's pos is unchanged. BITNET_ERR_ARG for a
 * rank outside [0, world); BITNET_ERR_FORMAT when the file holds fewer than world*B*T+1 tokens. */
bitnet_status bn_data_set_shard(bn_data *d, int rank, int world);
/* Fill inputs[B*T] and targets[B*T] from the next batch and advance. Returns BITNET_ERR_NOMEM
 * only when a shuffled epoch's permutation cannot be allocated (d unchanged then). */
bitnet_status bn_data_next(bn_data *d, int32_t *inputs, int32_t *targets);
#endif
