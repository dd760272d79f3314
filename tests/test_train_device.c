/* test_train_device.c — bitnet_train_params.device and .precision on the CPU build: a bad device
 * name, an out-of-range precision, and (in a build without CUDA) "cuda" are refused with one
 * clear message, and "cpu" / "" train exactly as NULL does (the same losses, bit for bit).
 * Not: the GPU trainer itself (tests/cuda/test_cuda_train.c runs it on a GPU). */
#include "t.h"
#include "bitnet_train.h"
#include <stdint.h>

static const char *master(void) {
    static char d[512]; snprintf(d, sizeof d, "%s/bitnet-b158-master", t_golden());
    return d;
}
static bitnet_status make(const char *dev, int prec, bitnet_trainer **t) {
    bitnet_train_params p = bitnet_train_default_params();
    p.device = dev; p.precision = (bitnet_train_precision)prec; p.batch = 2; p.seq = 16; p.n_threads = 1; p.total_steps = 3;
    return bitnet_trainer_new(master(), &p, t);
}

int main(void) {
    bitnet_trainer *t = NULL;
    bitnet_status s = make("gpu", 0, &t);
    CHECK("device: an unknown name is refused naming it", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "'gpu'"), "%d %s", s, bitnet_last_error());
    bitnet_trainer_free(t); t = NULL;
    s = make("cpu", 7, &t);
    CHECK("device: precision 7 is refused", s == BITNET_ERR_ARG && strstr(bitnet_last_error(), "precision"), "%d %s", s, bitnet_last_error());
    bitnet_trainer_free(t); t = NULL;
#ifndef BN_CUDA
    s = make("cuda:0", 0, &t);
    CHECK("device: cuda in a build without CUDA is refused (rebuild with make CUDA=1)", s == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "CUDA=1"), "%d %s", s, bitnet_last_error());
    bitnet_trainer_free(t); t = NULL;
#endif
    /* "cpu" and "" are the CPU trainer: the same losses as NULL */
    FILE *f = fopen("/tmp/bn_test_train_device.u32", "wb");
    for (uint32_t i = 0; i < 4000; i++) { uint32_t x = (i * 7 + i / 13) % 300; fwrite(&x, 4, 1, f); }
    fclose(f);
    const char *devs[3] = {NULL, "cpu", ""};
    float l[3][3];
    int ok = 1;
    for (int d = 0; d < 3 && ok; d++) {
        ok = !make(devs[d], 0, &t) && !bitnet_trainer_set_data(t, "/tmp/bn_test_train_device.u32", NULL);
        for (int k = 0; k < 3 && ok; k++) { bitnet_train_stats st; ok = !bitnet_trainer_step(t, &st); l[d][k] = st.loss; }
        bitnet_trainer_free(t); t = NULL;
    }
    CHECK("device: \"cpu\" and \"\" give NULL's losses bit for bit", ok && !memcmp(l[0], l[1], sizeof l[0]) && !memcmp(l[0], l[2], sizeof l[0]), "%s", ok ? "differ" : bitnet_last_error());
    remove("/tmp/bn_test_train_device.u32");
    T_DONE();
}
