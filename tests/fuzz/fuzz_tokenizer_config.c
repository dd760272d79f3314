/* fuzz_tokenizer_config.c — libFuzzer harness: the input is written as tokenizer_config.json,
 * generation_config.json and config.json next to a fixed small tokenizer.json (each file's
 * reader picks its own keys: bos_token/eos_token, bos_token_id/eos_token_id); the folder is
 * loaded with bitnet_tokenizer_load and its special ids queried. */
#include "fuzz.h"

static const char TOK[] =
    "{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"a\":3,\"b\":4,\"ab\":5,"
    "\"\\u2581\":6,\"<0x41>\":7},\"merges\":[\"a b\"],\"unk_token\":\"<unk>\"},"
    "\"added_tokens\":[{\"id\":8,\"content\":\"<|eot_id|>\",\"special\":true},{\"id\":9,\"content\":\"<|end_of_text|>\",\"special\":true}],"
    "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":false},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
    "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { fz_mkdir("c"); free(fz_write("c/tokenizer.json", TOK, sizeof TOK - 1)); init = 1; }
    free(fz_write("c/tokenizer_config.json", data, size));
    free(fz_write("c/generation_config.json", data, size));
    free(fz_write("c/config.json", data, size));
    char *dir = fz_path("c");
    bitnet_tokenizer *t = NULL;
    if (bitnet_tokenizer_load(dir, &t) == BITNET_OK) {
        int V = bitnet_tokenizer_vocab_size(t);
        int b = bitnet_tokenizer_bos(t), e = bitnet_tokenizer_eos(t);
        if (b < -1 || b >= V || e < -1 || e >= V) abort(); /* special ids are in range or -1 */
        if (e >= 0 && !bitnet_tokenizer_is_eog(t, e)) abort();
        for (int i = -2; i <= V + 1; i++) (void)bitnet_tokenizer_is_eog(t, i);
        bitnet_tokenizer_free(t);
    }
    free(dir);
    return 0;
}
