/* pick.c — bitnet_model_params.device -> a backend (backend.h). The only place that knows which
 * backends this build has: the CUDA one exists only when built with `make CUDA=1` (BN_CUDA).
 * Also the public device listing (bitnet_devices) and the GPU copy probe (bitnet_device_bandwidth). */
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

int bitnet_devices(bitnet_device_info *out, int max) {
    int n = 0;
#define PUT(nm, usable_, ...) do { if (out && n < max) { snprintf(out[n].name, sizeof out[n].name, "%s", nm); \
        snprintf(out[n].desc, sizeof out[n].desc, __VA_ARGS__); out[n].usable = usable_; } n++; } while (0)
    char ks[120] = "";
    for (const char *const *k = bitnet_kernel_sets(); *k; k++)
        if (strlen(ks) + strlen(*k) + 3 < sizeof ks) { if (*ks) strcat(ks, ", "); strcat(ks, *k); }
    PUT("cpu", 1, "the CPU, %d physical cores, kernel sets %s", bitnet_physical_cores(), ks);
#ifdef BN_CUDA
    const char *why = NULL;
    int ng = bn_cu_device_count(&why);
    if (ng == 0) PUT("cuda", 0, "%s", why ? why : "no CUDA GPU found");
    for (int i = 0; i < ng; i++) {
        char nm[16], name[96] = ""; size_t mem = 0; int sms = 0, cc = 0;
        snprintf(nm, sizeof nm, "cuda:%d", i);
        if (bn_cu_device_open(i, name, sizeof name, &mem, &sms, &cc)) PUT(nm, 0, "%s", bitnet_last_error());
        else PUT(nm, 1, "%s, %.1f GiB, compute capability %d.%d, %d SMs", name, mem / 1073741824.0, cc / 10, cc % 10, sms);
    }
    if (ng > 0) bn_cu_device_open(0, NULL, 0, NULL, NULL, NULL);  /* leave GPU 0 current */
#endif
#undef PUT
    return n;
}

bitnet_status bitnet_device_bandwidth(const char *device, double *gbps) {
    *gbps = 0;
    const bn_backend *be = NULL;
    int idx = 0;
    bitnet_status s = bn_backend_pick(device, &be, &idx);
    if (s) return s;
    if (be->device != BN_DEV_CUDA) return bn_err(BITNET_ERR_UNSUPPORTED, "device '%s': the copy probe is for GPU devices", device ? device : "cpu");
#ifdef BN_CUDA
    return bn_cu_copy_probe((size_t)1 << 30, 10, gbps);
#else
    return BITNET_ERR_UNSUPPORTED;
#endif
}
