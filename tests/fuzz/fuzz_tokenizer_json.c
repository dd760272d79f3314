/* fuzz_tokenizer_json.c — libFuzzer harness: the input is a tokenizer.json (alone in its folder);
 * loaded with bitnet_tokenizer_load, then encoded/decoded/streamed (fz_exercise_tokenizer). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_mkdir("j");
    char *p = fz_write("j/tokenizer.json", data, size);
    bitnet_tokenizer *t = NULL;
    if (bitnet_tokenizer_load(p, &t) == BITNET_OK) { fz_exercise_tokenizer(t); bitnet_tokenizer_free(t); }
    free(p);
    return 0;
}
