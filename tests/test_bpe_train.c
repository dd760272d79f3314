/* test_bpe_train.c — the BPE trainer: a tokenizer trained on a few KB of text that this test
 * writes loads in our tokenizer, round-trips text (including bytes it never saw), learns the
 * frequent words as single tokens, places special tokens after the vocabulary, and rejects a
 * vocabulary too small for the 256 byte tokens. */
#include "t.h"
#include "bitnet.h"
#include "tokenizer/bpe_train.h"
#include <unistd.h>

int main(void) {
    char dir[] = "/tmp/bitnet-bpe-XXXXXX";
    if (!mkdtemp(dir)) { printf("FAIL harness: mkdtemp\n"); return 1; }
    char path[256]; snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    /* corpus: repeated simple sentences with varied names and numbers */
    const char *names[] = {"Lily", "Tom", "Sue", "Max", "Ben"};
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, cap - n, "Once upon a time, %s saw %d little birds in the park.\n", names[i % 5], i % 17);
    const char *specials[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"};
    bn_bpe_train_params p = {.vocab_size = 400, .specials = specials, .n_specials = 3, .bos = specials[0]};
    const char *texts[1] = {text}; size_t lens[1] = {n};
    int nm = 0;
    bitnet_status s = bn_bpe_train(texts, lens, 1, &p, path, &nm);
    CHECK("train", s == BITNET_OK, "%s", bitnet_last_error());
    CHECK("learned merges", nm > 20 && nm <= 400 - 256 - 3, "nm=%d", nm);
    bitnet_tokenizer *tok = NULL;
    s = bitnet_tokenizer_load(path, &tok);
    CHECK("our tokenizer loads it", s == BITNET_OK, "%s", bitnet_last_error());
    if (tok) {
        int V = 256 + nm;
        CHECK("vocab size = bytes + merges + specials", bitnet_tokenizer_vocab_size(tok) == V + 3, "%d vs %d", bitnet_tokenizer_vocab_size(tok), V + 3);
        CHECK("specials after the vocabulary", bitnet_tokenizer_token_id(tok, "<|eot_id|>") == V + 2 && bitnet_tokenizer_token_id(tok, "<|begin_of_text|>") == V, "");
        const char *probe[] = {"Once upon a time, Lily saw 3 little birds in the park.\n",
                               "Zebras \xc3\xa9t\xc3\xa9 \xe2\x9c\xa8 quux\t\t 12345!", "<|eot_id|>Tom<|end_of_text|>", "\xff\xfe bad utf8 \xc3"};
        for (int i = 0; i < 4; i++) {
            int32_t *ids = NULL; int k = 0; char *back = NULL;
            bitnet_tokenizer_encode(tok, probe[i], strlen(probe[i]), 0, &ids, &k);
            bitnet_tokenizer_decode(tok, ids, k, &back);
            char nm2[64]; snprintf(nm2, sizeof nm2, "round trip %d", i);
            if (i < 3) CHECK(nm2, back && !strcmp(back, probe[i]), "got '%s'", back ? back : "(null)");
            else CHECK(nm2, back != NULL && k > 0, "no output");   /* invalid UTF-8 decodes to U+FFFD as HF does */
            /* the Llama 3 regex cuts this line into 15 pieces (Once, _upon, _a, _time, ",", _Lily, _saw, _, 3,
             * _little, _birds, _in, _the, _park, ".\n"); a frequent line must be one token per piece */
            if (i == 0) CHECK("frequent sentence: one token per pre-token", k == 15, "%d tokens", k);
            if (i == 2) CHECK("special text becomes one token", k >= 3 && ids[0] == V + 2 && ids[k - 1] == V + 1, "k=%d first=%d", k, k ? ids[0] : -1);
            free(ids); free(back);
        }
        int32_t *ids = NULL; int k = 0;
        bitnet_tokenizer_encode(tok, "Tom", 3, 1, &ids, &k);
        CHECK("BOS from the post-processor", k >= 2 && ids[0] == V, "k=%d", k);
        free(ids);
        bitnet_tokenizer_free(tok);
    }
    p.vocab_size = 200;
    CHECK("vocab below 256 is rejected", bn_bpe_train(texts, lens, 1, &p, path, &nm) == BITNET_ERR_ARG, "");
    free(text);
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("# cannot remove %s\n", dir);
    T_DONE();
}
