/* fuzz_safetensors.c — libFuzzer harness: the input is a .safetensors file; opened through
 * bn_st_open, then every tensor is looked up and converted to float (small ones). */
#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *p = fz_write("model.safetensors", data, size);
    bn_st *st = NULL;
    if (bn_st_open(p, &st) == BITNET_OK) {
        float buf[256];
        for (int i = 0; i < bn_st_count(st); i++) {
            const bn_tensor *t = bn_st_at(st, i);
            if (bn_st_find(st, t->name) != t) abort(); /* names are unique and found */
            if (t->dtype == BN_DT_COUNT) continue;
            int64_t n = t->numel < 256 ? t->numel : 256;
            if (t->dtype <= BN_I8) bn_tensor_to_f32(t, buf, 0, n);
            const bn_tensor *g;
            int64_t shape[BN_MAX_DIMS] = {-1, -1, -1, -1};
            bn_st_get(st, t->name, 1u << t->dtype, t->ndim, shape, &g);
        }
        bn_st_find(st, "model.embed_tokens.weight");
        bn_st_free(st);
    }
    free(p);
    return 0;
}
