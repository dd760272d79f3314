/* fuzz_tokenizer_model.c — libFuzzer harness: the input is a SentencePiece tokenizer.model
 * (protobuf), loaded with bitnet_tokenizer_load, then encoded/decoded/streamed. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_mkdir("s");
    char *p = fz_write("s/tokenizer.model", data, size);
    bitnet_tokenizer *t = NULL;
    if (bitnet_tokenizer_load(p, &t) == BITNET_OK) { fz_exercise_tokenizer(t); bitnet_tokenizer_free(t); }
    free(p);
    return 0;
}
