/* fuzz_config.c — libFuzzer harness: the input is a config.json text, parsed by bn_config_parse
 * (the parser behind bn_config_load). Every accepted config must be internally consistent. */
#include "fuzz.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size); s[size] = 0;
    bn_config c;
    if (bn_config_parse(s, "config.json", &c) == BITNET_OK) {
        if (c.hidden_size <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.hidden_size % c.n_heads || c.n_heads % c.n_kv_heads || c.head_dim % 2 || c.vocab_size <= 0)
            abort(); /* accepted a config the model cannot use */
    }
    free(s);
    return 0;
}
