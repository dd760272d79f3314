/* data.h — llm.c-style token file reader for training.
 * A token file is raw uint32 little-endian ids. A batch is B*T+1 consecutive tokens starting at
 * the current position: inputs are the first B*T, targets the same shifted by one. The position
 * then advances by B*T; when fewer than B*T+1 tokens remain, it wraps to 0.
 * Not: a shuffling or multi-file loader. Never prints. */
#ifndef BITNET_DATA_H
#define BITNET_DATA_H
#include "util.h"

typedef struct bn_data {
    char *path;
    uint32_t *tok;      /* [n] */
    size_t n;
    size_t pos;         /* start of the next batch */
    int B, T;
} bn_data;

/* Read path; checks every id < vocab (error names the file, the position and the id) and that
 * the file holds at least B*T+1 tokens. */
bitnet_status bn_data_open(const char *path, int vocab, int B, int T, bn_data **out);
void bn_data_free(bn_data *d);
/* Fill inputs[B*T] and targets[B*T] from the next batch and advance. */
void bn_data_next(bn_data *d, int32_t *inputs, int32_t *targets);
#endif
