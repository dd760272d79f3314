/* fuzz_gguf.c — libFuzzer harness: the input is a GGUF file, parsed in memory by bn_gguf_parse;
 * when it parses, every metadata array element is read and every tensor decoded (ternary types
 * in both I2_S layouts, the rest as float, capped in size), and the model-level reads are tried
 * on llama.cpp's bitnet tensor names, and the SentencePiece ModelProto built from "llama"
 * tokenizer metadata (what GGUF -> HF writes) is read back. Parse or decode may fail; they must never crash, hang or
 * read outside the buffer (ASan/UBSan). Seeds: tests/fuzz/corpus/fuzz_gguf/. */
#include "io/gguf.h"
#include "tokenizer/tokenizer_internal.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so reads past the end are caught by ASan at the exact byte */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    bn_gguf *g = NULL;
    if (bn_gguf_parse(buf, size, "fuzz.gguf", &g) == BITNET_OK) {
        static float f[1 << 16];
        static int8_t q[1 << 16];
        for (int i = 0; i < bn_gguf_n_kv(g); i++) {
            const bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
            if (bn_gguf_find_kv(g, kv->key) != kv) abort(); /* keys are unique and found */
            int64_t v; float x; int b; bn_gguf_str s; const bn_gguf_kv *a;
            bn_gguf_get_int(g, kv->key, INT64_MIN, INT64_MAX, &v);
            bn_gguf_get_f32(g, kv->key, &x);
            bn_gguf_get_bool(g, kv->key, &b);
            bn_gguf_get_str(g, kv->key, &s);
            if (bn_gguf_get_arr(g, kv->key, BN_GV_COUNT, &a) == BITNET_OK)
                for (uint64_t j = 0; j < a->arr_n && j < 256; j++) {
                    bn_gguf_str e = bn_gguf_arr_str(a, j);
                    if (e.n) { volatile char c = e.s[e.n - 1]; (void)c; }
                    bn_gguf_arr_int(a, j); bn_gguf_arr_float(a, j);
                }
        }
        for (int i = 0; i < bn_gguf_n_tensors(g); i++) {
            const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
            if (bn_gguf_find_tensor(g, t->name) != t) abort();
            if (t->data < buf || t->nbytes > size || t->data + t->nbytes > buf + size) abort();
            if (t->numel <= (1 << 16) && (t->type == BN_GT_I2_S || t->type == BN_GT_TQ1_0 || t->type == BN_GT_TQ2_0)) {
                bn_gguf_decode_ternary(g, t, BN_I2S_X86, q, f);
                bn_gguf_decode_ternary(g, t, BN_I2S_ARM, q, f);
            } else if (t->type != BN_GT_I2_S) {
                int64_t n = t->numel < (1 << 16) ? t->numel : (1 << 16), blk = bn_gguf_type_block(t->type);
                bn_gguf_decode_f32(t, 0, n - n % blk, f);
            }
            /* the model-level reads with the tensor's own shape (skips big ones) */
            if (t->numel <= (1 << 16) && t->ndim <= 2) {
                size_t len = strlen(t->name);
                if (len > 7 && !strcmp(t->name + len - 7, ".weight") && len < 200) {
                    char base[200]; memcpy(base, t->name, len - 7); base[len - 7] = 0;
                    int64_t rows = t->ndim == 2 ? t->ne[1] : 0;
                    bn_gguf_read_linear(g, base, rows ? rows : 1, t->ne[0], BN_I2S_X86, q, f);
                    bn_gguf_read_float(g, base, rows, t->ne[0], f);
                }
            }
        }
        /* tokenizer.ggml.model "llama" metadata -> the SentencePiece ModelProto GGUF -> HF writes
         * (tokenizer.model), read back with the tokenizer.model parser */
        uint8_t *pb; size_t pn;
        if (bn_tok_gguf_spm_proto(g, "fuzz.gguf", &pb, &pn) == BITNET_OK) {
            bn_sp_model m;
            if (bn_tok_spm_read((const char *)pb, pn, "fuzz.gguf", &m) == BITNET_OK) free(m.pc);
            free(pb);
        }
        bn_gguf_free(g);
    }
    free(buf);
    return 0;
}
