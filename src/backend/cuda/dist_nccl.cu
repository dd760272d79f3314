/* dist_nccl.cu — the data-parallel collectives of train/dist.h over NCCL, one rank per GPU.
 *
 * What it is: bn_dist_nccl_new() joins a communicator of world ranks (the unique id passed
 * through a file, see dist.h); grad_mean is one in-place ncclAllReduce(ncclAvg) over the CUDA
 * trainer's whole gradient buffer on the trainer's own stream (so it runs after the backward's
 * kernels and before the norm and AdamW read it, with no host sync); sum and gather_u64 move a
 * few host values through a small device buffer on the same stream and wait.
 * Numerics: NCCL's all-reduce leaves the same bits on every rank, so every rank's AdamW step
 * is the same; with one rank the average is the gradient itself (bit-identical to no NCCL).
 * What it is not: bucketed or overlapped with the backward (the gradient is one buffer written
 * by the whole backward), ZeRO, or a launcher. Only in `make CUDA=1` builds with NCCL. */
extern "C" {
#include "train/dist.h"
#include "backend/backend.h"
#include "backend/cuda/bn_cuda.h"
#include "core/util.h"
}
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "data-parallel training needs NCCL >= 2.10 (ncclAvg)"
#endif

struct nd {
    bn_dist base;               /* first: a bn_dist * is a struct nd * */
    ncclComm_t comm;
    cudaStream_t st;            /* the trainer's stream: every collective in its order */
    double *buf;                /* device: 8 doubles, then world u64 */
};

static bitnet_status nccl_err(ncclComm_t c, ncclResult_t r, const char *what) {
    const char *last = ncclGetLastError(c);
    return bn_err(BITNET_ERR_UNSUPPORTED, "nccl: %s: %s%s%s", what, ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
}

static bitnet_status d_grad_mean(bn_dist *d, bn_train_model *m) {
    struct nd *n = (struct nd *)d;
    float *g; void *st;
    bitnet_status s = bn_train_cuda_grads(m, &g, &st);
    if (s) return s;
    ncclResult_t r = ncclAllReduce(g, g, m->n_params, ncclFloat, ncclAvg, n->comm, n->st);
    return r == ncclSuccess ? BITNET_OK : nccl_err(n->comm, r, "gradient all-reduce");
}

static bitnet_status d_sum(bn_dist *d, double *v, int k) {
    struct nd *n = (struct nd *)d;
    if (k < 1 || k > 8) return bn_err(BITNET_ERR_ARG, "data parallel: sum of %d values (1..8)", k);
    size_t b = (size_t)k * sizeof(double);
    bitnet_status s = bn_cu_h2d(n->buf, v, b, n->st);
    if (s) return s;
    ncclResult_t r = ncclAllReduce(n->buf, n->buf, (size_t)k, ncclFloat64, ncclSum, n->comm, n->st);
    if (r != ncclSuccess) return nccl_err(n->comm, r, "sum");
    return bn_cu_d2h(v, n->buf, b, n->st);
}

static bitnet_status d_gather(bn_dist *d, uint64_t x, uint64_t *all) {
    struct nd *n = (struct nd *)d;
    uint64_t *send = (uint64_t *)n->buf, *recv = send + 8;
    bitnet_status s = bn_cu_h2d(send, &x, sizeof x, n->st);
    if (s) return s;
    ncclResult_t r = ncclAllGather(send, recv, 1, ncclUint64, n->comm, n->st);
    if (r != ncclSuccess) return nccl_err(n->comm, r, "all-gather");
    return bn_cu_d2h(all, recv, (size_t)d->world * sizeof x, n->st);
}

static void d_free(bn_dist *d) {
    struct nd *n = (struct nd *)d;
    if (!n) return;
    if (n->comm) ncclCommDestroy(n->comm);
    if (n->buf) cudaFree(n->buf);
    cudaGetLastError();
    free(n);
}

/* Rank 0: a fresh unique id into path (atomic). Others: wait until path holds one. */
static bitnet_status exchange_id(int rank, const char *path, double timeout_s, ncclUniqueId *id) {
    if (rank == 0) {
        ncclResult_t r = ncclGetUniqueId(id);
        if (r != ncclSuccess) return nccl_err(NULL, r, "unique id");
        return bn_write_file_atomic(path, id, sizeof *id);
    }
    for (double t0 = bn_time();;) {
        struct stat sb;
        if (stat(path, &sb) == 0 && (size_t)sb.st_size == sizeof *id) {
            char *b = NULL; size_t len = 0;
            bitnet_status s = bn_read_file_max(path, sizeof *id, &b, &len);
            if (!s && len == sizeof *id) { memcpy(id, b, sizeof *id); free(b); return BITNET_OK; }
            free(b);
        }
        if (bn_time() - t0 > timeout_s)
            return bn_err(BITNET_ERR_IO, "data parallel: rank %d waited %.0f s for rank 0's NCCL id in %s (is rank 0 running with the same id file?)", rank, timeout_s, path);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

extern "C" bitnet_status bn_dist_nccl_new(bn_train_model *m, int rank, int world, int dev, const char *id_path, double timeout_s, bn_dist **out) {
    *out = NULL;
    if (world < 1 || rank < 0 || rank >= world) return bn_err(BITNET_ERR_ARG, "data parallel: rank %d is outside [0, %d)", rank, world);
    if (!id_path || !*id_path) return bn_err(BITNET_ERR_ARG, "data parallel: no file to pass the NCCL id through");
    struct nd *n = (struct nd *)calloc(1, sizeof *n);
    if (!n) return bn_err(BITNET_ERR_NOMEM, "out of memory");
    n->base = bn_dist{rank, world, d_grad_mean, d_sum, d_gather, d_free};
    float *g; void *st;
    bitnet_status s = bn_train_cuda_grads(m, &g, &st);
    n->st = (cudaStream_t)st;
    if (!s && cudaSetDevice(dev) != cudaSuccess) { cudaGetLastError(); s = bn_err(BITNET_ERR_UNSUPPORTED, "data parallel: cannot use CUDA device %d", dev); }
    if (!s) s = bn_cu_malloc((void **)&n->buf, (8 + (size_t)world) * sizeof(double), "data-parallel buffers");
    ncclUniqueId id;
    if (!s) s = exchange_id(rank, id_path, timeout_s, &id);
    if (!s) {
        ncclResult_t r = ncclCommInitRank(&n->comm, world, id, rank);
        if (r != ncclSuccess) { n->comm = NULL; s = nccl_err(NULL, r, "joining the communicator"); }
    }
    if (rank == 0) unlink(id_path);   /* every rank has joined (or init failed): the id is spent */
    if (s) { d_free(&n->base); return s; }
    *out = &n->base;
    return BITNET_OK;
}
