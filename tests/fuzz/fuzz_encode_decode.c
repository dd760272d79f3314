/* fuzz_encode_decode.c — libFuzzer harness for encoding, decoding and streaming detokenization
 * on the committed test tokenizers (tests/golden/tokenizer-spm/tokenizer.json: Metaspace + byte
 * fallback; tests/golden/tokenizer-bpe/tokenizer.json: byte-level; tests/golden/tokenizer-spm/
 * tokenizer.model: SentencePiece). Run from the repository root (or set BITNET_FUZZ_ROOT).
 * Input byte 0 picks the tokenizer and the mode; the rest is text (modes 0, 1) or 16-bit ids
 * (mode 2, some out of range). Property checked (abort on failure): the concatenated stream of
 * valid ids equals their full decode (F8). */
#include "fuzz.h"

#define NT 3
static bitnet_tokenizer *g_t[NT];
static uint8_t *g_empty[NT]; /* ids whose decode alone is "" (e.g. byte 0x00): left out of the comparison */

static void init(void) {
    static const char *files[NT] = {"tests/golden/tokenizer-spm/tokenizer.json", "tests/golden/tokenizer-bpe/tokenizer.json",
                                    "tests/golden/tokenizer-spm/tokenizer.model"};
    const char *root = getenv("BITNET_FUZZ_ROOT");
    for (int k = 0; k < NT; k++) {
        char p[4096]; snprintf(p, sizeof p, "%s%s%s", root ? root : "", root ? "/" : "", files[k]);
        if (bitnet_tokenizer_load(p, &g_t[k])) { fprintf(stderr, "fuzz_encode_decode: %s\n", bitnet_last_error()); abort(); }
        int V = bitnet_tokenizer_vocab_size(g_t[k]);
        g_empty[k] = calloc((size_t)V, 1);
        for (int32_t id = 0; id < V; id++) {
            char *s = NULL;
            g_empty[k][id] = bitnet_tokenizer_decode(g_t[k], &id, 1, &s) != BITNET_OK || !*s;
            free(s);
        }
    }
}

/* Stream ids through a detokenizer; compare with the full decode of the same ids. */
static void check_stream(int k, const int32_t *ids, int n) {
    const bitnet_tokenizer *t = g_t[k];
    bitnet_detok *d = NULL;
    if (bitnet_detok_new(t, &d)) return;
    size_t cap = 256, len = 0; char *acc = malloc(cap); acc[0] = 0;
    int32_t *kept = malloc(((size_t)n + 1) * sizeof *kept); int nk = 0;
    for (int i = 0; i < n; i++) {
        const char *p;
        if (bitnet_detok_push(d, ids[i], &p) != BITNET_OK) continue; /* a bad id: refused, stream goes on */
        kept[nk++] = ids[i];
        size_t l = strlen(p);
        if (len + l + 1 > cap) { while (len + l + 1 > cap) cap *= 2; acc = realloc(acc, cap); }
        memcpy(acc + len, p, l + 1); len += l;
    }
    const char *p = bitnet_detok_flush(d);
    size_t l = strlen(p);
    if (len + l + 1 > cap) { cap = len + l + 1; acc = realloc(acc, cap); }
    memcpy(acc + len, p, l + 1);
    char *full = NULL;
    if (bitnet_tokenizer_decode(t, kept, nk, &full) != BITNET_OK) abort(); /* every kept id is valid */
    if (strcmp(full, acc)) {
        fprintf(stderr, "stream != full decode (tokenizer %d, %d ids)\nstream: %s\nfull:   %s\n", k, nk, acc, full);
        abort();
    }
    free(full); free(kept); free(acc); bitnet_detok_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_t[0]) init();
    if (size < 1) return 0;
    int k = data[0] % NT, mode = (data[0] / NT) % 3, flags = (data[0] / 9) & 3;
    const bitnet_tokenizer *t = g_t[k];
    int V = bitnet_tokenizer_vocab_size(t);
    const char *text = (const char *)data + 1; size_t n = size - 1;
    if (mode < 2) {
        int32_t *ids = NULL; int m = 0;
        if (bitnet_tokenizer_encode_ex(t, text, n, flags, &ids, &m) != BITNET_OK) abort(); /* any bytes encode */
        for (int i = 0; i < m; i++) if (ids[i] < 0 || ids[i] >= V) abort();
        char *s = NULL;
        if (bitnet_tokenizer_decode(t, ids, m, &s) != BITNET_OK) abort();
        free(s);
        if (mode == 1) { /* stream the encoding (without ids that decode to nothing alone) */
            int c = 0;
            for (int i = 0; i < m; i++) if (!g_empty[k][ids[i]]) ids[c++] = ids[i];
            check_stream(k, ids, c);
        }
        free(ids);
    } else {
        int m = (int)(n / 2), c = 0;
        int32_t *ids = malloc(((size_t)m + 1) * sizeof *ids);
        for (int i = 0; i < m; i++) {
            int32_t id = (int32_t)((data[1 + 2 * i] | data[2 + 2 * i] << 8) % (V + 4)) - 2; /* -2 .. V+1 */
            if (id >= 0 && id < V && g_empty[k][id]) continue;
            ids[c++] = id;
        }
        char *s = NULL;
        if (bitnet_tokenizer_decode(t, ids, c, &s) == BITNET_OK) free(s);
        check_stream(k, ids, c);
        free(ids);
    }
    return 0;
}
