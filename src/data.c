/* data.c — token file reader (see data.h). */
#include "data.h"
#include <stdio.h>
#include <errno.h>

bitnet_status bn_data_open(const char *path, int vocab, int B, int T, bn_data **out) {
    *out = NULL;
    if (B < 1 || T < 1) return bn_err(BITNET_ERR_ARG, "%s: batch %d x seq %d must both be >= 1", path, B, T);
    FILE *f = fopen(path, "rb");
    if (!f) return bn_err(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bn_data *d = calloc(1, sizeof *d);
    if (!d) { fclose(f); return bn_err(BITNET_ERR_NOMEM, "out of memory"); }
    d->path = strdup(path); d->B = B; d->T = T;
    bitnet_status s = BITNET_OK;
    if (fseek(f, 0, SEEK_END) != 0) { s = bn_err(BITNET_ERR_IO, "%s: cannot seek", path); goto fail; }
    long sz = ftell(f);
    if (sz < 0) { s = bn_err(BITNET_ERR_IO, "%s: cannot size", path); goto fail; }
    rewind(f);
    if (sz % 4) { s = bn_err(BITNET_ERR_FORMAT, "%s: size %ld is not a multiple of 4 (expected uint32 token ids)", path, sz); goto fail; }
    d->n = (size_t)sz / 4;
    size_t need = (size_t)B * T + 1;
    if (d->n < need) { s = bn_err(BITNET_ERR_FORMAT, "%s: %zu tokens is too short for one batch of %d x %d (needs %zu)", path, d->n, B, T, need); goto fail; }
    d->tok = malloc(d->n * 4);
    if (!d->tok || !d->path) { s = bn_err(BITNET_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    uint8_t *raw = (uint8_t *)d->tok;
    if (fread(raw, 1, d->n * 4, f) != d->n * 4) { s = bn_err(BITNET_ERR_IO, "%s: short read", path); goto fail; }
    for (size_t i = 0; i < d->n; i++) {
        const uint8_t *b = raw + 4 * i;
        uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (v >= (uint32_t)vocab) { s = bn_err(BITNET_ERR_FORMAT, "%s: token %zu has id %u, outside the model's vocabulary of %d", path, i, v, vocab); goto fail; }
        d->tok[i] = v;
    }
    fclose(f);
    *out = d;
    return BITNET_OK;
fail:
    fclose(f);
    bn_data_free(d);
    return s;
}

void bn_data_free(bn_data *d) {
    if (!d) return;
    free(d->tok); free(d->path); free(d);
}

void bn_data_next(bn_data *d, int32_t *inputs, int32_t *targets) {
    size_t bt = (size_t)d->B * d->T;
    if (d->pos + bt + 1 > d->n) d->pos = 0;
    const uint32_t *t = d->tok + d->pos;
    for (size_t i = 0; i < bt; i++) { inputs[i] = (int32_t)t[i]; targets[i] = (int32_t)t[i + 1]; }
    d->pos += bt;
}
