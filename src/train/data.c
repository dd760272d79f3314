/* data.c — mmap'd token file reader, sequential and shuffled windows (see data.h). */
#include "train/data.h"
#include "train/train.h"
#include "core/rng.h"
#include <stdio.h>

static uint32_t rd32(const uint8_t *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

/* Text, not token ids: no NUL in the first 64 KiB and >= 95% of it printable ASCII, whitespace
 * or UTF-8 bytes (a uint32 id file below 2^24 has a zero byte in every id). */
static int looks_like_text(const uint8_t *b, size_t n) {
    if (n > 65536) n = 65536;
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i]) return 0;
        good += (b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\n' || b[i] == '\r' || b[i] == '\t' || b[i] >= 0x80;
    }
    return n > 0 && good * 20 >= n * 19;
}

static bitnet_status text_err(const char *path) {
    return bn_err(BITNET_ERR_FORMAT, "%s: looks like a text file, not uint32 token ids; tokenize it first: "
                  "bitnet tokenize-file -m TOKENIZER %s OUT.u32", path, path);
}

static bn_data *data_new(const char *name) {
    bn_data *d = calloc(1, sizeof *d);
    if (d && !(d->path = strdup(name))) { free(d); d = NULL; }
    if (d) d->world = 1;
    return d;
}

/* d->raw, d->n set: the checks shared by both constructors; frees d on failure. */
static bitnet_status data_check(bn_data *d, int vocab, int B, int T, bn_data **out) {
    const char *path = d->path;
    bitnet_status s;
    size_t sz = d->n * 4;
    d->B = B; d->T = T;
    /* size_t is 64-bit on every supported target, so B*T (each <= INT_MAX) cannot overflow */
    size_t need = (size_t)B * (size_t)T + 1;
    if (d->n < need) {
        if (d->n && !d->own && looks_like_text(d->raw, sz)) { s = text_err(path); goto fail; }
        s = bn_err(BITNET_ERR_FORMAT, "%s: %zu tokens is too short for one batch of %d x %d (needs %zu)", path, d->n, B, T, need);
        goto fail;
    }
    for (size_t i = 0; i < d->n; i++) {
        uint32_t v = rd32(d->raw + 4 * i);
        if (v >= (uint32_t)vocab) {
            if (!d->own && looks_like_text(d->raw, sz)) { s = text_err(path); goto fail; }
            s = bn_err(BITNET_ERR_FORMAT, "%s: token %zu has id %u, outside the model's vocabulary of %d", path, i, v, vocab);
            goto fail;
        }
    }
    if (d->mask) {
        size_t k = 1;
        while (k < d->n && !d->mask[k]) k++;
        if (k == d->n) { s = bn_err(BITNET_ERR_FORMAT, "%s: the loss mask leaves no token to train on", path); goto fail; }
    }
    d->nw = (d->n - 1) / (size_t)T;
    *out = d;
    return BITNET_OK;
fail:
    bn_data_free(d);
    return s;
}

bitnet_status bn_data_open(const char *path, int vocab, int B, int T, bn_data **out) {
    *out = NULL;
    if (B < 1 || T < 1) return bn_err(BITNET_ERR_ARG, "%s: batch %d x seq %d must both be >= 1", path, B, T);
    const void *map; size_t sz;
    bitnet_status s = bn_map_file(path, &map, &sz);
    if (s) return s;
    bn_data *d = data_new(path);
    if (!d) { bn_unmap_file(map, sz); return bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); }
    d->raw = map; d->map_len = sz;
    if (sz % 4) {
        s = looks_like_text(d->raw, sz) ? text_err(path)
            : bn_err(BITNET_ERR_FORMAT, "%s: size %zu is not a multiple of 4 (expected uint32 token ids; "
                     "make them from text with bitnet tokenize-file)", path, sz);
        bn_data_free(d);
        return s;
    }
    d->n = sz / 4;
    return data_check(d, vocab, B, T, out);
}

