/* dist.h — data-parallel training: the collective operations the trainer loop (train_loop.c)
 * calls when `world` processes train one model together, one rank per GPU, each on its own
 * shard of every batch (data.h bn_data_set_shard).
 *
 * What it is: a small table of collectives. Every rank calls them in the same order with the
 * same sizes (the loop does: once per step sum() of {loss, stop, failed}, then, when no rank
 * failed, grad_mean(); once per evaluation sum() of {loss sum, targets, failed}); results are
 * bit-identical on every rank, so every rank takes the same decisions (clipping, skipping a
 * step, stopping) and the replicas stay identical. The implementation: NCCL over the CUDA
 * trainer's device gradients (src/backend/cuda/dist_nccl.cu, `make CUDA=1`); tests build their
 * own (threads on the CPU, tests/test_dist.c).
 * What it is not: a launcher (the CLI forks the ranks), ZeRO (every rank keeps the whole
 * optimizer state), or overlapped with the backward (one all-reduce after it). Never prints. */
#ifndef BITNET_DIST_H
#define BITNET_DIST_H
#include "train/train.h"

typedef struct bn_dist bn_dist;
struct bn_dist {
    int rank, world;            /* rank in [0, world) */
    /* m's gradients (the device copy on a device trainer) replaced by their mean over the
     * ranks, in m's stream order (before the optimizer reads them). */
    bitnet_status (*grad_mean)(bn_dist *d, bn_train_model *m);
    /* v[n] (host doubles, n <= 8) replaced by their sum over the ranks (blocking). */
    bitnet_status (*sum)(bn_dist *d, double *v, int n);
    /* all[world] = every rank's x (blocking). */
    bitnet_status (*gather_u64)(bn_dist *d, uint64_t x, uint64_t *all);
    void (*free)(bn_dist *d);
};

#ifdef BN_NCCL
/* A communicator of world ranks over NCCL on CUDA device dev, for m (already on that device:
 * bn_train_cuda_attach; every collective runs on m's stream, in order with its ops). The
 * NCCL unique id goes through the file id_path: rank 0 writes it (temp file + rename), the
 * others wait for it up to timeout_s seconds; rank 0 removes it once every rank has joined.
 * NCCL refuses two ranks on one GPU: BITNET_ERR_UNSUPPORTED with NCCL's message then. */
bitnet_status bn_dist_nccl_new(bn_train_model *m, int rank, int world, int dev, const char *id_path, double timeout_s, bn_dist **out);
#endif
#endif
