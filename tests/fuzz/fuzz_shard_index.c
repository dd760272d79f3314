/* fuzz_shard_index.c — libFuzzer harness: the input is a model.safetensors.index.json, next to two
 * fixed shards (tensors a, b and c); the folder is opened with bn_st_open_dir. */
#include "fuzz.h"
#include "io/safetensors.h"

static void make_shards(void) {
    static int done;
    if (done) return;
    done = 1;
    fz_mkdir("m");
    float v[4] = {1, 2, 3, 4};
    int64_t sh[1] = {2};
    bn_st_writer *w;
    char *p;
    if (bn_st_writer_new(&w)) abort();
    bn_st_writer_add(w, "a", BN_F32, 1, sh, v); bn_st_writer_add(w, "b", BN_F32, 1, sh, v + 2);
    p = fz_path("m/model-00001-of-00002.safetensors");
    if (bn_st_writer_save(w, p)) abort();
    free(p); bn_st_writer_free(w);
    if (bn_st_writer_new(&w)) abort();
    bn_st_writer_add(w, "c", BN_F32, 1, sh, v);
    p = fz_path("m/model-00002-of-00002.safetensors");
    if (bn_st_writer_save(w, p)) abort();
    free(p); bn_st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_shards();
    free(fz_write("m/model.safetensors.index.json", data, size));
    char *dir = fz_path("m");
    bn_st *st = NULL;
    if (bn_st_open_dir(dir, &st) == BITNET_OK) {
        for (int i = 0; i < bn_st_count(st); i++) if (bn_st_find(st, bn_st_at(st, i)->name) != bn_st_at(st, i)) abort();
        bn_st_free(st);
    }
    free(dir);
    return 0;
}