bitnet_status bn_data_from_tokens(const char *name, const int32_t *ids, const uint8_t *mask, size_t n,
                                  int vocab, int B, int T, bn_data **out) {
    *out = NULL;
    if (!name) name = "tokens";
    if (B < 1 || T < 1) return bn_err(BITNET_ERR_ARG, "%s: batch %d x seq %d must both be >= 1", name, B, T);
    if (!ids && n) return bn_err(BITNET_ERR_ARG, "%s: no token ids given", name);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0) return bn_err(BITNET_ERR_FORMAT, "%s: token %zu has id %d, outside the model's vocabulary of %d", name, i, ids[i], vocab);
    bn_data *d = data_new(name);
    if (!d || !(d->own = malloc(n ? n * 4 : 1)) || (mask && !(d->mask = malloc(n ? n : 1)))) {
        bn_data_free(d);
        return bn_err(BITNET_ERR_NOMEM, "%s: out of memory for %zu tokens", name, n);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        d->own[4 * i] = (uint8_t)v; d->own[4 * i + 1] = (uint8_t)(v >> 8);
        d->own[4 * i + 2] = (uint8_t)(v >> 16); d->own[4 * i + 3] = (uint8_t)(v >> 24);
    }
    if (mask) for (size_t i = 0; i < n; i++) d->mask[i] = mask[i] != 0;
    d->raw = d->own; d->n = n;
    return data_check(d, vocab, B, T, out);
}

void bn_data_free(bn_data *d) {
    if (!d) return;
    if (d->own) free(d->own); else if (d->raw) bn_unmap_file(d->raw, d->map_len);
    free(d->mask); free(d->perm); free(d->path); free(d);
}

bitnet_status bn_data_set_shard(bn_data *d, int rank, int world) {
    if (world < 1 || rank < 0 || rank >= world) return bn_err(BITNET_ERR_ARG, "%s: rank %d is outside [0, %d)", d->path, rank, world);
    size_t need = (size_t)d->B * (size_t)d->T * (size_t)world + 1;
    if (d->n < need)
        return bn_err(BITNET_ERR_FORMAT, "%s: %zu tokens is too short for one global batch of %d ranks x %d x %d (needs %zu)",
                      d->path, d->n, world, d->B, d->T, need);
    d->rank = rank; d->world = world;
    return BITNET_OK;
}

bitnet_status bn_data_shuffle(bn_data *d, uint64_t seed) {
    if (d->nw > UINT32_MAX) return bn_err(BITNET_ERR_UNSUPPORTED, "%s: %zu windows of %d tokens is more than 2^32; use a longer --seq", d->path, d->nw, d->T);
    d->shuffled = 1; d->seed = seed; d->pos = 0; d->perm_epoch = -1;
    return BITNET_OK;
}

/* Fisher-Yates permutation of [0, nw) for epoch e, from (seed, e) only. */
static bitnet_status make_perm(bn_data *d, int64_t e) {
    if (!d->perm && !(d->perm = malloc(d->nw * sizeof *d->perm))) return bn_err(BITNET_ERR_NOMEM, "%s: out of memory for the window order", d->path);
    uint64_t x = d->seed ^ ((uint64_t)e * 0xd1b54a32d192ed03ull);
    for (size_t i = 0; i < d->nw; i++) d->perm[i] = (uint32_t)i;
    for (size_t i = d->nw - 1; i > 0; i--) {
        size_t j = (size_t)(bn_splitmix64(&x) % (i + 1));  /* modulo bias < nw / 2^64: negligible */
        uint32_t t = d->perm[i]; d->perm[i] = d->perm[j]; d->perm[j] = t;
    }
    d->perm_epoch = e;
    return BITNET_OK;
}

static void fill_row(const bn_data *d, size_t start, int32_t *in, int32_t *tg, size_t len) {
    const uint8_t *b = d->raw + 4 * start;
    for (size_t i = 0; i < len; i++) { in[i] = (int32_t)rd32(b + 4 * i); tg[i] = (int32_t)rd32(b + 4 * i + 4); }
    if (d->mask)
        for (size_t i = 0; i < len; i++) if (!d->mask[start + i + 1]) tg[i] = BN_TARGET_IGNORE;
}

bitnet_status bn_data_next(bn_data *d, int32_t *inputs, int32_t *targets) {
    size_t bt = (size_t)d->B * d->T, gbt = bt * (size_t)d->world;
    if (!d->shuffled) {
        if (d->pos + gbt + 1 > d->n) d->pos = 0;
        fill_row(d, d->pos + (size_t)d->rank * bt, inputs, targets, bt);
        d->pos += gbt;
        return BITNET_OK;
    }
    for (int b = 0; b < d->B; b++) {
        size_t c = d->pos + (size_t)d->rank * (size_t)d->B + (size_t)b;
        int64_t e = (int64_t)(c / d->nw);
        if (e != d->perm_epoch) { bitnet_status s = make_perm(d, e); if (s) return s; }
        fill_row(d, (size_t)d->perm[c % d->nw] * d->T, inputs + (size_t)b * d->T, targets + (size_t)b * d->T, (size_t)d->T);
    }
    d->pos += (size_t)d->B * (size_t)d->world;
    return BITNET_OK;
}
