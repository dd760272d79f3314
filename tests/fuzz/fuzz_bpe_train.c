/* fuzz_bpe_train.c — libFuzzer harness for BPE training input: byte 0 sets the vocabulary size
 * (256 + 0..63 + specials) and the minimum pair frequency; the rest is split at 0xFF bytes into
 * up to 4 training texts. The written tokenizer.json must load, and valid UTF-8 without NULs
 * must round-trip through encode and decode. */
#include "fuzz.h"
#include "tokenizer/bpe_train.h"

static int utf8_ok(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (!c) return 0;
        int l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + l > n) return 0;
        uint32_t cp = l == 1 ? c : l == 2 ? c & 31u : l == 3 ? c & 15u : c & 7u;
        for (int j = 1; j < l; j++) { if ((s[i + j] & 0xC0) != 0x80) return 0; cp = cp << 6 | (s[i + j] & 63u); }
        if ((l == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (l == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        i += (size_t)l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const char *texts[4]; size_t lens[4]; int n = 0;
    size_t st = 1;
    for (size_t i = 1; i <= size && n < 4; i++)
        if (i == size || data[i] == 0xFF) { texts[n] = (const char *)data + st; lens[n] = i - st; n++; st = i + 1; }
    const char *specials[2] = {"<|begin_of_text|>", "<|eot_id|>"};
    bn_bpe_train_params p = {0};
    p.vocab_size = 256 + (data[0] & 63) + 2;
    p.specials = specials; p.n_specials = 2; p.bos = data[0] & 64 ? specials[0] : NULL;
    p.min_frequency = data[0] & 128 ? 1 : 2;
    char *out = fz_path("bpe_tokenizer.json");
    int nm = 0;
    if (bn_bpe_train(texts, lens, n, &p, out, &nm) == BITNET_OK) {
        bitnet_tokenizer *t = NULL;
        if (bitnet_tokenizer_load(out, &t) != BITNET_OK) { fprintf(stderr, "trained tokenizer does not load: %s\n", bitnet_last_error()); abort(); }
        for (int i = 0; i < n; i++) {
            int32_t *ids = NULL; int m = 0; char *s = NULL;
            if (bitnet_tokenizer_encode(t, texts[i], lens[i], 0, &ids, &m) != BITNET_OK) abort();
            if (bitnet_tokenizer_decode(t, ids, m, &s) != BITNET_OK) abort();
            if (utf8_ok((const uint8_t *)texts[i], lens[i]) && (strlen(s) != lens[i] || memcmp(s, texts[i], lens[i]))) {
                fprintf(stderr, "round trip failed for text %d (%zu bytes)\n", i, lens[i]);
                abort();
            }
            free(s); free(ids);
        }
        bitnet_tokenizer_free(t);
    }
    free(out);
    return 0;
}
