/* fuzz_sft_jsonl.c — libFuzzer harness for chat SFT data (src/train/sft.c): byte 0 picks the chat
 * template (plain, bitnet, llama3); the rest is a JSONL file, rendered with the bundled model's
 * tokenizer (models/bitnet-tinystories; run from the repository root or set BITNET_FUZZ_ROOT).
 * Properties (abort on failure): an accepted file gives ids inside the vocabulary, a 0/1 mask of
 * the same length, and the in-memory data reader accepts the stream or refuses it cleanly. */
#include "fuzz.h"
#include "train/sft.h"
#include "train/data.h"

static bitnet_tokenizer *g_tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 16) return 0;
    if (!g_tok) {
        const char *root = getenv("BITNET_FUZZ_ROOT");
        char p[4096]; snprintf(p, sizeof p, "%s%smodels/bitnet-tinystories", root ? root : "", root ? "/" : "");
        if (bitnet_tokenizer_load(p, &g_tok)) { fprintf(stderr, "fuzz_sft_jsonl: %s\n", bitnet_last_error()); abort(); }
    }
    char *path = fz_write("chat.jsonl", data + 1, size - 1);
    int32_t *ids = NULL; uint8_t *mask = NULL; size_t n = 0;
    bn_sft_stats st;
    if (bn_sft_load_jsonl(path, g_tok, (bitnet_chat_template)(data[0] % 3), &ids, &mask, &n, &st) == BITNET_OK) {
        int V = bitnet_tokenizer_vocab_size(g_tok);
        if (!n || (size_t)st.tokens != n || st.examples < 1) abort();
        for (size_t i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= V || mask[i] > 1) abort();
        bn_data *d = NULL;
        if (bn_data_from_tokens("fuzz", ids, mask, n, V, 1, 4, &d) == BITNET_OK) {
            int32_t in[4], tg[4];
            bn_data_next(d, in, tg);
            for (int i = 0; i < 4; i++) if (in[i] < 0 || in[i] >= V || tg[i] < -1 || tg[i] >= V) abort();
            bn_data_free(d);
        }
        free(ids); free(mask);
    }
    free(path);
    return 0;
}
