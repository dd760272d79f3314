/* fuzz_train_data.c — libFuzzer harness for training token files: bytes 0-2 set the vocabulary
 * size (1..1021), batch (1..4) and sequence length (1..32); the rest is the token file (uint32
 * LE ids). Every batch drawn from an accepted file must hold ids below the vocabulary size. */
#include "fuzz.h"
#include "train/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int vocab = 1 + data[0] * 4, B = 1 + data[1] % 4, T = 1 + data[2] % 32;
    char *p = fz_write("tokens.bin", data + 3, size - 3);
    bn_data *d = NULL;
    if (bn_data_open(p, vocab, B, T, &d) == BITNET_OK) {
        int32_t in[4 * 32], tg[4 * 32];
        for (int k = 0; k < 3; k++) {
            bn_data_next(d, in, tg);
            for (int i = 0; i < B * T; i++) if (in[i] < 0 || in[i] >= vocab || tg[i] < 0 || tg[i] >= vocab) abort();
        }
        bn_data_free(d);
    }
    free(p);
    return 0;
}
