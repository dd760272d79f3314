/* test_device.c — bitnet_model_params.device errors on a machine without a usable GPU (CI):
 * an unknown device name, a bad cuda:N, and "cuda" in a build without CUDA (or, in a CUDA=1
 * build, with no driver/GPU) each fail the load with one clear message; the CPU still loads
 * afterwards. On a machine with a GPU and a CUDA build the "cuda" case prints a skip. */
#include "t.h"
#include "bitnet.h"

static bitnet_status load(const char *dev, bitnet_model **m) {
    bitnet_model_params p = bitnet_model_default_params();
    p.device = dev;
    return bitnet_model_load_ex("tests/golden/bitnet-b158-packed", &p, m);
}

int main(void) {
    bitnet_model *m = NULL;
    bitnet_status s = load("gpu", &m);
    CHECK("device: unknown name", s == BITNET_ERR_ARG && !m && strstr(bitnet_last_error(), "unknown device 'gpu'"), "%d %s", s, bitnet_last_error());
    s = load("cuda:x", &m);
    CHECK("device: bad cuda:N", s == BITNET_ERR_ARG && !m && strstr(bitnet_last_error(), "cuda:N"), "%d %s", s, bitnet_last_error());
    s = load("cuda", &m);
    if (s == BITNET_OK) { printf("skip device: cuda: a GPU is usable here (tests/cuda covers it)\n"); bitnet_model_free(m); m = NULL; }
    else CHECK("device: cuda without CUDA support or GPU is a clear error", s == BITNET_ERR_UNSUPPORTED && !m &&
               (strstr(bitnet_last_error(), "no CUDA support") || strstr(bitnet_last_error(), "cuda:")), "%d %s", s, bitnet_last_error());
    printf("# %s\n", bitnet_last_error());
    s = load("cpu", &m);
    CHECK("device: cpu loads after device errors", s == BITNET_OK && m, "%s", bitnet_last_error());
    bitnet_model_free(m);
    s = load(NULL, &m);
    CHECK("device: NULL is the cpu", s == BITNET_OK && m, "%s", bitnet_last_error());
    bitnet_model_free(m);
    T_DONE();
}
