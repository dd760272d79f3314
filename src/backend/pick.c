/* pick.c — bitnet_model_params.device -> a backend (backend.h). The only place that knows which
 * backends this build has: the CUDA one exists only when built with `make CUDA=1` (BN_CUDA).
 * Not: device enumeration (bn_cu_device_count). */
#include "backend/backend.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#ifdef BN_CUDA
#include "backend/cuda/bn_cuda.h"
#endif

bitnet_status bn_backend_pick(const char *dev, const bn_backend **be, int *index) {
    *be = NULL; *index = 0;
    if (!dev || !*dev || !strcmp(dev, "cpu")) { *be = bn_backend_cpu(); return BITNET_OK; }
    if (strncmp(dev, "cuda", 4) != 0 || (dev[4] && dev[4] != ':'))
        return bn_err(BITNET_ERR_ARG, "unknown device '%s' (cpu, cuda or cuda:N)", dev);
    int n = 0;
    if (dev[4] == ':') {
        char *end = NULL;
        long v = strtol(dev + 5, &end, 10);
        if (!dev[5] || *end || v < 0 || v > 1024) return bn_err(BITNET_ERR_ARG, "device '%s': N in cuda:N must be a GPU number 0, 1, ...", dev);
        n = (int)v;
    }
#ifdef BN_CUDA
    bitnet_status s = bn_cu_device_open(n, NULL, 0, NULL, NULL, NULL);
    if (s) { char pre[80]; snprintf(pre, sizeof pre, "device '%.40s': ", dev); return bn_err_prefix(s, pre); }
    *be = bn_backend_cuda(); *index = n;
    return BITNET_OK;
#else
    (void)n;
    return bn_err(BITNET_ERR_UNSUPPORTED, "device '%s': this build has no CUDA support (rebuild with make CUDA=1)", dev);
#endif
}
