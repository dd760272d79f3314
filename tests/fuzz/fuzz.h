/* tests/fuzz/fuzz.h — helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built by
 * `make fuzz`, run by scripts/fuzz.sh). A harness whose parser takes a path writes the input to a
 * file in a per-process temp folder (removed at exit). Not a unit test: these files are not named
 * test_*.c, so `make test` does not build them. */
#ifndef BITNET_FUZZ_H
#define BITNET_FUZZ_H
#include "bitnet.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static char fz_dir_[256];
static void fz_cleanup_(void) {
    if (!fz_dir_[0]) return;
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_);
}
/* The process's temp folder (created on first use). */
static const char *fz_dir(void) {
    if (!fz_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir_, sizeof fz_dir_, "%s/bitnet_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_)) { perror("fuzz: mkdtemp"); abort(); }
        atexit(fz_cleanup_);
    }
    return fz_dir_;
}
/* Path of name inside the temp folder (static buffer per call site is not needed: copies). */
static char *fz_path(const char *name) {
    size_t n = strlen(fz_dir()) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) abort();
    snprintf(p, n, "%s/%s", fz_dir(), name);
    return p;
}
/* Write data to the temp-folder file name (folders in name must exist); returns its malloc'd path. */
static char *fz_write(const char *name, const void *data, size_t n) {
    char *p = fz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(p); abort(); }
    return p;
}
static void fz_mkdir(const char *name) { char *p = fz_path(name); mkdir(p, 0755); free(p); }

/* Exercise a loaded tokenizer: encode a few fixed texts (with and without BOS), decode the ids,
 * decode and stream the first ids of the vocabulary. Every call must return a status, never crash. */
static void fz_exercise_tokenizer(const bitnet_tokenizer *t) {
    static const char *texts[] = {"Hello world! caf\xC3\xA9 \xF0\x9F\x98\x80 \t\n  123 <s></s><|eot_id|>", "a", " ", "", "\xFF\xC3(\xE2\x82"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t *ids = NULL; int n = 0;
        if (bitnet_tokenizer_encode_ex(t, texts[i], strlen(texts[i]), i & 1 ? BITNET_TOK_BOS : 0, &ids, &n) == BITNET_OK) {
            char *s = NULL;
            if (bitnet_tokenizer_decode(t, ids, n, &s) == BITNET_OK) free(s);
        }
        free(ids);
    }
    int V = bitnet_tokenizer_vocab_size(t);
    int32_t ids[64]; int n = 0;
    for (int i = 0; i < V && n < 64; i++) ids[n++] = i;
    char *s = NULL;
    if (bitnet_tokenizer_decode(t, ids, n, &s) == BITNET_OK) free(s);
    bitnet_detok *d = NULL;
    if (bitnet_detok_new(t, &d) == BITNET_OK) {
        const char *p;
        for (int i = 0; i < n; i++) bitnet_detok_push(d, ids[i], &p);
        bitnet_detok_push(d, V, &p); /* out of range: an error, not a crash */
        bitnet_detok_flush(d);
        bitnet_detok_free(d);
    }
    (void)bitnet_tokenizer_bos(t); (void)bitnet_tokenizer_eos(t); (void)bitnet_tokenizer_eot(t);
    for (int i = -1; i <= V && i < 4096; i++) (void)bitnet_tokenizer_is_eog(t, i);
}
#endif
